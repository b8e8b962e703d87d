"""The ``agent`` step: one LLM call through the ``anthropic`` SDK.

This is the only module that imports ``anthropic`` (about 0.8 s of import time): the other step
functions must not pay for it on a cold start, so nothing else imports this module either, except
the agent handler.

:func:`run_agent` takes an already-rendered step config and a :class:`~boternity.executors.bots.Bot`,
makes one non-streaming ``messages.create`` call and returns the step's output, or raises
``StepFailed`` / ``StepRetryable`` with a ``code`` from this table (every SDK error is mapped in one
place, :func:`classify_error`, from the table :data:`ERROR_RULES`):

==============================  =========  ========================================================================
code                            class      when
==============================  =========  ========================================================================
``agent.rate_limited``          retryable  429 (``details.retry_after`` when the API sent it)
``agent.overloaded``            retryable  529: the API is overloaded
``agent.server_error``          retryable  other 5xx
``agent.timeout``               retryable  no complete reply within the client timeout (the whole call); 408
``agent.connection``            retryable  DNS, refused or reset connection, TLS; 499
``agent.bad_request``           failed     400, 422: the request is wrong (prompt, params, model)
``agent.request_too_large``     failed     413, 431
``agent.reply_too_large``       failed     the reply went past :data:`MAX_REPLY_BYTES` (a broken or hostile endpoint)
``agent.auth``                  failed     401, 403: the key is wrong or lacks permission
``agent.not_found``             failed     404: e.g. an unknown model
``agent.billing``               failed     402, and spend limits (reported as 429 by the API)
``agent.account``               failed     the organization or its keys are not in a usable state
``agent.api_error``             either     any other status (409, 418, ...): retryable iff 429 or >= 500; 501 never
``agent.invalid_response``      failed     the reply does not match the SDK's schema
``agent.invalid_json``          failed     ``output: json`` and the reply is not JSON
``agent.invalid_config``        failed     the step config has a wrong type (after rendering)
``agent.unsupported_provider``  failed     the bot names a provider other than Anthropic
``agent.no_api_key``            failed     neither ``ANTHROPIC_API_KEY`` nor a usable secret
``agent.secret_unavailable``    retryable  Secrets Manager failed transiently
``agent.client_error``          failed     any other error the SDK raises before a request is sent
``agent.bot_invalid``           failed     the bot's files are malformed (from ``bots``)
==============================  =========  ========================================================================

The SDK's own retries are off (``max_retries=0``): the Retry compiled into the state machine does
the retrying, with backoff, so every attempt is visible in the run history and counted once.

The client's ``timeout`` bounds the whole call, connect to last byte, and a reply is read up to
:data:`MAX_REPLY_BYTES` (``replyguard``): httpx's own timeout bounds each read only, so an endpoint
trickling its reply or sending an endless body would otherwise hold the step and fill its memory.

Messages never contain the API key: the key is scrubbed from every message built from an API reply.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anthropic

from boternity.errors import StepError, StepFailed, StepRetryable
from boternity.executors.replyguard import guard_client, guarded_call
from boternity.parsing import json_or

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from boternity.executors.bots import Bot

__all__ = [
    "CORRECTION_HEADER",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "ERROR_RULES",
    "FALLBACK_MODEL",
    "MAX_REPLY_BYTES",
    "ErrorRule",
    "classify_error",
    "default_model_from_env",
    "make_client",
    "request_correction",
    "resolve_api_key",
    "run_agent",
]

FALLBACK_MODEL = "claude-sonnet-4-6"


def default_model_from_env() -> str:
    """``BOTERNITY_DEFAULT_MODEL``, else :data:`FALLBACK_MODEL`: the model when neither step nor bot names one."""
    return os.environ.get("BOTERNITY_DEFAULT_MODEL", "").strip() or FALLBACK_MODEL


# Read once at import: a Lambda's environment is fixed for the life of its container.
DEFAULT_MODEL = default_model_from_env()
DEFAULT_MAX_TOKENS = 4096
DEFAULT_TIMEOUT = 120.0
# The largest reply read: the API's biggest (128k output tokens of JSON-escaped text) is a few MiB.
MAX_REPLY_BYTES = 32 * 1024 * 1024
_GUARD_GRACE_SECS = 0.5
# What the self-correction loop writes between the step's prompt and the suggested fix.
CORRECTION_HEADER = "\n\nA previous attempt failed. Follow this corrected approach:\n"
CORRECTION_MAX_TOKENS = 1024
_EXCERPT_CHARS = 200
_SUPPORTED_PROVIDERS = frozenset({"anthropic", "claude"})
# A reply that is a single fenced block, or prose around one: ```json ... ``` (the tag is optional).
_FENCED = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n(.*?)\r?\n[ \t]*```", re.DOTALL)
_HOW_TO_SET_KEY = (
    "set ANTHROPIC_API_KEY (locally), or ANTHROPIC_SECRET_NAME to the name of a Secrets Manager "
    'secret holding the key as plain text or as JSON {"api_key": "..."} (in the cloud)'
)


# --------------------------------------------------------------------------- the step


def run_agent(config: Mapping[str, Any], *, bot: Bot, client: anthropic.Anthropic | None = None,
              default_model: str = DEFAULT_MODEL, correction: str | None = None,
              max_reply_bytes: int = MAX_REPLY_BYTES) -> dict[str, Any]:
    """Run one agent step: returns ``{"response", "model", "bot", "stop_reason", "usage"}``
    (plus ``"text"``, the raw reply, when ``output: json`` makes ``response`` the parsed value).

    Precedence: model = config > bot > ``default_model``; max_tokens = config > bot > 4096;
    temperature = config > bot > not sent; system = config ``system`` > bot system prompt > none.
    """
    prompt = _prompt(config)
    output = config.get("output") or "text"
    if output not in ("text", "json"):
        raise _invalid_config("output", "'text' or 'json'", output)
    if bot.provider is not None and bot.provider.lower() not in _SUPPORTED_PROVIDERS:
        raise StepFailed(
            f"bot '{bot.slug}' uses provider '{bot.provider}'; this runtime only calls Anthropic models",
            code="agent.unsupported_provider",
            details={"bot": bot.slug, "provider": bot.provider},
        )
    model = _optional_str(config, "model") or bot.model or default_model
    max_tokens = _optional_int(config, "max_tokens")
    temperature = _optional_float(config, "temperature")
    system = _optional_str(config, "system")

    if correction and correction.strip():
        prompt = prompt + CORRECTION_HEADER + correction.strip()
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens or bot.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": prompt}],
    }
    if system is None:
        system = bot.system_prompt
    if system:
        request["system"] = system
    # Temperature is sent only when someone chose one: newer models reject it outright (400
    # "temperature is deprecated for this model"), so a bot that doesn't ask must not send it. The
    # SDK (>= 1.0) dropped the keyword; extra_body puts the same field on the wire.
    if temperature is None:
        temperature = bot.temperature
    if temperature is not None:
        request["extra_body"] = {"temperature": temperature}

    client = _without_retries(client if client is not None else make_client())
    with _api_errors(model=model, client=client, max_reply_bytes=max_reply_bytes):
        message = _message(client.messages.create(**request))
        text = _text_of(message)
        # Inside the boundary: a reply missing its usage is as malformed as one missing its content.
        result: dict[str, Any] = {
            "response": text,
            "model": message.model,
            "bot": bot.slug,
            "stop_reason": message.stop_reason,
            "usage": {
                "input_tokens": message.usage.input_tokens,
                "output_tokens": message.usage.output_tokens,
            },
        }
    if output == "json":
        result["response"] = _parse_json_reply(text, model=message.model, stop_reason=message.stop_reason)
        result["text"] = text
    return result


def request_correction(client: anthropic.Anthropic | None, *, model: str, prompt: str) -> str:
    """Ask the model for a corrected approach (the prompt comes from ``selfcorrect``); returns its text.

    Called between attempts of a failed step, so its own failures are classified like a step's.
    """
    client = _without_retries(client if client is not None else make_client())
    with _api_errors(model=model, client=client, max_reply_bytes=MAX_REPLY_BYTES):
        message = _message(client.messages.create(
            model=model,
            max_tokens=CORRECTION_MAX_TOKENS,
            messages=[{"role": "user", "content": prompt}],
        ))
        text = _text_of(message)
    return text.strip()


# --------------------------------------------------------------------------- client and key


_clients: dict[tuple[str, str | None, float], anthropic.Anthropic] = {}
_clients_lock = threading.Lock()


def make_client(*, api_key: str | None = None, base_url: str | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> anthropic.Anthropic:
    """An Anthropic client with the SDK's retries off, cached per process.

    ``api_key`` defaults to :func:`resolve_api_key`, ``base_url`` to ``ANTHROPIC_BASE_URL`` (passed
    explicitly so the choice is visible here rather than left to the SDK's environment lookup).
    A warm container reuses the client and so its connection pool; the cache key holds a hash of the
    key, not the key, and a rotated key simply makes a new client.
    """
    if api_key is None:
        api_key = resolve_api_key()
    if base_url is None:
        base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
    key = (hashlib.sha256(api_key.encode()).hexdigest(), base_url, float(timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # No redirects: the Messages API never sends one, and following it sent the prompt (or a
            # GET) wherever a hostile endpoint pointed, instance metadata included.
            client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0,
                                         http_client=anthropic.DefaultHttpxClient(follow_redirects=False))
            _clients[key] = client
    return client


def resolve_api_key() -> str:
    """The Anthropic API key: ``ANTHROPIC_API_KEY``, else the Secrets Manager secret named by
    ``ANTHROPIC_SECRET_NAME`` (plain text or JSON ``{"api_key": ...}``), read through Powertools
    Parameters and cached by it for 300 s (so a rotated key is picked up within five minutes).
    """
    key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if key:
        return key
    secret_name = os.environ.get("ANTHROPIC_SECRET_NAME", "").strip()
    if not secret_name:
        raise StepFailed(f"No Anthropic API key: {_HOW_TO_SET_KEY}", code="agent.no_api_key")
    return _key_from_secret(secret_name, _fetch_secret(secret_name))


def _fetch_secret(name: str) -> str | bytes:
    # Imported here: only the cloud path needs Powertools Parameters (and boto3 behind it).
    from aws_lambda_powertools.utilities import parameters

    try:
        return parameters.get_secret(name, max_age=300)
    except parameters.GetParameterError as exc:
        # Powertools wraps the botocore error without chaining it explicitly; it is the context.
        code = _aws_error_code(exc.__context__)
        if code in {"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure",
                    "InvalidRequestException", "ValidationException", "UnrecognizedClientException"}:
            raise StepFailed(
                f"No Anthropic API key: cannot read secret '{name}' ({code}); {_HOW_TO_SET_KEY}",
                code="agent.no_api_key",
                details={"secret": name, "aws_error": code},
            ) from exc
        raise StepRetryable(
            f"Could not read the Anthropic API key from secret '{name}': {code or type(exc.__context__).__name__}",
            code="agent.secret_unavailable",
            details={"secret": name, "aws_error": code},
        ) from exc


def _key_from_secret(name: str, value: str | bytes) -> str:
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        candidate = data.get("api_key") if isinstance(data, dict) else None
        if not isinstance(candidate, str) or not candidate.strip():
            # Never echo the secret's content: it is a secret even when it is malformed.
            raise StepFailed(
                f'No Anthropic API key: secret \'{name}\' is JSON without a string "api_key" field; '
                f"{_HOW_TO_SET_KEY}",
                code="agent.no_api_key",
                details={"secret": name},
            )
        text = candidate.strip()
    if not text:
        raise StepFailed(f"No Anthropic API key: secret '{name}' is empty; {_HOW_TO_SET_KEY}",
                         code="agent.no_api_key", details={"secret": name})
    return text


def _aws_error_code(exc: BaseException | None) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _without_retries(client: anthropic.Anthropic) -> anthropic.Anthropic:
    # A client handed in by a caller may have the SDK's default of 2 retries; those would hide
    # attempts from the run history and multiply the Step Functions retries.
    client = client if client.max_retries == 0 else client.with_options(max_retries=0)
    # Every client's connections answer to the call's budget (replyguard), a caller's client too.
    guard_client(client._client)
    return client


# --------------------------------------------------------------------------- error classification


@dataclass(frozen=True)
class ErrorRule:
    """How one SDK exception class becomes a step error."""

    code: str
    retryable: bool
    what: str  # "rate limit", "overloaded", ...: goes into the message
    hint: str = ""


_AUTH_HINT = "check the API key (ANTHROPIC_API_KEY or the secret named by ANTHROPIC_SECRET_NAME)"
_ACCOUNT_HINT = "the Anthropic organization or key is not in a usable state; see the Anthropic Console"
_BILLING_HINT = "the account's credit or spend limit stops it; see Plans & Billing in the Anthropic Console"

# Every exception class ``anthropic`` exports is listed explicitly (a test enforces it), so a new
# SDK version that adds one makes somebody decide whether it is worth retrying. Lookup walks the
# raised class's MRO, so the SDK's many unexported, error_code-specific subclasses get their
# status class's rule.
ERROR_RULES: dict[type[anthropic.AnthropicError], ErrorRule] = {
    # Base classes: fallbacks for whatever is not more specific.
    anthropic.AnthropicError: ErrorRule("agent.client_error", False, "client error"),
    anthropic.APIError: ErrorRule("agent.api_error", False, "error"),
    # Any other status: retryable iff 429 or >= 500 (decided per instance in classify_error).
    anthropic.APIStatusError: ErrorRule("agent.api_error", False, "error"),
    anthropic.APIResponseValidationError: ErrorRule(
        "agent.invalid_response", False, "reply that does not match the SDK's schema",
        "the SDK and the API disagree; retrying will not change that"),
    # Never raised by messages.create; listed so the table stays complete.
    anthropic.APIWebhookValidationError: ErrorRule("agent.api_error", False, "webhook validation error"),
    # No reply at all: the network or the client's deadline.
    anthropic.APIConnectionError: ErrorRule("agent.connection", True, "connection error"),
    anthropic.APITimeoutError: ErrorRule("agent.timeout", True, "timeout"),
    # 4xx: the request or the account is wrong; the same request will fail the same way.
    anthropic.BadRequestError: ErrorRule("agent.bad_request", False, "bad request"),
    anthropic.UnprocessableEntityError: ErrorRule("agent.bad_request", False, "unprocessable request"),
    anthropic.RequestBodyEncodingInvalidError: ErrorRule("agent.bad_request", False, "bad request encoding"),
    anthropic.RequestBodyEncodingUnsupportedError: ErrorRule(
        "agent.bad_request", False, "unsupported request encoding"),
    anthropic.AuthenticationError: ErrorRule("agent.auth", False, "authentication failure", _AUTH_HINT),
    anthropic.PermissionDeniedError: ErrorRule("agent.auth", False, "permission denied", _AUTH_HINT),
    anthropic.SandboxEgressRestrictedError: ErrorRule(
        "agent.auth", False, "egress restriction", "the network policy forbids this call"),
    anthropic.NotFoundError: ErrorRule(
        "agent.not_found", False, "not found", "check the model name (step 'model', or the bot's)"),
    anthropic.ContentTooLargeError: ErrorRule(
        "agent.request_too_large", False, "request too large", "shorten the prompt or system prompt"),
    anthropic.RequestBodyTooLargeAfterDecodingError: ErrorRule(
        "agent.request_too_large", False, "request too large", "shorten the prompt or system prompt"),
    anthropic.RequestHeaderFieldsTooLargeError: ErrorRule(
        "agent.request_too_large", False, "request headers too large"),
    anthropic.PaymentRequiredError: ErrorRule("agent.billing", False, "payment required", _BILLING_HINT),
    anthropic.LinkedOrganizationBillingUnavailableError: ErrorRule(
        "agent.billing", False, "billing unavailable", _BILLING_HINT),
    anthropic.LinkedOrganizationSpendLimitReachedError: ErrorRule(
        "agent.billing", False, "spend limit reached", _BILLING_HINT),
    anthropic.ConflictError: ErrorRule("agent.api_error", False, "conflict"),
    anthropic.PreconditionFailedError: ErrorRule("agent.api_error", False, "precondition failed"),
    anthropic.ClaudeCodeKeyCreatorNotMemberError: ErrorRule(
        "agent.account", False, "key creator is not a member", _ACCOUNT_HINT),
    anthropic.ClaudeCodeVersionTooOldError: ErrorRule("agent.account", False, "client too old", _ACCOUNT_HINT),
    anthropic.CMEKKeyDisabledError: ErrorRule("agent.account", False, "encryption key disabled", _ACCOUNT_HINT),
    anthropic.CMEKKeyNetworkBlockedError: ErrorRule(
        "agent.account", False, "encryption key network-blocked", _ACCOUNT_HINT),
    anthropic.OrganizationOnHoldError: ErrorRule("agent.account", False, "organization on hold", _ACCOUNT_HINT),
    anthropic.OrganizationTypeNotSupportedError: ErrorRule(
        "agent.account", False, "organization type not supported", _ACCOUNT_HINT),
    anthropic.ParentOrganizationRequiredError: ErrorRule(
        "agent.account", False, "parent organization required", _ACCOUNT_HINT),
    anthropic.WorkspaceHumanReviewDisabledError: ErrorRule(
        "agent.account", False, "human review disabled", _ACCOUNT_HINT),
    # Timing: the request did not complete, for reasons unrelated to its content.
    anthropic.RequestTimeoutError: ErrorRule("agent.timeout", True, "request timeout"),
    anthropic.ClientClosedRequestError: ErrorRule("agent.connection", True, "request closed early"),
    # 429: wait and try again; except spend limits, which last until someone raises them.
    anthropic.RateLimitError: ErrorRule("agent.rate_limited", True, "rate limit"),
    anthropic.RampLimitExceededError: ErrorRule("agent.rate_limited", True, "usage ramp limit"),
    anthropic.ContractSpendLimitReachedError: ErrorRule(
        "agent.billing", False, "contract spend limit reached", _BILLING_HINT),
    anthropic.EnforcedSpendLimitReachedError: ErrorRule(
        "agent.billing", False, "spend limit reached", _BILLING_HINT),
    # 5xx: the API's problem, usually brief.
    anthropic.InternalServerError: ErrorRule("agent.server_error", True, "server error"),
    anthropic.ServiceUnavailableError: ErrorRule("agent.server_error", True, "service unavailable"),
    anthropic.GatewayTimeoutError: ErrorRule("agent.server_error", True, "gateway timeout"),
    anthropic.CMEKContextUnavailableError: ErrorRule("agent.server_error", True, "encryption context unavailable"),
    anthropic.CMEKKeyUnreachableError: ErrorRule("agent.server_error", True, "encryption key unreachable"),
    anthropic.OverloadedError: ErrorRule("agent.overloaded", True, "overloaded"),
    # 501 says the server does not do this at all: retrying cannot help.
    anthropic.HTTPNotImplementedError: ErrorRule("agent.api_error", False, "not implemented"),
}


def _rule_for(exc: anthropic.AnthropicError) -> ErrorRule:
    for klass in type(exc).__mro__:
        rule = ERROR_RULES.get(klass)
        if rule is not None:
            return rule
    raise AssertionError("unreachable: AnthropicError is in ERROR_RULES")  # pragma: no cover


def classify_error(exc: anthropic.AnthropicError, *, model: str, secret: str | None = None,
                   timeout: Any = None) -> StepError:
    """The ``StepFailed`` / ``StepRetryable`` for an SDK exception (not raised: the caller chains it).

    ``secret`` (the API key) is scrubbed from the message, should an API or proxy ever echo it.
    """
    rule = _rule_for(exc)
    details: dict[str, Any] = {"model": model}
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        retryable = rule.retryable
        if rule is ERROR_RULES[anthropic.APIStatusError]:
            # A status the SDK has no class for (418, 507 via a proxy...): decide by the number.
            retryable = status == 429 or status >= 500
        details["status"] = status
        if exc.request_id:
            details["request_id"] = exc.request_id
        if exc.error_code:
            details["error_code"] = exc.error_code
        retry_after = _retry_after(exc)
        if retry_after is not None:
            details["retry_after"] = retry_after
        detail = exc.api_message or _body_excerpt(exc) or exc.message
        message = f"Anthropic API {rule.what} ({status}) for model {model}: {detail}"
        if retry_after is not None:
            message += f" (retry after {retry_after:g}s)"
    elif isinstance(exc, anthropic.APITimeoutError):
        retryable = rule.retryable
        after = f" after {timeout:g}s" if isinstance(timeout, int | float) else ""
        message = f"Anthropic API request for model {model} timed out{after} (client timeout)"
    elif isinstance(exc, anthropic.APIConnectionError):
        retryable = rule.retryable
        cause = exc.__cause__ or exc.__context__
        why = f"{type(cause).__name__}: {cause}" if cause is not None else exc.message
        message = f"Could not reach the Anthropic API ({exc.request.url.host}) for model {model}: {why}"
    else:
        retryable = rule.retryable
        message = f"Anthropic API {rule.what} for model {model}: {exc}"
    if rule.hint:
        message += f" - {rule.hint}"
    if secret:
        message = message.replace(secret, "***")
    cls = StepRetryable if retryable else StepFailed
    return cls(message, code=rule.code, details=details)


@contextmanager
def _api_errors(*, model: str, client: anthropic.Anthropic, max_reply_bytes: int) -> Iterator[None]:
    """The one boundary where SDK exceptions become step errors, around a call held to the client's
    timeout as a whole and to ``max_reply_bytes`` (``replyguard``)."""
    budget = _budget_secs(client.timeout)
    # The grace lets httpx's own timeout answer first when a single read stalls for the whole budget
    # (its APITimeoutError is the clearer cause); the guard ends what that timeout cannot see.
    with guarded_call(budget + _GUARD_GRACE_SECS, max_reply_bytes) as guard:
        try:
            yield
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            if guard.bytes_read == 0:
                raise  # nothing came back: a bug on this side, not a bad reply
            # The SDK parses a 200 reply without checking its shape: malformed or 3,000-level deep
            # JSON, or JSON that is no message, surface as these (RecursionError included).
            raise _limit_error(guard, model, budget) or StepFailed(
                f"Anthropic API reply for model {model} is not a Messages API response "
                f"({type(exc).__name__})",
                code="agent.invalid_response", details={"model": model},
            ) from exc
        except anthropic.AnthropicError as exc:
            # Which limit cut the connection, if one did: the SDK only saw the connection break.
            limit = _limit_error(guard, model, budget)
            if limit is not None:
                raise limit from exc
            raise classify_error(exc, model=model, secret=client.api_key, timeout=client.timeout) from exc
        # A reply without a length ends at end-of-file, and the guard's shutdown looks exactly like
        # one: without this check a reply cut off at the deadline would pass for the whole one.
        limit = _limit_error(guard, model, budget)
        if limit is not None:
            raise limit


def _limit_error(guard: Any, model: str, budget: float) -> StepError | None:
    """The step error for the limit that ended the call, if one did."""
    if guard.too_large:
        return StepFailed(
            f"Anthropic API reply for model {model} is over {guard.max_bytes} bytes; stopped reading",
            code="agent.reply_too_large", details={"model": model, "max_bytes": guard.max_bytes},
        )
    if guard.timed_out:
        return StepRetryable(
            f"Anthropic API request for model {model} timed out after {budget:g}s "
            "(no complete reply within the client timeout)",
            code="agent.timeout", details={"model": model, "timeout_secs": budget},
        )
    return None


def _budget_secs(timeout: Any) -> float:
    """The whole call's budget from the client's timeout (a number, or httpx's per-phase Timeout)."""
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout)
    phases = [getattr(timeout, name, None) for name in ("connect", "read", "write", "pool")]
    numbers = [float(p) for p in phases if isinstance(p, int | float) and p > 0]
    return max(numbers) if numbers else DEFAULT_TIMEOUT


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    headers = exc.response.headers
    raw_ms = headers.get("retry-after-ms")
    raw = headers.get("retry-after")
    try:
        if raw_ms is not None:
            return float(raw_ms) / 1000
        if raw is not None:
            return float(raw)
    except ValueError:
        # An HTTP-date retry-after: rare from this API, and Step Functions' backoff covers it.
        return None
    return None


def _body_excerpt(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if body is None:
        return ""
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return _excerpt(text)


# --------------------------------------------------------------------------- config and reply


def _prompt(config: Mapping[str, Any]) -> str:
    prompt = config.get("prompt")
    if prompt is None or prompt == "":
        raise StepFailed("agent step: 'prompt' is empty after rendering", code="agent.invalid_config",
                         details={"field": "prompt"})
    if isinstance(prompt, str):
        return prompt
    # A prompt that is a single template ("{{ steps.fetch.output }}") renders to that value; the
    # model reads text, and JSON is the faithful text of a JSON value.
    return json.dumps(prompt, ensure_ascii=False, indent=2, default=str)


def _optional_str(config: Mapping[str, Any], name: str) -> str | None:
    # A template that rendered to "" or whitespace means "not set": fall through to the bot/default.
    value = config.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid_config(name, "a string", value)
    return value.strip() or None


def _optional_int(config: Mapping[str, Any], name: str) -> int | None:
    value = config.get(name)
    if value is None:
        return None
    # Rendered templates are strings: "{{ inputs.budget }}" -> "512" is still a number.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid_config(name, "a positive integer", value)
    return value


def _optional_float(config: Mapping[str, Any], name: str) -> float | None:
    value = config.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _invalid_config(name, "a number", value) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid_config(name, "a number", value)
    return float(value)


def _invalid_config(name: str, expected: str, value: Any) -> StepFailed:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return StepFailed(f"agent step: '{name}' must be {expected}, got {shown}", code="agent.invalid_config",
                      details={"field": name})


def _message(reply: Any) -> anthropic.types.Message:
    # The SDK hands back whatever a 200 carried when it is not a JSON object (text, a list, null).
    if not isinstance(reply, anthropic.types.Message):
        raise TypeError(f"the reply is {type(reply).__name__}, not a message")
    return reply


def _text_of(message: Any) -> str:
    # Only text blocks are the answer; thinking or tool blocks are not part of the step's output.
    return "".join(block.text for block in message.content if getattr(block, "type", None) == "text")


def _parse_json_reply(text: str, *, model: str, stop_reason: str | None) -> Any:
    candidates = [text.strip()]
    fenced = _FENCED.search(text)
    if fenced:
        candidates.append(fenced.group(1).strip())

    unparsed = object()
    for candidate in candidates:
        if not candidate:
            continue
        # Bounded: a reply steered into 5,000 nesting levels is not JSON, not a RecursionError.
        value = json_or(candidate, unparsed, what="the reply")
        if value is not unparsed:
            return value
    why = " (the reply was cut off at max_tokens; raise max_tokens)" if stop_reason == "max_tokens" else ""
    raise StepFailed(
        f"agent step expected a JSON reply from model {model}, got{why}: {_excerpt(text)!r}",
        code="agent.invalid_json",
        details={"excerpt": _excerpt(text), "stop_reason": stop_reason},
    )


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."
