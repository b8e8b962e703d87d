"""Every error Boternity raises, in one tree.

    BoternityError           code (stable, for machines), message (for people), details
    ├── WorkflowError        one problem in a workflow file: file, line, step_id, field, code
    ├── ValidationFailed     a list of WorkflowError, all found in one pass
    ├── ExpressionError      a template or condition that does not parse or cannot be evaluated
    ├── CompileError         a valid workflow that cannot become a state machine (limits)
    ├── SignatureError       a webhook whose signature, token or timestamp does not verify
    ├── ParseError           outside text beyond a parsing limit (boternity.parsing)
    ├── Refused              the service will not do what was asked
    │   ├── BadRequest           a request it cannot read (bad base64, empty body, bad next_token)
    │   ├── Forbidden            a credential that does not match (a form's CSRF token)
    │   ├── NotFound             a workflow, run or approval that does not exist
    │   ├── MethodNotAllowed     an operation the resource does not take: ``allowed`` names those it does
    │   ├── Conflict             a state change that lost a race (approval already decided, ...)
    │   │   └── StartInProgress  another caller is starting this run: ``retry_after`` seconds
    │   ├── PayloadTooLarge      a body over the operation's size limit
    │   ├── UnsupportedMediaType a body in a format the operation does not read
    │   ├── Unprocessable        well-formed but unusable (an idempotency key reused with another payload)
    │   ├── TooManyRequests      a concurrency or service limit: try again later
    │   ├── ServiceMisconfigured the deployment lacks a setting (not the caller's fault)
    │   └── NotAvailable         an operation this environment cannot perform
    ├── BlockedAddress       a network destination the guard refuses (boternity.executors.netguard)
    ├── LimitError           a sandbox limit that is not a positive number or is too high (executors.wasm)
    └── StepError            raised inside a step's Lambda; its class name is the ASL error name
        ├── StepFailed       never retried (bad request, bad config, template error, ...)
        └── StepRetryable    transient (rate limit, 5xx, timeout): the step's Retry applies

Nothing here knows HTTP: the API's edge maps this tree to statuses in one table
(``boternity.handlers.rest.to_http``) and the CLI client maps answers back to it
(``boternity.cli.client.api_error``).

Step Functions matches a Lambda failure by the exception's class *name* (``errorType``), so the
handlers re-raise every step failure as exactly ``StepFailed`` or ``StepRetryable``; the specific
cause travels in ``code`` and the message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BadRequest",
    "BlockedAddress",
    "BoternityError",
    "CompileError",
    "Conflict",
    "ExpressionError",
    "Forbidden",
    "LimitError",
    "MethodNotAllowed",
    "NotAvailable",
    "NotFound",
    "PayloadTooLarge",
    "Refused",
    "ServiceMisconfigured",
    "SignatureError",
    "StartInProgress",
    "StepError",
    "StepFailed",
    "StepRetryable",
    "TooManyRequests",
    "Unprocessable",
    "UnsupportedMediaType",
    "ValidationFailed",
    "WorkflowError",
    "readable_cause",
]


class BoternityError(Exception):
    """Base of every error this package raises on purpose.

    ``code`` is stable (callers match on it), ``message`` is written for people, ``details`` is
    structured data about the problem (JSON-ready). A class fixes the default ``code``; a raise
    may name a more precise one (``Conflict("...", code="already_decided")``).
    """

    code: str = "error"
    details: Any = None

    def __init__(self, message: str = "", *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if details is not None:
            self.details = details


@dataclass
class WorkflowError(BoternityError):
    """One problem found in a workflow definition.

    ``code`` is stable (tests and API clients match on it); ``message`` is for people.
    """

    message: str
    code: str = "invalid"
    file: str | None = None
    line: int | None = None
    column: int | None = None
    step_id: str | None = None
    field: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def location(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        elif self.line:
            parts.append(f"line {self.line}")
        if self.step_id:
            parts.append(f"step '{self.step_id}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "step_id": self.step_id,
            "field": self.field,
        }


class ValidationFailed(BoternityError):
    """All the problems found in one or more workflow files."""

    code = "validation_failed"

    def __init__(self, errors: list[WorkflowError]) -> None:
        self.errors = list(errors)
        super().__init__(self.summary())

    def summary(self) -> str:
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''} in workflow"
        return head + ":\n" + "\n".join(f"  {e}" for e in self.errors)

    def codes(self) -> list[str]:
        return [e.code for e in self.errors]


# The most of an expression an error message quotes. A 600 KB template with one missing value was
# quoted whole: its step record passed DynamoDB's 400 KB item limit, and the run said only that.
EXCERPT_CHARS = 160


def _excerpt(expression: str, offset: int | None) -> str:
    """``expression``, or the part of it around ``offset`` when it is long ("..." where cut)."""
    if len(expression) <= EXCERPT_CHARS:
        return expression
    start = max(0, min((offset or 0) - EXCERPT_CHARS // 2, len(expression) - EXCERPT_CHARS))
    end = start + EXCERPT_CHARS
    return ("..." if start else "") + expression[start:end] + ("..." if end < len(expression) else "")


class ExpressionError(BoternityError):
    """A template or condition that cannot be parsed or evaluated."""

    code = "expression"

    def __init__(self, message: str, *, expression: str = "", offset: int | None = None) -> None:
        where = f" at offset {offset}" if offset is not None else ""
        shown = f" in {_excerpt(expression, offset)!r}" if expression else ""
        super().__init__(f"{message}{where}{shown}")
        self.message = message
        self.expression = expression
        self.offset = offset


class CompileError(BoternityError):
    """The workflow is valid but cannot be compiled within Step Functions' limits."""

    code = "compile"

    def __init__(self, message: str, *, step_id: str | None = None, limit: str | None = None) -> None:
        prefix = f"step '{step_id}': " if step_id else ""
        super().__init__(prefix + message)
        self.message = message
        self.step_id = step_id
        self.limit = limit


