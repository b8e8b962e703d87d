"""The HTTP edge of the api and webhook functions (API Gateway REST proxy events).

Not a Lambda handler itself: the two handlers that answer HTTP share it. It holds everything that
knows HTTP, so the service layer does not:

* reading a request: the raw body bytes, headers, the media type, the caller's identity;
* :func:`parse_body`, the one body parser: size, media type, UTF-8, then JSON or a form, each
  within the parsing limits of ``boternity.parsing``;
* :func:`to_http`, the one table from the error tree of ``boternity.errors`` to a status and the
  error body ``{"error": {"code", "message", "details"}}``; ``boternity.cli.client`` reads the same
  table backwards (:func:`error_class`).

Messages are written for the caller and never carry a stack trace, a secret or an AWS request id;
an unexpected exception becomes a generic 500 (and is logged in full by the handler instead).
Light imports only: the webhook function loads this on every cold start.
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from boternity.errors import (
    BadRequest,
    BoternityError,
    CompileError,
    Conflict,
    ExpressionError,
    Forbidden,
    MethodNotAllowed,
    NotAvailable,
    NotFound,
    PayloadTooLarge,
    Refused,
    ServiceMisconfigured,
    SignatureError,
    StartInProgress,
    TooManyRequests,
    Unprocessable,
    UnsupportedMediaType,
    ValidationFailed,
    WorkflowError,
)
from boternity.parsing import ParseError, decode_utf8, loads_json

__all__ = [
    "FORM",
    "JSON",
    "STATUS",
    "WEBHOOK_UNAUTHORIZED",
    "Request",
    "caller",
    "error_body",
    "error_class",
    "header",
    "headers",
    "is_json",
    "media_type",
    "parse_body",
    "proxy_response",
    "invalid_request_message",
    "pydantic_details",
    "raw_body",
    "read_request",
    "to_http",
]

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# One message for every failed webhook check: what exactly failed (a missing header, a wrong
# signature, an unknown secret) would help an attacker probe, so it goes to the log only.
WEBHOOK_UNAUTHORIZED = "webhook authentication failed"

#: The status of each class of the error tree; a subclass takes its nearest listed ancestor's
#: (StartInProgress is a 409 as a Conflict). Order is irrelevant: the lookup walks the MRO.
STATUS: dict[type[BoternityError], int] = {
    BadRequest: 400,
    ValidationFailed: 400,
    WorkflowError: 400,
    ExpressionError: 400,
    SignatureError: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    Unprocessable: 422,
    # The workflow is valid but exceeds a Step Functions limit: well-formed, unprocessable.
    CompileError: 422,
    TooManyRequests: 429,
    # Not the caller's fault, hence a 500 that says what is missing.
    ServiceMisconfigured: 500,
    NotAvailable: 501,
}


# ---------------------------------------------------------------------- errors → HTTP


# The most validation errors one answer lists. A 256 KiB body naming an unknown step 50,000 times
# made 50,000 errors, a 6.3 MB answer: over Lambda's 6 MB response limit, so the cloud answered 502.
MAX_ERROR_DETAILS = 100


def invalid_request_message(count: int) -> str:
    """The message of a 422 for ``count`` problems, saying when details hold only the first ones."""
    message = "the request does not match the API"
    if count > MAX_ERROR_DETAILS:
        message += f" ({count:,} problems; the first {MAX_ERROR_DETAILS} are in details)"
    return message


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _status(exc: BoternityError) -> int:
    if isinstance(exc, ParseError):
        # A body that is not UTF-8, not JSON, or beyond a parsing limit: the code says which.
        return 413 if exc.code == "too_large" else 400
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 400)


def _body(exc: BoternityError) -> dict[str, Any]:
    if isinstance(exc, ParseError):
        return error_body(exc.code, str(exc), exc.details())
    if isinstance(exc, ValidationFailed):
        n = len(exc.errors)
        message = f"{n:,} error{'s' if n != 1 else ''} in the workflow"
        if n > MAX_ERROR_DETAILS:
            message += f" (the first {MAX_ERROR_DETAILS} are in details)"
        return error_body("validation_failed", message, [e.to_dict() for e in exc.errors[:MAX_ERROR_DETAILS]])
    if isinstance(exc, WorkflowError):
        return error_body(exc.code, str(exc), [exc.to_dict()])
    if isinstance(exc, CompileError):
        return error_body("compile", str(exc), {"step_id": exc.step_id, "limit": exc.limit})
    if isinstance(exc, SignatureError):
        return error_body("unauthorized", WEBHOOK_UNAUTHORIZED)
    if isinstance(exc, ExpressionError):
        return error_body("expression", str(exc))
    return error_body(exc.code or "error", str(exc), exc.details)


def _headers(exc: BoternityError) -> dict[str, str]:
    if isinstance(exc, StartInProgress):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, MethodNotAllowed):
        return {"Allow": ", ".join(exc.allowed)}
    return {}


def to_http(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers) for an exception raised while handling a request."""
    if not isinstance(exc, BoternityError):
        return 500, error_body("internal", "internal error"), {}
    return _status(exc), _body(exc), _headers(exc)


