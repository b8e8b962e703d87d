"""Start-once claims: Powertools Idempotency on the run table.

Every start that a caller may repeat goes through one claim: an API ``Idempotency-Key`` and a
trigger's delivery id (webhook delivery, S3 notification, cron occurrence, EventBridge event).
A claim item moves INPROGRESS -> COMPLETED (the started run's id is its result) and is deleted
when the start fails, so a retry starts afresh. A function that dies between claiming and
starting leaves the claim INPROGRESS only until its invocation's deadline (the Lambda context's
remaining time, or :data:`CLAIM_IN_PROGRESS_SECS` where there is no Lambda context): before it a
repeat is refused as in progress, after it the next attempt takes the claim over.

Items: ``IDEM#<workflow>`` / ``<scope>#<sha256 of the key>``, with ``status``, ``expires_at``
(the table's TTL attribute), ``in_progress_expires_ms``, ``payload_hash`` and ``result``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemNotFoundError,
    IdempotencyValidationError,
)

from boternity.store import dynamo, keys

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

# Where no Lambda context gives a deadline (the local engine, library use): the API and webhook
# functions' Timeout in template.yaml, so a claim outlives any start that could still finish.
CLAIM_IN_PROGRESS_SECS = 29
CLAIM_IN_PROGRESS_ENV = "BOTERNITY_CLAIM_IN_PROGRESS_SECS"
# How long an Idempotency-Key returns its first run (Stripe's and the IETF draft's day).
IDEMPOTENCY_KEY_TTL_SECS = 86_400
IDEMPOTENCY_KEY_TTL_ENV = "BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS"
# Longer than any sender's retry schedule (Standard Webhooks retries for about 3 days), so a
# late redelivery is still recognised; the run id derived from the delivery backs it up for as
# long as the run record lives.
DELIVERY_TTL_SECS = 7 * 86_400
DELIVERY_TTL_ENV = "BOTERNITY_DELIVERY_TTL_SECS"


@dataclass(frozen=True)
class ClaimScope:
    """What a claim dedupes: names its items and errors, and how long a completed one lasts."""

    name: str
    noun: str
    ttl_secs: int
    ttl_env: str

    def ttl(self) -> int:
        return _positive_int_env(self.ttl_env, self.ttl_secs)


IDEMPOTENCY_KEY = ClaimScope("key", "Idempotency-Key", IDEMPOTENCY_KEY_TTL_SECS, IDEMPOTENCY_KEY_TTL_ENV)
DELIVERY = ClaimScope("delivery", "delivery id", DELIVERY_TTL_SECS, DELIVERY_TTL_ENV)


class ClaimInProgress(Exception):
    """Another invocation holds the claim and its deadline has not passed."""

    def __init__(self, scope: ClaimScope, retry_after_secs: int) -> None:
        super().__init__(f"a start with this {scope.noun} is in progress")
        self.scope = scope
        self.retry_after_secs = retry_after_secs


class ClaimReused(Exception):
    """The key was claimed for a different payload."""

    def __init__(self, scope: ClaimScope) -> None:
        super().__init__(f"this {scope.noun} was used with a different payload")
        self.scope = scope


class LocalContext:
    """The part of a Lambda context Powertools reads: time left before the invocation's deadline.

    Stands in where handlers run outside Lambda, so a claim there expires as it would in the cloud.
    """

    def __init__(self, budget_secs: float | None = None) -> None:
        budget = claim_in_progress_secs() if budget_secs is None else budget_secs
        self._deadline = time.monotonic() + budget

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def claim_in_progress_secs() -> int:
    return _positive_int_env(CLAIM_IN_PROGRESS_ENV, CLAIM_IN_PROGRESS_SECS)


@dataclass
class Claimed:
    result: dict[str, Any]
    replayed: bool   # an earlier start's stored result, not this call's


def start_once(table_name: str, *, client: Any = None, scope: ClaimScope, workflow: str, key: str, payload_hash: str,
               context: Any, start: Callable[[], dict[str, Any]]) -> Claimed:
    """Run ``start`` at most once per ``(workflow, key)`` while its claim lives.

    Raises :class:`ClaimInProgress` while another invocation holds the claim, :class:`ClaimReused`
    when the key comes with another payload; an exception from ``start`` deletes the claim and
    propagates. ``client``: a low-level DynamoDB client (:func:`boternity.store.dynamo.client`),
    made here when none is given.
    """
    persistence = DynamoDBPersistenceLayer(
        table_name, key_attr="pk", sort_key_attr="sk", static_pk_value=keys.claims_pk(workflow),
        expiry_attr="expires_at", in_progress_expiry_attr="in_progress_expires_ms", status_attr="status",
        data_attr="result", validation_key_attr="payload_hash", boto3_client=client or dynamo.client())
    replayed = False

    def mark_replay(response: Any, _record: DataRecord) -> Any:
        nonlocal replayed
        replayed = True
        return response

    config = IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="payload",
                               raise_on_no_idempotency_key=True, expires_after_seconds=scope.ttl(),
                               hash_function="sha256", response_hook=mark_replay)
    # Without a deadline Powertools would keep an INPROGRESS claim for the whole TTL: the bug
    # this module exists to fix (a crash between claim and start blocking every retry).
    config.register_lambda_context(context if context is not None else LocalContext())
    claim = {"key": key, "payload": payload_hash}

    @idempotent_function(data_keyword_argument="claim", persistence_store=persistence, config=config,
                         key_prefix=scope.name)
    def claimed_start(*, claim: dict[str, str]) -> dict[str, Any]:
        return start()

    try:
        result = claimed_start(claim=claim)
    except IdempotencyValidationError:
        raise ClaimReused(scope) from None
    except IdempotencyAlreadyInProgressError:
        raise ClaimInProgress(scope, _retry_after(persistence, claim)) from None
    return Claimed(result=dict(result or {}), replayed=replayed)


def _retry_after(persistence: DynamoDBPersistenceLayer, claim: dict[str, str]) -> int:
    """Whole seconds until the holder's deadline passes (at least 1): when a retry can take over."""
    try:
        record = persistence.get_record(data=claim)
    except (IdempotencyItemNotFoundError, IdempotencyValidationError):
        return 1   # gone or replaced meanwhile: retrying at once is right
    expiry_ms = record.in_progress_expiry_timestamp
    if expiry_ms is None:
        return claim_in_progress_secs()
    return max(1, math.ceil((int(expiry_ms) - time.time() * 1000) / 1000))


def _positive_int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        shown = raw if len(raw) <= 32 else raw[:32] + "..."   # the message stays one short line
        raise ValueError(f"{name} must be a whole number of seconds, not {shown!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1 second, not {value}")
    return value
