"""Webhook authentication: verify a request's raw body and headers before anything parses them.

Three schemes, chosen by a webhook trigger's ``auth.type``:

``hmac_sha256``
    GitHub style. ``X-Hub-Signature-256: sha256=<hex>`` is the HMAC-SHA256 of the raw body.
``standard_webhooks``
    Standard Webhooks v1 (https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp``
    and ``webhook-signature`` headers; the timestamp is signed too, so replays are bounded.
``bearer_token``
    ``Authorization: Bearer <token>``, compared with the stored secret.

(``none`` accepts every request; it exists for local development and public endpoints.)

Rules every function here keeps:

* The signature covers the *raw* bytes. Parsing JSON first and re-serialising would change
  whitespace and key order, and the signature would no longer match (or worse, a different
  document would be trusted), so callers pass the body exactly as received.
* Every comparison of secret-derived values goes through :func:`hmac.compare_digest`, so the
  time taken does not reveal how many leading characters of a guess were right.
* Header names are matched case-insensitively: API Gateway REST APIs pass on the client's case.
* A failure raises :class:`~boternity.errors.SignatureError` with a fixed message. Messages
  never contain the secret, the expected signature or anything derived from them.

Stdlib only: the webhook Lambda imports this on its cold-start path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from boternity.errors import SignatureError, WorkflowError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "AUTH_TYPES",
    "DEFAULT_TOLERANCE_SECS",
    "Verified",
    "execution_name_for_delivery",
    "sign_hmac_sha256",
    "sign_standard_webhooks",
    "verify",
    "verify_bearer",
    "verify_hmac_sha256",
    "verify_standard_webhooks",
]

AUTH_TYPES = ("hmac_sha256", "standard_webhooks", "bearer_token", "none")

# Standard Webhooks recommends five minutes: long enough for clock skew and a retry in flight,
# short enough that a captured request cannot be replayed much later.
DEFAULT_TOLERANCE_SECS = 300

_GITHUB_SIGNATURE = "X-Hub-Signature-256"
_GITHUB_DELIVERY = "X-GitHub-Delivery"
_SW_ID = "webhook-id"
_SW_TIMESTAMP = "webhook-timestamp"
_SW_SIGNATURE = "webhook-signature"
_SW_SECRET_PREFIX = "whsec_"

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# Bounded so int() never meets a pathological header (and 12 digits reach the year 33658).
_DIGITS = re.compile(r"[0-9]{1,12}")
_BEARER_PREFIX = re.compile(r"^bearer(?:\s+|$)", re.IGNORECASE)

# Step Functions execution names: at most 80 characters (see execution_name_for_delivery). We keep to [A-Za-z0-9_-] because other
# characters make the execution's CloudWatch log stream and metric names unusable.
_EXECUTION_PREFIX_MAX = 40
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Verified:
    """A request that authenticated.

    ``delivery_id`` is the sender's id for this delivery, to de-duplicate retries on; ``None``
    when the scheme carries none (bearer tokens, ``none``, GitHub without ``X-GitHub-Delivery``).
    """

    delivery_id: str | None
    scheme: str


# --------------------------------------------------------------------------- helpers


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of header ``name`` in any letter case, or None. Empty values count as missing."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            if value is None:
                return None
            value = str(value).strip()
            return value or None
    return None


def _raw_body(body: bytes | bytearray | memoryview | str | None) -> bytes:
    # API Gateway hands a Lambda the body as a str (already base64-decoded by the caller when
    # isBase64Encoded); its UTF-8 encoding is the bytes the sender signed.
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"webhook body must be bytes or str, not {type(body).__name__}")


def _secret_bytes(secret: str | bytes | None) -> bytes:
    if secret is None:
        raise SignatureError("webhook secret is not configured")
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    # An empty key would make the HMAC computable by anyone: fail closed.
    if not key:
        raise SignatureError("webhook secret is not configured")
    return key


def _standard_webhooks_key(secret: str | bytes) -> bytes:
    """The key of a Standard Webhooks secret: base64, with or without its ``whsec_`` prefix.

    The spec and its reference libraries base64-decode the secret in both cases, so a secret
    given without the prefix is decoded too (using it as raw bytes would fail both ways).
    """
    text = secret.decode("utf-8", "replace") if isinstance(secret, bytes | bytearray) else secret
    if text is None or not text.strip():
        raise SignatureError("webhook secret is not configured")
    encoded = text.strip().removeprefix(_SW_SECRET_PREFIX)
    try:
        # Unpadded base64 is accepted, as the reference library does.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        # Never echo the secret: say only that its shape is wrong.
        raise SignatureError("webhook secret is not valid base64 (a Standard Webhooks secret is "
                             "whsec_ followed by base64)") from None
    if not key:
        raise SignatureError("webhook secret is not configured")
    return key


def _standard_webhooks_keys(secret: str | bytes | Sequence[str] | None) -> list[bytes]:
    if secret is None:
        raise SignatureError("webhook secret is not configured")
    if isinstance(secret, str | bytes | bytearray):
        return [_standard_webhooks_key(secret)]
    keys = [_standard_webhooks_key(s) for s in secret]
    if not keys:
        raise SignatureError("webhook secret is not configured")
    return keys


def _standard_webhooks_digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def _tolerance_text(tolerance_secs: int) -> str:
    if tolerance_secs % 60 == 0:
        return f"{tolerance_secs // 60}-minute"
    return f"{tolerance_secs}-second"


# --------------------------------------------------------------------------- signing


def sign_hmac_sha256(secret: str | bytes, body: bytes | str) -> str:
    """The ``X-Hub-Signature-256`` header value for ``body``: ``sha256=<hex>``."""
    digest = hmac.new(_secret_bytes(secret), _raw_body(body), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def sign_standard_webhooks(secret: str | bytes, msg_id: str, timestamp: int | str, body: bytes | str) -> str:
    """One ``webhook-signature`` entry, ``v1,<base64>``, for the given id, timestamp and body."""
    return "v1," + _standard_webhooks_digest(
        _standard_webhooks_key(secret), str(msg_id), str(timestamp), _raw_body(body)
    )


# --------------------------------------------------------------------------- verifying


def verify_hmac_sha256(secret: str | bytes, body: bytes, headers: Mapping[str, str]) -> Verified:
    """GitHub style: ``X-Hub-Signature-256: sha256=<hex>`` (or the bare hex, any case).

    The delivery id comes from ``X-GitHub-Delivery``. GitHub signs only the body, not that
    header nor any timestamp, so this scheme cannot stop a captured request being replayed
    under a new delivery id; ``standard_webhooks`` can, and is the better choice where the
    sender supports it.
    """
    key = _secret_bytes(secret)
    provided = _header(headers, _GITHUB_SIGNATURE)
    if provided is None:
        raise SignatureError(f"missing {_GITHUB_SIGNATURE} header")
    if provided[:7].lower() == "sha256=":
        provided = provided[7:].strip()
    # Checking the shape first lets compare_digest work on two ASCII strings of equal length;
    # the shape says nothing about the secret.
    if not _HEX_SHA256.fullmatch(provided):
        raise SignatureError(f"malformed {_GITHUB_SIGNATURE} header")
    expected = hmac.new(key, _raw_body(body), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), provided.lower().encode("ascii")):
        raise SignatureError("signature does not match")
    return Verified(delivery_id=_header(headers, _GITHUB_DELIVERY), scheme="hmac_sha256")


def verify_standard_webhooks(
    secret: str | bytes | Sequence[str],
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance_secs: int = DEFAULT_TOLERANCE_SECS,
) -> Verified:
    """Standard Webhooks v1.

    ``secret`` may be one secret or several (key rotation: the request passes when any secret
    matches any ``v1`` signature in the header). A secret ``whsec_<base64>`` is base64-decoded
    after the prefix; any other secret is used as the key bytes unchanged. Signatures of other
    versions (``v1a``, ...) are ignored. The timestamp must be within ``tolerance_secs`` of
    ``now`` (default: the current time) in either direction.
    """
    keys = _standard_webhooks_keys(secret)
    msg_id = _header(headers, _SW_ID)
    timestamp = _header(headers, _SW_TIMESTAMP)
    signatures = _header(headers, _SW_SIGNATURE)
    if msg_id is None:
        raise SignatureError(f"missing {_SW_ID} header")
    if timestamp is None:
        raise SignatureError(f"missing {_SW_TIMESTAMP} header")
    if signatures is None:
        raise SignatureError(f"missing {_SW_SIGNATURE} header")
    # '.' separates the parts of the signed content; allowing it inside the id or timestamp would
    # let one (id, timestamp) pair be re-split as another with the same signature.
    if "." in msg_id:
        raise SignatureError(f"invalid {_SW_ID} header")
    if not _DIGITS.fullmatch(timestamp):
        raise SignatureError(f"invalid {_SW_TIMESTAMP} header")

    raw = _raw_body(body)
    candidates = []
    for entry in signatures.split():
        version, sep, value = entry.partition(",")
        if sep and version == "v1" and value:
            candidates.append(value.encode("utf-8"))
    if not candidates:
        raise SignatureError(f"no v1 signature in {_SW_SIGNATURE} header")

    matched = False
    for key in keys:
        expected = _standard_webhooks_digest(key, msg_id, timestamp, raw).encode("ascii")
        for candidate in candidates:
            # No early exit: the time taken then does not depend on which pair matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("signature does not match")

    # Checked after the signature so that this message only ever describes a genuine request
    # that arrived too late (or early): a replay, or a sender with a wrong clock.
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_secs:
        raise SignatureError(f"timestamp outside the {_tolerance_text(tolerance_secs)} tolerance")
    return Verified(delivery_id=msg_id, scheme="standard_webhooks")


def verify_bearer(secret: str, headers: Mapping[str, str]) -> Verified:
    """``Authorization: Bearer <token>``; the ``Bearer`` prefix is optional and case-insensitive."""
    expected = _secret_bytes(secret)
    value = _header(headers, "Authorization")
    if value is not None:
        value = _BEARER_PREFIX.sub("", value, count=1).strip()
    if not value:
        raise SignatureError("missing bearer token")
    # Compare digests, not the tokens: compare_digest returns at once on a length mismatch, which
    # would tell a caller how long the token is. The digests are always 32 bytes.
    given = hashlib.sha256(value.encode("utf-8")).digest()
    wanted = hashlib.sha256(expected).digest()
    if not hmac.compare_digest(wanted, given):
        raise SignatureError("token does not match")
    return Verified(delivery_id=None, scheme="bearer_token")


def verify(
    auth_type: str,
    secret: str | bytes | Sequence[str] | None,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> Verified:
    """Verify with the scheme named by a webhook trigger's ``auth.type``.

    An unknown ``auth_type`` is a bad trigger definition (``WorkflowError``), not a bad request.
    A scheme that needs a secret and has none fails closed with ``SignatureError``.
    """
    if auth_type == "hmac_sha256":
        return verify_hmac_sha256(_single_secret(secret), body, headers)
    if auth_type == "standard_webhooks":
        if secret is None:
            raise SignatureError("webhook secret is not configured")
        return verify_standard_webhooks(secret, body, headers, now=now)
    if auth_type == "bearer_token":
        token = _single_secret(secret)
        return verify_bearer(token.decode("utf-8") if isinstance(token, bytes) else token, headers)
    if auth_type == "none":
        return Verified(delivery_id=None, scheme="none")
    raise WorkflowError(
        f"unknown webhook auth type {auth_type!r}; expected one of {', '.join(AUTH_TYPES)}",
        code="invalid_auth_type",
        field="auth.type",
    )


def _single_secret(secret: str | bytes | Sequence[str] | None) -> str | bytes:
    if secret is None:
        raise SignatureError("webhook secret is not configured")
    if isinstance(secret, str | bytes):
        return secret
    # Only Standard Webhooks defines several secrets at once; elsewhere a list is a config error,
    # and guessing which element to use could silently weaken the check.
    raise SignatureError("this webhook auth type takes exactly one secret")


# --------------------------------------------------------------------------- idempotency


def execution_name_for_delivery(workflow_name: str, delivery_id: str) -> str:
    """A Step Functions execution name that is the same for every retry of one delivery.

    Starting an execution with a name already used (within 90 days) fails with
    ``ExecutionAlreadyExists``, so a redelivered webhook cannot start a second run. The name is
    ``<workflow>-wh-<hash>``: the workflow prefix keeps it readable in the console, the hash
    (SHA-256 of the workflow name and the delivery id, base32, 32 characters = 160 bits) makes it
    deterministic and safe whatever characters or length the sender's id has.

    The name is also the run id, and run ids are unique across workflows: the hash covers the whole
    workflow name, since the prefix keeps only its first 40 characters. Without it one delivery id
    sent to two workflows whose names share those 40 (a sender fanning one message out to two
    endpoints) named one run, and the second workflow's delivery was answered as a duplicate of
    the first workflow's run and never ran.
    """
    if not delivery_id:
        raise ValueError("delivery_id must not be empty")
    digest = hashlib.sha256(f"{workflow_name}\n{delivery_id}".encode()).digest()
    suffix = base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:32]
    prefix = _UNSAFE_NAME_CHARS.sub("-", workflow_name or "").strip("-_")[:_EXECUTION_PREFIX_MAX]
    prefix = prefix.rstrip("-_") or "webhook"
    # At most 40 + 4 + 32 = 76 characters, inside the 80 Step Functions allows.
    return f"{prefix}-wh-{suffix}"
