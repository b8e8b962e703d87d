"""The life of one step inside its Lambda: gate, record, render, execute, claim-check, record, signal.

Every step function (agent, skill, http, code, conditional) goes through :func:`run_step`, so the
semantics (skips, records, errors, size limits) are the same for all of them and in both places
(cloud and local).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from boternity import metrics
from boternity.compiler.records import STARTED
from boternity.errors import StepError, StepFailed, StepRetryable
from boternity.runtime.context import StepContext
from boternity.runtime.log import logger
from boternity.store.blobs import claim_check

Executor = Callable[[StepContext], Any]


class Services:
    """The stores a step needs, built once per container (module scope in the handlers)."""

    def __init__(self, *, runs: Any = None, sync: Any = None) -> None:
        self._runs = runs
        self._sync = sync

    @property
    def runs(self) -> Any:
        if self._runs is None:
            from boternity.store.run_records import RunStore

            self._runs = RunStore.from_env()
        return self._runs

    @property
    def sync(self) -> Any:
        if self._sync is None:
            from boternity.store.run_records import table_name_from_env
            from boternity.store.sync import SyncStore

            self._sync = SyncStore(table_name_from_env())
        return self._sync


def record(status: str, output: Any = None) -> dict[str, Any]:
    return {"status": status, "output": output}


def end_waits(event: dict[str, Any], services: Services) -> None:
    """End the records of the static waits this task follows (``"ended"`` in the payload).

    A wait of fixed seconds that nothing can skip is a start task and a Wait state: the task
    that runs right after the Wait ends it here, first thing, so its ``ended_at`` is when the Wait
    ended (within a transition), and signals it when another branch waits for it. The record in
    the state is the one the start task wrote. A retried task changes nothing: the first end is
    kept (a final record is not rewritten), and a second signal is harmless (store/sync.py).
    """
    for ended in event.get("ended") or []:
        sc = StepContext(spec={"id": ended["id"], "loops": ended.get("loops", [])}, state=event.get("state", {}))
        rec = sc.steps.get(sc.step_id) or {}
        status = str(rec.get("status") or "completed")
        iteration = sc.iteration_key()
        services.runs.step_ended(sc.run_id, sc.step_id, status=status, output=rec.get("output"),
                                 iteration=iteration, step_type="wait", only_if_not_final=True,
                                 ended_at=wait_ended_at(rec.get("output")))
        if ended.get("signal"):
            services.sync.signal(sc.run_id, sc.step_id, iteration,
                                 with_started(event, sc.step_id, record(status, rec.get("output"))))


def with_started(event: dict[str, Any], step_id: str, rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with the records of the waits ``step_id`` started (its record's ``started``, as the
    state holds it), for a signal: another branch's copy of the record, which the merge after the
    Parallel may keep instead of this one, must still carry them (compiler/records.py)."""
    raw = ((event.get("state") or {}).get("steps") or {}).get(step_id)
    if isinstance(raw, dict) and STARTED in raw:
        return {**rec, STARTED: raw[STARTED]}
    return rec


def static_wait_output(seconds: int, now: datetime) -> dict[str, Any]:
    """A wait of fixed seconds ends with ``{until, seconds}``, known when it starts."""
    return {"until": (now + timedelta(seconds=int(seconds))).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "seconds": int(seconds)}


def now_ms() -> datetime:
    """Now, to the millisecond the run records keep: a planned wait's ``until`` and the next
    one's ``started_at`` are then the same instant, written alike."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def iso_ms(t: datetime) -> str:
    """A time as the run records write it (store/run_records.py: now_iso)."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def wait_ended_at(output: Any) -> str | None:
    """When a static wait ended: its ``until``, which its record was planned with, unless that
    is still to come by this clock (then now, None)."""
    until = output.get("until") if isinstance(output, dict) else None
    try:
        end = datetime.fromisoformat(str(until)) if until else None
    except ValueError:
        return None
    return iso_ms(end) if end is not None and end <= datetime.now(UTC) else None


def start_waits(event: dict[str, Any], services: Services, *, now: datetime | None = None) -> dict[str, Any]:
    """Start the static waits planned on this task's clock (``"starts"`` in the payload,
    compiler/waits.py), last thing: write each one's record whole, from ``after`` seconds from now
    for its ``seconds`` (store/run_records.py shows it by the clock), and return each final
    record, which the task's ResultSelector puts under its own record (compiler/records.py)."""
    now = now or now_ms()
    started: dict[str, Any] = {}
    for wait in event.get("starts") or []:
        sc = StepContext(spec={"id": wait["id"], "loops": wait.get("loops", [])}, state=event.get("state", {}))
        begins = now + timedelta(seconds=int(wait.get("after") or 0))
        output = static_wait_output(wait["seconds"], begins)
        services.runs.step_planned(sc.run_id, sc.step_id, iteration=sc.iteration_key(), started_at=iso_ms(begins),
                                   ends_at=output["until"], output=output)
        started[sc.step_id] = record("completed", output)
    return started