def error_class(status: int, code: str | None = None) -> type[BoternityError]:
    """The class of the error tree an HTTP error answer stands for: :data:`STATUS` read backwards
    (the request-level class where a status has several), for clients of the API."""
    if status == 409 and code is not None and code.endswith("_in_progress"):
        return StartInProgress
    for cls, cls_status in STATUS.items():
        if cls_status == status and issubclass(cls, Refused | SignatureError):
            return cls
    return BoternityError


def pydantic_details(errors: Any) -> list[dict[str, Any]]:
    """pydantic/Powertools validation errors without the offending input (it may be large or secret),
    at most MAX_ERROR_DETAILS of them: a 970 KB decision of 90,000 unknown fields made 90,000
    errors, a 7.8 MB answer (on /approve/{id} too, which needs no credentials)."""
    out = []
    for e in list(errors or [])[:MAX_ERROR_DETAILS]:
        loc = [p if isinstance(p, int | str) else str(p) for p in e.get("loc", ())]
        out.append({"loc": loc, "type": e.get("type"), "message": e.get("msg")})
    return out


def proxy_response(status: int, body: Any, headers: dict[str, str] | None = None, *,
                   content_type: str = JSON) -> dict[str, Any]:
    """An API Gateway (REST proxy) response for handlers that do not go through Powertools."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), default=str)
    return {"statusCode": status, "headers": {"Content-Type": content_type, **(headers or {})},
            "body": text, "isBase64Encoded": False}


# ---------------------------------------------------------------------- reading requests


def raw_body(event: dict[str, Any]) -> bytes:
    """The body exactly as sent: API Gateway base64-encodes binary bodies (``isBase64Encoded``)."""
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is not valid base64", code="invalid_body") from None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def headers(event: dict[str, Any]) -> dict[str, str]:
    """Single-value headers, filled in from ``multiValueHeaders`` where only those are present."""
    out = {str(k): str(v) for k, v in (event.get("headers") or {}).items() if v is not None}
    lower = {k.lower() for k in out}
    for k, values in (event.get("multiValueHeaders") or {}).items():
        if str(k).lower() not in lower and values:
            out[str(k)] = str(values[-1])
    return out


def header(hdrs: dict[str, str], name: str) -> str | None:
    """A header in any letter case (REST APIs pass the client's case), or None when absent/empty."""
    wanted = name.lower()
    return next((v.strip() for k, v in hdrs.items() if k.lower() == wanted and v.strip()), None)


def media_type(hdrs: dict[str, str]) -> str:
    return (header(hdrs, "Content-Type") or "").split(";", 1)[0].strip().lower()


def is_json(mt: str) -> bool:
    """``application/json`` or a ``+json`` type (``application/merge-patch+json``...)."""
    return mt == JSON or mt.endswith("+json")


def caller(event: dict[str, Any]) -> str:
    """Who made the request: the IAM principal (SigV4), an authorizer's principal, or the API key."""
    ctx = event.get("requestContext") or {}
    ident = ctx.get("identity") or {}
    for value in (ident.get("userArn"), (ctx.get("authorizer") or {}).get("principalId"), ident.get("caller"),
                  ident.get("user")):
        if value:
            return str(value)
    if ident.get("apiKeyId"):
        return f"api-key:{ident['apiKeyId']}"
    return "anonymous"


class Request:
    """One request, each part read once and only when a route asks for it (a GET never decodes a
    body): the handlers never go back to the raw event for these."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    @cached_property
    def headers(self) -> dict[str, str]:
        return headers(self.event)

    @cached_property
    def body(self) -> bytes:
        """Raises BadRequest for a body API Gateway marked base64 that is not."""
        return raw_body(self.event)

    @cached_property
    def media_type(self) -> str:
        return media_type(self.headers)

    @cached_property
    def caller(self) -> str:
        return caller(self.event)

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


def read_request(event: dict[str, Any]) -> Request:
    return Request(event)


def parse_body(request: Request, *, accept: tuple[str, ...], what: str, unsupported: str,
               max_bytes: int | None = None, empty: Any = None) -> Any:
    """The body as data, checked cheapest first: size, media type, UTF-8, then syntax.

    ``accept`` holds :data:`JSON` (``application/json``, a ``+json`` type, or no Content-Type at
    all) and/or :data:`FORM` (an object of strings, the last of repeated fields winning). A blank
    body is ``empty`` whatever its type: there is nothing in it to be in the wrong format.

    Raises :class:`PayloadTooLarge` over ``max_bytes`` (``details.limit_bytes``),
    :class:`UnsupportedMediaType` with the message ``unsupported`` for any other type, and
    :class:`~boternity.parsing.ParseError` for text that is not UTF-8, not JSON, or beyond a
    parsing limit (naming ``what``, the line and the column).
    """
    raw = request.body
    if max_bytes is not None and len(raw) > max_bytes:   # before parsing anything that large
        raise PayloadTooLarge(f"{what} is larger than {max_bytes // 1024} KiB", details={"limit_bytes": max_bytes})
    if not raw.strip():
        return empty
    mt = request.media_type
    is_form = mt == FORM and FORM in accept
    if not is_form and not (JSON in accept and (not mt or is_json(mt))):
        raise UnsupportedMediaType(unsupported)
    text = decode_utf8(raw, what=what)
    if is_form:
        return dict(parse_qsl(text, keep_blank_values=True))
    return loads_json(text, what=what)
