"""The store's conditional writes answer in outcomes, one per way a race can end.

The service (``service/runs.py``, ``service/registry.py``, ``approvals.py``) decides what to tell
the caller from these outcomes; here each is produced directly on moto's DynamoDB (the local
engine's table), so a change in how the store reads a failed condition shows up as a wrong outcome.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from boternity.store.approvals import ApprovalRecords
from boternity.store.queue import Dequeue, RunQueue
from boternity.store.run_records import Reopen, RunStore, RunWrite
from boternity.store.slots import Slots
from boternity.store.workflows import WorkflowRecords

TABLE = "boternity"
ARN = "arn:aws:states:us-east-1:123456789012:execution:boternity-wf:"


@pytest.fixture
def runs(engine: Any) -> RunStore:
    return RunStore(TABLE)


def create(runs: RunStore, run_id: str, *, limit: int = 0) -> RunWrite:
    return runs.create_run(run_id, "wf", trigger_type="api", execution_arn=ARN + run_id, trigger=None,
                           slot_limit=limit)


def test_a_run_is_created_once_and_a_repeat_is_a_duplicate(runs: RunStore) -> None:
    assert create(runs, "r1") is RunWrite.CREATED
    assert create(runs, "r1") is RunWrite.DUPLICATE
    assert (runs.run_item("r1") or {})["status"] == "RUNNING"


def test_a_run_over_the_limit_takes_no_slot_and_writes_nothing(runs: RunStore) -> None:
    assert create(runs, "r1", limit=1) is RunWrite.CREATED
    assert create(runs, "r2", limit=1) is RunWrite.SLOT_TAKEN
    assert runs.run_item("r2") is None
    # The same run again is a duplicate even with every slot held: the run record decides first.
    assert create(runs, "r1", limit=1) is RunWrite.DUPLICATE


def test_a_slot_is_given_back_once(runs: RunStore) -> None:
    slots = Slots(TABLE)
    assert create(runs, "r1", limit=1) is RunWrite.CREATED
    assert slots.release("wf", "r1") is True
    assert slots.release("wf", "r1") is False
    assert create(runs, "r2", limit=1) is RunWrite.CREATED


def test_one_canceller_holds_the_claim_until_it_lapses(runs: RunStore) -> None:
    create(runs, "r1")
    now = int(time.time())
    first = runs.claim_cancel("r1", by="alice", requested_at="t1", now=now, until=now + 60)
    assert first is not None and first["cancelled_by"] == "alice"
    assert runs.claim_cancel("r1", by="bob", requested_at="t2", now=now, until=now + 60) is None
    later = runs.claim_cancel("r1", by="bob", requested_at="t3", now=now + 61, until=now + 121)
    assert later is not None and later["cancelled_by"] == "bob"
    assert runs.claim_cancel("missing", by="bob", requested_at="t", now=now, until=now + 60) is None


def test_a_redrive_reopens_only_the_status_it_read_and_only_with_a_free_slot(runs: RunStore) -> None:
    create(runs, "r1", limit=1)
    runs.run_ended("r1", status="FAILED", error="Boom", cause="it broke")
    assert runs.reopen_for_redrive("r1", status="TIMED_OUT", workflow="wf", slot_limit=1,
                                   at="t") is Reopen.RUN_CHANGED
    # r1 still holds its slot (never released): the reopen needs a second one.
    assert runs.reopen_for_redrive("r1", status="FAILED", workflow="wf", slot_limit=1, at="t") is Reopen.NO_SLOT
    before = runs.run_item("r1") or {}
    assert runs.reopen_for_redrive("r1", status="FAILED", workflow="wf", slot_limit=2, at="t") is Reopen.REOPENED
    reopened = runs.run_item("r1") or {}
    assert reopened["status"] == "RUNNING" and "error" not in reopened
    runs.restore_after_redrive(before)
    restored = runs.run_item("r1") or {}
    assert (restored["status"], restored["error"], restored["cause"]) == ("FAILED", "Boom", "it broke")
    assert restored["slot_released"] is True


def test_a_queued_run_is_dequeued_once_and_never_once_cancelled(runs: RunStore) -> None:
    queue, slots = RunQueue(TABLE), Slots(TABLE)
    assert create(runs, "holder", limit=1) is RunWrite.CREATED
    assert queue.enqueue("q1", "wf", '{"n":1}', trigger_type="api", trigger=None) is RunWrite.CREATED
    assert queue.enqueue("q1", "wf", '{"n":1}', trigger_type="api", trigger=None) is RunWrite.DUPLICATE
    queued = queue.oldest("wf")
    assert queued is not None and (queued.run_id, queued.payload) == ("q1", '{"n":1}')
    assert queue.dequeue(queued, workflow="wf", execution_arn=ARN + "q1", slot_limit=1) is Dequeue.NO_SLOT
    slots.release("wf", "holder")
    assert queue.dequeue(queued, workflow="wf", execution_arn=ARN + "q1", slot_limit=1) is Dequeue.DEQUEUED
    # A full counter answers first (the caller stops, as it would have to anyway); with room,
    # the vanished queue item says another caller took the run.
    assert queue.dequeue(queued, workflow="wf", execution_arn=ARN + "q1", slot_limit=1) is Dequeue.NO_SLOT
    assert queue.dequeue(queued, workflow="wf", execution_arn=ARN + "q1", slot_limit=2) is Dequeue.TAKEN
    assert (runs.run_item("q1") or {})["status"] == "RUNNING"
    assert queue.oldest("wf") is None

    assert queue.enqueue("q2", "wf", "{}", trigger_type="api", trigger=None) is RunWrite.CREATED
    now = int(time.time())
    assert runs.claim_cancel("q2", by="alice", requested_at="t", now=now, until=now + 60) is not None
    stale = queue.oldest("wf")
    assert stale is not None
    assert queue.dequeue(stale, workflow="wf", execution_arn=ARN + "q2", slot_limit=0) is Dequeue.NOT_QUEUED
    queue.drop(stale)
    assert queue.oldest("wf") is None
    assert queue.remove("wf", str((runs.run_item("q2") or {})["queue_sk"])) is False


def test_an_approval_leaves_pending_once(engine: Any) -> None:
    records = ApprovalRecords(TABLE)
    now = int(time.time())
    records.create("a" * 22, {"run_id": "r1", "workflow": "wf", "status": "PENDING", "created_at": "t0",
                   "decide_by": now + 60, "token": "tok"},
                   expires_at=now + 120)
    assert records.ids_for_run("r1") == ["a" * 22]
    assert records.decide("a" * 22, approved=True, approver="x", comment=None, decided_at="t",
                          now=now + 61) is None, "a decision after the deadline must not land"
    won, item = records.close_pending("a" * 22, status="EXPIRED", closed_at="t", reason="late")
    assert won and item is not None and item["status"] == "EXPIRED"
    won, item = records.close_pending("a" * 22, status="CANCELLED", closed_at="t", reason="run ended")
    assert not won and item is not None and item["status"] == "EXPIRED"
    assert records.decide("a" * 22, approved=True, approver="x", comment=None, decided_at="t", now=now) is None
    assert records.decide("b" * 22, approved=True, approver="x", comment=None, decided_at="t", now=now) is None


def test_a_workflow_write_with_a_stale_version_and_a_taken_webhook_path_are_refused(engine: Any) -> None:
    records = WorkflowRecords(TABLE)
    assert records.put({"name": "wf", "version": 1}, expected_version=None) is True
    assert records.put({"name": "wf", "version": 2}, expected_version=None) is False
    assert records.put({"name": "wf", "version": 2}, expected_version=7) is False
    assert records.put({"name": "wf", "version": 2}, expected_version=1) is True
    assert (records.get("wf") or {})["version"] == 2
    hook = {"path": "orders", "index": 0}
    assert records.claim_hook("wf", hook) is True
    assert records.claim_hook("wf", hook) is True, "its own path again is no conflict"
    assert records.claim_hook("other", hook) is False
    records.release_hook("other", "orders")   # not its path: left alone
    assert (records.hook("orders") or {})["workflow"] == "wf"
