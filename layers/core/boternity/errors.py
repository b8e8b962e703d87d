"""Every error Boternity raises, in one tree.

    BoternityError
    ├── WorkflowError        one problem in a workflow file: file, line, step_id, field, code
    ├── ValidationFailed     a list of WorkflowError, all found in one pass
    ├── ExpressionError      a template or condition that does not parse or cannot be evaluated
    ├── CompileError         a valid workflow that cannot become a state machine (limits)
    ├── SignatureError       a webhook whose signature, token or timestamp does not verify
    ├── NotFound             a workflow, run or approval that does not exist
    ├── Conflict             a state change that lost a race (approval already decided, ...)
    └── StepError            raised inside a step's Lambda; its class name is the ASL error name
        ├── StepFailed       never retried (bad request, bad config, template error, ...)
        └── StepRetryable    transient (rate limit, 5xx, timeout): the step's Retry applies

Step Functions matches a Lambda failure by the exception's class *name* (``errorType``), so the
handlers re-raise every step failure as exactly ``StepFailed`` or ``StepRetryable``; the specific
cause travels in ``code`` and the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BoternityError",
    "CompileError",
    "Conflict",
    "ExpressionError",
    "NotFound",
    "SignatureError",
    "StepError",
    "StepFailed",
    "StepRetryable",
    "ValidationFailed",
    "WorkflowError",
]


class BoternityError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "error"


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


class ExpressionError(BoternityError):
    """A template or condition that cannot be parsed or evaluated."""

    code = "expression"

    def __init__(self, message: str, *, expression: str = "", offset: int | None = None) -> None:
        self.message = message
        self.expression = expression
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        shown = f" in {expression!r}" if expression else ""
        super().__init__(f"{message}{where}{shown}")


class CompileError(BoternityError):
    """The workflow is valid but cannot be compiled within Step Functions' limits."""

    code = "compile"

    def __init__(self, message: str, *, step_id: str | None = None, limit: str | None = None) -> None:
        self.message = message
        self.step_id = step_id
        self.limit = limit
        prefix = f"step '{step_id}': " if step_id else ""
        super().__init__(prefix + message)


class SignatureError(BoternityError):
    """A webhook request that does not authenticate. The message never describes the secret."""

    code = "unauthorized"


class NotFound(BoternityError):
    code = "not_found"


class Conflict(BoternityError):
    """``code`` tells callers which race they lost (``already_decided``, ``approval_expired``...)."""

    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


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
    import json

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
        import os

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