class SignatureError(BoternityError):
    """A webhook request that does not authenticate. The message never describes the secret."""

    code = "unauthorized"


class Refused(BoternityError):
    """The service will not do what was asked. Triggers that start runs on a platform's behalf
    (S3, EventBridge, Scheduler) record a refusal instead of failing the invocation: a retry
    would be refused again (:class:`StartInProgress` excepted)."""

    code = "refused"


class BadRequest(Refused):
    code = "bad_request"


class Forbidden(Refused):
    code = "forbidden"


class NotFound(Refused):
    code = "not_found"


class MethodNotAllowed(Refused):
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...], code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.allowed = allowed


class Conflict(Refused):
    """``code`` tells callers which race they lost (``already_decided``, ``approval_expired``...)."""

    code = "conflict"


class StartInProgress(Conflict):
    """Another invocation is starting the run for this key; try again after ``retry_after``
    seconds. Triggers that a platform retries (S3, EventBridge, Scheduler) must fail the
    invocation on it, not drop the delivery: the holder may be dead, and only a later retry
    takes its claim over."""

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


class PayloadTooLarge(Refused):
    code = "payload_too_large"


class UnsupportedMediaType(Refused):
    code = "unsupported_media_type"


class Unprocessable(Refused):
    code = "unprocessable"


class TooManyRequests(Refused):
    code = "too_many_requests"


class ServiceMisconfigured(Refused):
    """The deployment lacks a setting. Not the caller's fault: the message says what is missing."""

    code = "misconfigured"


class NotAvailable(Refused):
    """An operation this environment cannot perform (RedriveExecution on an emulator)."""

    code = "not_implemented"


class BlockedAddress(BoternityError):
    """A network destination the guard refuses (boternity.executors.netguard). Not a StepError:
    each executor turns it into a step failure with its own code."""

    code = "blocked_address"

    def __init__(self, host: str, address: str, reason: str) -> None:
        via = "" if host == address else f"{host} resolves to "
        super().__init__(f"{via}{address}, which is {reason}",
                         details={"host": host, "address": address, "reason": reason})
        self.host = host
        self.address = address
        self.reason = reason


class LimitError(BoternityError, ValueError):
    """A sandbox limit (boternity.executors.wasm) that is not a positive number, is unknown, or is
    above the ceiling. Also a ``ValueError``: it is a bad value, and callers catching that keep working."""

    code = "invalid_limit"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details={"field": field})
        self.field = field


@dataclass
class StepError(BoternityError):
    """A step failed. ``code`` says why (``http.status``, ``agent.rate_limited``, ``template``...)."""

    message: str
    code: str = "step_failed"
    details: dict[str, Any] = field(default_factory=dict)

    retryable = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class StepFailed(StepError):
    """A failure that retrying will not fix."""


class StepRetryable(StepError):
    """A transient failure: the compiled Retry tries the step again."""

    retryable = True


def readable_cause(error: str | None, cause: str | None, *, _depth: int = 0) -> str | None:
    """A run's failure cause as a sentence.

    * ``step x failed (StepFailed): {"errorMessage": "...", "stackTrace": [...]}`` (what a Lambda
      error becomes) -> ``step x failed (StepFailed): ...``;
    * ``step x failed (States.TaskFailed): {"ExecutionArn": ..., "Error": ..., "Cause": ...}`` (a
      failed sub-workflow: Step Functions puts the child's DescribeExecution in the cause) ->
      ``step x failed (States.TaskFailed): sub-workflow <name> failed: <the child's cause, reduced>``;
    * a bare Lambda error JSON -> its message.

    Stack traces and the runtime's JSON stay out of run records, the API and the CLI."""
    if not cause:
        return error
    text = cause.strip()
    head, _, rest = text.partition(": ")
    if text.startswith("{"):
        head, rest = "", text
    if not rest.lstrip().startswith("{"):
        return cause
    try:
        payload = json.loads(rest)
    except ValueError:
        return cause
    if not isinstance(payload, dict):
        return cause
    reduced: str | None = None
    if payload.get("errorMessage"):
        reduced = str(payload["errorMessage"])
    elif "ExecutionArn" in payload and ("Cause" in payload or "Error" in payload) and _depth < 10:
        machine = str(payload.get("StateMachineArn") or payload["ExecutionArn"]).split(":")
        name = machine[6] if len(machine) > 6 else "?"
        # The workflow's own name: state machines are named <prefix><workflow>.
        name = name.removeprefix(os.environ.get("BOTERNITY_STATE_MACHINE_PREFIX") or "boternity-")
        inner = readable_cause(payload.get("Error"), payload.get("Cause"), _depth=_depth + 1)
        status = str(payload.get("Status") or "FAILED").lower().replace("_", " ")
        reduced = f"sub-workflow {name} {status}" + (f": {inner}" if inner else "")
    if reduced is None:
        return cause
    return f"{head}: {reduced}" if head else reduced
