"""Reading API Gateway (REST proxy) requests: the raw body bytes, headers, the caller's identity."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from boternity.service.errors import BadRequest


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
