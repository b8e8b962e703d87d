"""A planned wait's record (compiler/waits.py) is written once, whole, before the wait starts; the
store shows it by the clock and the run's end settles it.

Each case writes records directly on moto's DynamoDB (the local engine's table) and reads them
back at chosen instants, so no test depends on how fast this machine is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from boternity.runtime.finish import finish_run
from boternity.runtime.step import Services, start_waits, wait_ended_at
from boternity.store.run_records import RunStore, as_of

TABLE = "boternity"


@pytest.fixture
def runs(engine: Any) -> RunStore:
    return RunStore(TABLE)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def planned(runs: RunStore, run_id: str, step_id: str, start: datetime, seconds: int, **kw: Any) -> None:
    end = start + timedelta(seconds=seconds)
    assert runs.step_planned(run_id, step_id, started_at=iso(start), ends_at=iso(end),
                             output={"until": iso(end), "seconds": seconds}, **kw)


def test_a_planned_record_is_absent_then_running_then_completed_at_its_end(runs: RunStore) -> None:
    planned(runs, "r1", "w", T0, 5)
    rec = runs.step_record("r1", "w", as_stored=True)
    assert rec is not None and rec["status"] == "running"
    assert as_of(rec, T0 - timedelta(milliseconds=1)) is None
    assert as_of(rec, T0)["status"] == "running"
    assert as_of(rec, T0 + timedelta(seconds=4.999))["status"] == "running"
    done = as_of(rec, T0 + timedelta(seconds=5))
    assert done["status"] == "completed" and done["ended_at"] == iso(T0 + timedelta(seconds=5))
    assert done["output"] == {"until": iso(T0 + timedelta(seconds=5)), "seconds": 5}
    # Read now (2030 is to come), the store leaves it out of the run's steps altogether.
    assert runs.step_record("r1", "w") is None and runs.steps("r1") == []
    assert [r["step_id"] for r in runs.steps("r1", as_stored=True)] == ["w"]


def test_a_record_that_is_not_planned_is_shown_as_stored(runs: RunStore) -> None:
    runs.step_started("r2", "s", step_type="skill")
    rec = runs.step_record("r2", "s")
    assert rec is not None and as_of(rec, T0 + timedelta(days=3650)) == rec


def test_a_final_record_is_never_planned_over(runs: RunStore) -> None:
    runs.step_ended("r3", "w", status="aborted", error="run aborted")
    assert runs.step_planned("r3", "w", started_at=iso(T0), ends_at=iso(T0), output={}) is False
    assert runs.step_record("r3", "w")["status"] == "aborted"


def test_settling_at_a_stop_completes_cuts_or_forgets_by_when_each_wait_was_planned(runs: RunStore) -> None:
    planned(runs, "r4", "ended", T0, 1)
    planned(runs, "r4", "cut", T0 + timedelta(seconds=1), 10)
    planned(runs, "r4", "later", T0 + timedelta(seconds=11), 5)
    stop = iso(T0 + timedelta(seconds=3))
    done = {}
    for rec in runs.steps("r4", as_stored=True):
        done[rec["step_id"]] = runs.settle_planned(rec, run_id="r4", stop=stop, status="aborted", error="run aborted")
    assert done == {"ended": "completed", "cut": "ended", "later": "forgotten"}
    stored = {r["step_id"]: r for r in runs.steps("r4", as_stored=True)}
    assert set(stored) == {"ended", "cut"}
    assert stored["ended"]["status"] == "completed" and stored["ended"]["ended_at"] == iso(T0 + timedelta(seconds=1))
    assert stored["cut"]["status"] == "aborted" and stored["cut"]["ended_at"] == stop
    assert stored["cut"]["error"] == "run aborted"


def test_a_succeeded_runs_end_completes_every_planned_wait_at_its_planned_end(runs: RunStore) -> None:
    # One in the output, one of a loop's earlier iterations (not in the output).
    now = datetime.now(UTC).replace(microsecond=0)
    planned(runs, "r5", "w", now - timedelta(seconds=3), 1)
    planned(runs, "r5", "w", now - timedelta(seconds=2), 1, iteration="1")
    out = {"w": {"status": "completed", "output": {"until": iso(now - timedelta(seconds=2)), "seconds": 1}}}
    event = {"detail": {"name": "r5", "status": "SUCCEEDED", "output": out,
                        "stopDate": int(now.timestamp() * 1000)}}
    finish_run(event, runs)
    stored = {(r["step_id"], r.get("iteration") or ""): r for r in runs.steps("r5", as_stored=True)}
    assert stored["w", ""]["status"] == "completed" and stored["w", ""]["ended_at"] == iso(now - timedelta(seconds=2))
    assert stored["w", "1"]["status"] == "completed" and stored["w", "1"]["ended_at"] == iso(now - timedelta(seconds=1))


def test_a_redriven_run_that_succeeds_completes_the_wait_an_earlier_stop_cut(runs: RunStore) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    planned(runs, "r6", "w", now - timedelta(seconds=30), 60)
    rec = runs.step_record("r6", "w", as_stored=True)
    runs.settle_planned(rec, run_id="r6", stop=iso(now - timedelta(seconds=20)), status="aborted", error="run aborted")
    assert runs.step_record("r6", "w")["status"] == "aborted"
    out = {"w": {"status": "completed", "output": rec["output"]}}
    finish_run({"detail": {"name": "r6", "status": "SUCCEEDED", "output": out,
                           "stopDate": int(now.timestamp() * 1000)}}, runs)
    assert runs.step_record("r6", "w")["status"] == "completed"


def test_start_waits_plans_each_wait_after_its_offset(runs: RunStore) -> None:
    state = {"ctx": {"run": {"id": "r7"}}, "steps": {}}
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=100)
    event = {"starts": [{"id": "a", "seconds": 2, "after": 0, "loops": []},
                        {"id": "b", "seconds": 3, "after": 2, "loops": []}], "state": state}
    started = start_waits(event, Services(runs=runs, sync=None), now=base)
    assert started["b"] == {"status": "completed", "output": {"until": (base + timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"), "seconds": 3}}
    stored = {r["step_id"]: r for r in runs.steps("r7", as_stored=True)}
    assert stored["a"]["started_at"] == iso(base) and stored["a"]["ends_at"] == iso(base + timedelta(seconds=2))
    assert stored["b"]["started_at"] == iso(base + timedelta(seconds=2))
    assert stored["b"]["ends_at"] == iso(base + timedelta(seconds=5))


def test_a_wait_ends_when_planned_unless_that_is_still_to_come() -> None:
    past = datetime.now(UTC) - timedelta(seconds=5)
    assert wait_ended_at({"until": past.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "seconds": 1}) == iso(past)
    future = datetime.now(UTC) + timedelta(seconds=60)
    assert wait_ended_at({"until": future.isoformat(), "seconds": 1}) is None
    assert wait_ended_at({"until": "not a time"}) is None and wait_ended_at(None) is None