def run_step(event: dict[str, Any], execute: Executor, services: Services, *,
             secrets: Any = None) -> dict[str, Any]:
    """Run a compiled step task. Returns the step record (with the records of the static waits
    it starts, when it starts some); raises StepFailed/StepRetryable."""
    end_waits(event, services)
    spec = event["step"]
    sc = StepContext(spec=spec, state=event.get("state", {}), **({"secrets": secrets} if secrets is not None else {}))
    attempt = int(event.get("attempt") or 0)
    iteration = sc.iteration_key()
    run_id = sc.run_id
    logger.append_keys(run_id=run_id, step_id=sc.step_id, iteration=iteration or None, attempt=attempt + 1)
    reason = sc.skip_reason(per_item=sc.index is not None)
    if reason is not None:
        logger.info("step skipped", extra={"reason": reason})
        services.runs.step_ended(run_id, sc.step_id, status="skipped", iteration=iteration,
                                 output={"reason": reason}, step_type=spec.get("type"))
        return _ended(event, services, sc, record("skipped"))
    services.runs.step_started(run_id, sc.step_id, iteration=iteration, attempt=attempt, step_type=spec.get("type"))
    began = time.monotonic()
    try:
        output = _execute(execute, sc)
    except StepError as exc:
        message = sc.secrets.mask(str(exc))
        services.runs.attempt_failed(run_id, sc.step_id, iteration=iteration, attempt=attempt, error=message,
                                     extra={"code": exc.code})
        self_correct = (spec.get("retry") or {}).get("strategy") == "llm_self_correct"
        final = (not exc.retryable and not self_correct) or attempt + 1 >= _max_attempts(spec, exc)
        logger.warning("step attempt failed", extra={"code": exc.code, "retryable": exc.retryable, "final": final,
                                                     "error": message})
        if final:
            services.runs.step_ended(run_id, sc.step_id, status="failed", iteration=iteration, error=message,
                                     attempt=attempt, step_type=spec.get("type"))
            metrics.step_ended(str(spec.get("type")), duration_ms=(time.monotonic() - began) * 1000,
                               attempts=attempt + 1)
        cls = StepRetryable if exc.retryable else StepFailed
        raise cls(sc.secrets.mask(exc.message), code=exc.code) from None
    output = sc.secrets.mask(output)
    stored = claim_check(output, limit=int(spec.get("inline_limit", 32768)), store=sc.blobs)
    services.runs.step_ended(run_id, sc.step_id, status="completed", iteration=iteration, output=stored,
                             attempt=attempt, step_type=spec.get("type"))
    # The last attempt's duration (earlier ones are in the attempt records), and how many it took.
    metrics.step_ended(str(spec.get("type")), duration_ms=(time.monotonic() - began) * 1000, attempts=attempt + 1)
    logger.info("step completed", extra={"claim_checked": stored is not output})
    return _ended(event, services, sc, record("completed", stored))


# AWS's "slow down" answers (botocore's retry handler lists the same family). Botocore already
# retried them; seen here they mean sustained throttling, which the step's Retry can outlast.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException", "RequestThrottled",
    "RequestThrottledException", "SlowDown",
})


def _execute(execute: Executor, sc: StepContext) -> Any:
    """The executor, with an AWS throttle turned into a retryable step error: without this it
    escaped as a ClientError, which no Retry matches, and failed the run on the first throttle."""
    try:
        return execute(sc)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "")
        if code not in THROTTLING_CODES:
            raise
        raise StepRetryable(f"AWS throttled the step ({code})", code="throttled") from exc


def _max_attempts(spec: dict[str, Any], exc: StepError) -> int:
    retry = spec.get("retry")
    if retry:
        return int(retry.get("max_attempts", 3))
    return 3 if exc.retryable else 1


def _ended(event: dict[str, Any], services: Services, sc: StepContext, result: dict[str, Any]) -> dict[str, Any]:
    """The step's record as its task returns it: with the static waits it starts (before the
    signal, so that another branch's copy of this record, which the merge after the Parallel may
    keep instead of this one, still carries them), signalled when another branch waits for it."""
    if "starts" in event:
        result = {**result, STARTED: start_waits(event, services)}
    if sc.spec.get("signal"):
        services.sync.signal(sc.run_id, sc.step_id, sc.iteration_key(), result)
    return result
