"""Small DynamoDB helpers shared by the service modules: clients, plain values, page tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import TYPE_CHECKING, Any

import boto3

from boternity.service.errors import BadRequest

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


def dynamodb() -> Any:
    # A new resource per store object: boto3 resources are cheap, and creating them at call time
    # keeps them valid across the emulator's (moto's) per-test backends.
    return boto3.resource("dynamodb")


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancellation_codes(exc: ClientError) -> list[str]:
    """The per-item reasons of a cancelled TransactWriteItems, in request order."""
    return [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons") or []]


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float, recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "as_integer_ratio") and not isinstance(value, bool | int | float):
        return int(value) if value == int(value) else float(value)
    return value


def short_hash(text: str, n: int = 40) -> str:
    """A fixed-length key part for caller-chosen strings (idempotency keys, delivery ids): bounded,
    and free of the characters (``#``) that separate key parts."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def encode_token(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps(plain(key), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, *, expect: dict[str, str]) -> dict[str, Any] | None:
    """A page token back to an ExclusiveStartKey. ``expect`` pins attributes (the partition being
    listed), so a token from one listing cannot be replayed against another."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest("next_token is not valid", code="invalid_next_token") from None
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise BadRequest("next_token is not valid", code="invalid_next_token")
    if any(key.get(k) != v for k, v in expect.items()):
        raise BadRequest("next_token belongs to another listing", code="invalid_next_token")
    return key
