"""Page tokens of the API's listings (opaque, pinned to the listing they came from) and key-safe
hashes of caller-chosen strings. DynamoDB itself is ``boternity.store``'s."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from boternity.errors import BadRequest
from boternity.store.dynamo import plain

__all__ = ["decode_token", "encode_token", "short_hash"]


def short_hash(text: str, n: int = 40) -> str:
    """A fixed-length key part for caller-chosen strings (idempotency keys, delivery ids): bounded,
    and free of the characters (``#``) that separate key parts."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def encode_token(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps(plain(key), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_PAGE_KEY = {"pk", "sk", "gsi1pk", "gsi1sk"}   # every listing pages the gsi1 index


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
    # Exactly a page key of the gsi1 listings (table keys and index keys, each within DynamoDB's
    # 1,024-byte sort-key size): a forged token without them answered 500, and one with extra
    # attributes DynamoDB refuses as a starting key.
    if (not isinstance(key, dict) or set(key) != _PAGE_KEY
            or not all(isinstance(v, str) and len(v) <= 1024 for v in key.values())):
        raise BadRequest("next_token is not valid", code="invalid_next_token")
    if any(key.get(k) != v for k, v in expect.items()):
        raise BadRequest("next_token belongs to another listing", code="invalid_next_token")
    return key
