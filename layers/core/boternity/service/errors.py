"""HTTP errors of the API and webhook functions, and the mapping of every Boternity error to one.

Every error response has one shape, ``{"error": {"code", "message", "details"}}``. Messages are
written for the caller and never carry a stack trace, a secret or an AWS request id; an
unexpected exception becomes a generic 500 (and is logged in full instead).
"""

from __future__ import annotations

import json
from typing import Any

from boternity.errors import (
    BoternityError,
    CompileError,
    Conflict,
    ExpressionError,
    NotFound,
    SignatureError,
    ValidationFailed,
    WorkflowError,
)
from boternity.parsing import ParseError

# One message for every failed webhook check: what exactly failed (a missing header, a wrong
# signature, an unknown secret) would help an attacker probe, so it goes to the log only.
WEBHOOK_UNAUTHORIZED = "webhook authentication failed"


class ApiError(BoternityError):
    """An error with an HTTP status. Subclasses fix the status and the default code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFoundError(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class ConflictError(ApiError):
    status, code = 409, "conflict"


class StartInProgress(ConflictError):
    """Another invocation is starting the run for this key; it carries ``Retry-After``. Triggers
    that a platform retries (S3, EventBridge, Scheduler) must fail the invocation on it, not
    drop the delivery: the holder may be dead, and only a later retry takes its claim over."""


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, code = 422, "unprocessable"


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


class ServiceMisconfigured(ApiError):
    """The deployment lacks a setting. Not the caller's fault, hence a 500 that says what is missing."""

    status, code = 500, "misconfigured"


class NotAvailable(ApiError):
    """An operation this environment cannot perform (RedriveExecution on an emulator)."""

    status, code = 501, "not_implemented"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def to_http(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers) for an exception raised while handling a request."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.code, exc.message, exc.details), dict(exc.headers)
    if isinstance(exc, ParseError):
        # A body that is not UTF-8, not JSON, or beyond a parsing limit: the code says which.
        return 413 if exc.code == "too_large" else 400, error_body(exc.code, str(exc), exc.details()), {}
    if isinstance(exc, ValidationFailed):
        n = len(exc.errors)
        return 400, error_body("validation_failed", f"{n} error{'s' if n != 1 else ''} in the workflow",
                               [e.to_dict() for e in exc.errors]), {}
    if isinstance(exc, WorkflowError):
        return 400, error_body(exc.code, str(exc), [exc.to_dict()]), {}
    if isinstance(exc, ExpressionError):
        return 400, error_body("expression", str(exc), None), {}
    if isinstance(exc, CompileError):
        # The workflow is valid but exceeds a Step Functions limit: well-formed, unprocessable.
        return 422, error_body("compile", str(exc), {"step_id": exc.step_id, "limit": exc.limit}), {}
    if isinstance(exc, SignatureError):
        return 401, error_body("unauthorized", WEBHOOK_UNAUTHORIZED), {}
    if isinstance(exc, NotFound):
        return 404, error_body("not_found", str(exc)), {}
    if isinstance(exc, Conflict):
        return 409, error_body(exc.code, str(exc)), {}
    if isinstance(exc, BoternityError):
        return 400, error_body(getattr(exc, "code", "error") or "error", str(exc)), {}
    return 500, error_body("internal", "internal error"), {}


def pydantic_details(errors: Any) -> list[dict[str, Any]]:
    """pydantic/Powertools validation errors without the offending input (it may be large or secret)."""
    out = []
    for e in errors or []:
        loc = [p if isinstance(p, int | str) else str(p) for p in e.get("loc", ())]
        out.append({"loc": loc, "type": e.get("type"), "message": e.get("msg")})
    return out


def proxy_response(status: int, body: Any, headers: dict[str, str] | None = None, *,
                   content_type: str = "application/json") -> dict[str, Any]:
    """An API Gateway (REST proxy) response for handlers that do not go through Powertools."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), default=str)
    return {"statusCode": status, "headers": {"Content-Type": content_type, **(headers or {})},
            "body": text, "isBase64Encoded": False}
