"""Cancel races: of many cancels of one run exactly one wins (200, one StopExecution) and the others
get 409 ``already_cancelled``; a cancel that loses to the run's own end gets 409 ``run_ended`` with
the status; a cancel racing a decision leaves one consistent story; nothing is left open."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.client import BaseClient

from boternity.approvals import ApprovalStore
from boternity.errors import BoternityError
from boternity.handlers.api import lambda_handler as api
from boternity.handlers.rest import to_http
from boternity.local import moto_patches
from boternity.service.runs import RunService
from tests.support.apigw import USER_ARN, Reply, call, wait_for
from tests.support.approval_runs import (
    approval,
    deploy,
    finished,
    gate_workflow,
    module_cloud,
    pending_approval,
    run_detail,
    start,
    steps,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CANCELLERS = 10


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with module_cloud(tmp_path_factory.mktemp("cancels")) as eng:
        deploy(gate_workflow("gate"))
        deploy({"name": "single", "concurrency": 1,
                "steps": [{"id": "hold", "type": "wait", "config": {"seconds": 600}}]})
        deploy({"name": "instant", "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]})
        yield eng


@pytest.fixture
def stop_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every StopExecution any client sends, by execution ARN."""
    calls: list[str] = []
    original = BaseClient._make_api_call

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "StopExecution":
            calls.append(params["executionArn"])
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return calls


def together(n: int, action: Callable[[int], Reply]) -> list[Reply]:
    """Run ``action`` in ``n`` threads released at the same moment."""
    barrier = threading.Barrier(n)
    replies: list[Reply] = []

    def one(i: int) -> None:
        barrier.wait()
        replies.append(action(i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(replies) == n, "a request did not answer"
    return replies


def cancel(run_id: str) -> Reply:
    return call(api, "POST", f"/runs/{run_id}/cancel", body={})


def in_own_lambda(action: Callable[[], Any]) -> Reply:
    """What the api function answers for ``action`` run in an execution environment of its own:
    concurrent requests in the cloud run side by side in separate environments, so the races
    below go through the service code directly, not through one process's request handler."""
    try:
        return Reply(status=200, text=json.dumps(action()))
    except BoternityError as exc:
        status, body, _ = to_http(exc)
        return Reply(status=status, text=json.dumps(body))


def cancel_elsewhere(run_id: str) -> Reply:
    return in_own_lambda(lambda: RunService("boternity").cancel(run_id, by=USER_ARN))


def decide_elsewhere(approval_id: str) -> Reply:
    return in_own_lambda(lambda: ApprovalStore("boternity").decide(approval_id, approved=True, approver=USER_ARN))


@contextmanager
def no_status_events() -> Iterator[None]:
    """Hold back the status-change events (as if EventBridge were late): the run record stays
    RUNNING after its execution ended."""
    saved = list(moto_patches.STATUS_LISTENERS)
    moto_patches.STATUS_LISTENERS.clear()
    try:
        yield
    finally:
        moto_patches.STATUS_LISTENERS[:] = saved


def test_ten_concurrent_cancels_one_wins_and_stops_the_run_once(cloud: Any, stop_calls: list[str]) -> None:
    rid = start("gate")
    aid = pending_approval(rid)
    replies = together(CANCELLERS, lambda i: cancel_elsewhere(rid))
    assert sorted(r.status for r in replies) == [200] + [409] * (CANCELLERS - 1)
    winner = next(r.json for r in replies if r.status == 200)
    assert winner == {"run_id": rid, "status": "ABORTED", "cancelled_approvals": 1}
    for r in (r for r in replies if r.status == 409):
        assert r.error["code"] == "already_cancelled"
        assert r.error["message"].startswith(f"run '{rid}' ")
        assert f"(by {USER_ARN} at " in r.error["message"]
        assert r.error["details"]["cancelled_by"] == USER_ARN
    arn = run_detail(rid)["run"]["execution_arn"]
    assert stop_calls.count(arn) == 1
    run = finished(rid)["run"]
    assert (run["status"], run["error"]) == ("ABORTED", "Boternity.Cancelled")
    assert approval(aid)["status"] == "CANCELLED"
    assert steps(rid)["review"]["status"] == "aborted"
    late = cancel(rid)
    assert (late.status, late.error["code"]) == (409, "already_cancelled")
    assert late.error["message"] == (f"run '{rid}' was already cancelled (by {USER_ARN} at "
                                     f"{late.error['details']['cancel_requested_at']})")
    assert late.error["details"]["status"] == "ABORTED"


def test_ten_concurrent_cancels_of_a_queued_run_one_wins_and_it_never_starts(cloud: Any,
                                                                              stop_calls: list[str]) -> None:
    blocker = start("single", {})
    wait_for(lambda: run_detail(blocker)["run"]["status"] == "RUNNING")
    queued = start("single", {})
    assert run_detail(queued)["run"]["status"] == "QUEUED"
    replies = together(CANCELLERS, lambda i: cancel_elsewhere(queued))
    assert sorted(r.status for r in replies) == [200] + [409] * (CANCELLERS - 1)
    assert {r.error["code"] for r in replies if r.status == 409} == {"already_cancelled"}
    assert next(r.json for r in replies if r.status == 200) == {"run_id": queued, "status": "ABORTED",
                                                                  "cancelled_approvals": 0}
    assert stop_calls == []
    # Freeing the slot must not start the cancelled run.
    assert cancel(blocker).status == 200
    assert finished(blocker)["run"]["status"] == "ABORTED"
    run = run_detail(queued)["run"]
    assert run["status"] == "ABORTED" and run.get("execution_arn") is None
    machine = run_detail(blocker)["run"]["execution_arn"].rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")
    names = {e["name"] for e in cloud.sfn.list_executions(stateMachineArn=machine)["executions"]}
    assert queued not in names


@pytest.mark.parametrize("round_", range(3), ids=lambda i: f"round-{i}")
def test_a_cancel_racing_a_decision_leaves_one_consistent_story(cloud: Any, round_: int) -> None:
    rid = start("gate")
    aid = pending_approval(rid)

    def act(i: int) -> Reply:
        return cancel_elsewhere(rid) if i == 0 else decide_elsewhere(aid)

    cancelled, decided = _ordered(together(2, act))
    run = finished(rid)["run"]
    record = approval(aid)
    if decided.status == 200:
        # The decision won the approval; the cancel then stopped the run or found it done.
        assert record["status"] == "APPROVED"
        assert (cancelled.status, run["status"]) in ((200, "ABORTED"), (409, "SUCCEEDED"))
        if cancelled.status == 409:
            assert cancelled.error["code"] == "run_ended"
    else:
        # The cancel closed the approval first: the decision changed nothing.
        assert (decided.status, decided.error["code"]) == (409, "approval_cancelled")
        assert cancelled.status == 200 and cancelled.json["cancelled_approvals"] == 1
        assert record["status"] == "CANCELLED" and run["status"] == "ABORTED"
        assert steps(rid)["review"]["status"] == "aborted"
        assert "ship" not in steps(rid)


def _ordered(replies: list[Reply]) -> tuple[Reply, Reply]:
    """(the cancel's reply, the decision's reply): a cancel answers with a run, a decision with an approval."""
    def is_cancel(r: Reply) -> bool:
        body = r.json
        return "cancelled_approvals" in body or str(body.get("error", {}).get("code")) in (
            "already_cancelled", "run_ended")

    first, second = replies
    return (first, second) if is_cancel(first) else (second, first)


def test_a_cancel_that_loses_to_the_runs_own_end_is_409_with_its_status(cloud: Any, stop_calls: list[str]) -> None:
    with no_status_events():
        rid = start("instant")
        arn = run_detail(rid)["run"]["execution_arn"]
        wait_for(lambda: cloud.sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED")
        assert run_detail(rid)["run"]["status"] == "RUNNING"   # the end event has not arrived
        r = cancel(rid)
    assert r.status == 409, r.text
    assert r.error == {"code": "run_ended", "details": {"status": "SUCCEEDED"},
                       "message": f"run '{rid}' ended (SUCCEEDED) before it could be stopped; nothing was cancelled"}
    assert run_detail(rid)["run"]["status"] == "SUCCEEDED"
    assert cloud.sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"


def test_a_cancel_of_a_finished_run_is_409_with_its_status(cloud: Any, stop_calls: list[str]) -> None:
    rid = start("instant")
    assert finished(rid)["run"]["status"] == "SUCCEEDED"
    r = cancel(rid)
    assert r.status == 409
    assert r.error == {"code": "run_ended", "details": {"status": "SUCCEEDED"},
                       "message": f"run '{rid}' already ended (SUCCEEDED); there is nothing to cancel"}
    assert stop_calls == []


def _claim(run_id: str, until: int) -> None:
    """What a canceller leaves when it dies between its claim and StopExecution."""
    boto3.resource("dynamodb").Table("boternity").update_item(
        Key={"pk": f"RUN#{run_id}", "sk": "RUN"},
        UpdateExpression="SET cancel_requested_at = :t, cancel_claim_until = :u, cancelled_by = :b",
        ExpressionAttributeValues={":t": "2026-01-01T00:00:00.000Z", ":u": until, ":b": "a crashed request"})


def test_a_cancel_in_flight_elsewhere_is_409_but_a_dead_cancellers_claim_lapses(cloud: Any,
                                                                               stop_calls: list[str]) -> None:
    rid = start("gate")
    pending_approval(rid)
    _claim(rid, int(time.time()) + 60)
    r = cancel(rid)
    assert (r.status, r.error["code"]) == (409, "already_cancelled")
    assert r.error["message"] == (f"run '{rid}' is already being cancelled (by a crashed request at "
                                  "2026-01-01T00:00:00.000Z)")
    assert run_detail(rid)["run"]["status"] == "RUNNING" and stop_calls == []
    _claim(rid, int(time.time()) - 1)
    r = cancel(rid)
    assert r.status == 200, r.text
    assert finished(rid)["run"]["status"] == "ABORTED" and len(stop_calls) == 1
    assert "cancel_claim_until" not in run_detail(rid)["run"], "bookkeeping stays internal"


@pytest.mark.parametrize("run_id", ["0" * 32, "a" * 3000, "%1B%5B2J", "..%2F..%2Fworkflows"],
                         ids=["unknown", "3000-chars", "terminal-escape", "path-traversal"])
def test_a_cancel_of_a_run_that_does_not_exist_is_404(cloud: Any, stop_calls: list[str], run_id: str) -> None:
    r = cancel(run_id)
    assert r.status == 404, r.text
    assert r.error["code"] == "not_found"
    # A long id is quoted by its start and length (echoing kilobytes back helps nobody).
    quoted = f"'{run_id}'" if len(run_id) <= 80 else f"'{run_id[:64]}'... ({len(run_id):,} characters)"
    assert r.error["message"] in (f"run {quoted} not found", "run not found")
    assert stop_calls == []


def test_concurrent_requests_in_one_process_each_get_their_own_answer(cloud: Any) -> None:
    """`boternity serve` calls the api function from many threads at once: a cancel and a decision
    arriving together must each be answered from their own request (and caller), never the other's."""
    import sys

    rid = start("gate")
    aid = pending_approval(rid)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # threads interleave at every few bytecodes: a shared request shows
    try:
        _each_answer_is_its_own(aid)
    finally:
        sys.setswitchinterval(switch)
    assert approval(aid)["status"] == "PENDING" and cancel(rid).status == 200


def _each_answer_is_its_own(aid: str) -> None:

    def act(i: int) -> Reply:
        if i % 2:
            return call(api, "POST", f"/runs/nope{i}/cancel", body={})
        return call(api, "POST", f"/approvals/{aid}/decision", body={"approved": "maybe"})

    for _ in range(6):
        replies = together(16, act)
        messages = sorted(r.error["message"] for r in replies)
        assert messages == sorted([f"run 'nope{i}' not found" for i in range(1, 16, 2)]
                                  + ["the request does not match the API"] * 8)


def test_a_cancel_while_the_approval_function_starts_leaves_nothing_open(cloud: Any) -> None:
    """The cancel closes the run's approvals and steps before the approval function has written
    its own: the function, finishing late, must close what it opened. (In the cloud the ABORTED
    event is handled while the function still runs; moto sends it only after the function
    returns, so the events are held back here to keep them out of it.)"""
    name = "boternity-approval"
    original = moto_patches.HANDLERS[name]
    entered, release = threading.Event(), threading.Event()

    def slow(event: dict[str, Any], context: Any) -> Any:
        entered.set()
        release.wait(30)
        return original(event, context)

    moto_patches.HANDLERS[name] = slow
    try:
        with no_status_events():
            rid = start("gate")
            assert entered.wait(20)
            r = cancel(rid)
            assert r.status == 200 and r.json["cancelled_approvals"] == 0, r.text
            assert run_detail(rid)["run"]["status"] == "ABORTED"
            release.set()
            review = wait_for(lambda: (s := steps(rid).get("review")) and isinstance(s.get("output"), dict) and s)
            aid = review["output"]["approval_id"]
            assert wait_for(lambda: approval(aid)["status"] != "PENDING")
            assert approval(aid)["status"] == "CANCELLED"
            assert wait_for(lambda: steps(rid)["review"]["status"] == "aborted")
    finally:
        moto_patches.HANDLERS[name] = original
        release.set()


def test_a_redriven_run_can_be_cancelled_again_at_once(cloud: Any) -> None:
    rid = start("gate")
    first = pending_approval(rid)
    assert cancel(rid).status == 200
    assert finished(rid)["run"]["status"] == "ABORTED"
    r = call(api, "POST", f"/runs/{rid}/redrive")
    assert r.status == 202, r.text
    second = wait_for(lambda: (a := pending_approval(rid)) != first and a)
    again = cancel(rid)   # the first cancel's claim must not outlive the run it stopped
    assert again.status == 200, again.text
    assert again.json == {"run_id": rid, "status": "ABORTED", "cancelled_approvals": 1}
    assert approval(second)["status"] == "CANCELLED"


def test_a_decision_for_a_run_stopped_before_its_end_event_says_cancelled(cloud: Any) -> None:
    """The run was stopped outside the API and its end event is late: the approval still reads
    PENDING, so the decision is written, Step Functions refuses the token, and the decision is
    undone as what it was: too late for a cancelled run."""
    rid = start("gate")
    aid = pending_approval(rid)
    with no_status_events():
        arn = run_detail(rid)["run"]["execution_arn"]
        cloud.sfn.stop_execution(executionArn=arn, error="Ops.Stop", cause="stopped in the console")
        wait_for(lambda: cloud.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED")
        RunService("boternity").runs.run_ended(rid, status="ABORTED", error="Ops.Stop")
        assert approval(aid)["status"] == "PENDING"
        r = call(api, "POST", f"/approvals/{aid}/decision", body={"approved": True, "comment": "too late"})
    assert (r.status, r.error["code"]) == (409, "approval_cancelled"), r.text
    assert r.error["message"] == (f"approval '{aid}' was cancelled (the run was cancelled): "
                                  "there is nothing to decide")
    view = approval(aid)
    assert (view["status"], view["approved"], view["comment"]) == ("CANCELLED", None, None)


def test_a_cancel_overtaking_a_decision_still_being_delivered_counts_the_approval(
        cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving the race above hits now and then, forced: the decision claims the approval
    (so the cancel finds nothing PENDING to close), the cancel stops the run, and only then does the
    decision send its token, which the stopped run refuses. Both answers tell the same story: the
    decision 409 ``approval_cancelled``, the cancel one cancelled approval."""
    from boternity.store.approvals import ApprovalRecords

    rid = start("gate")
    aid = pending_approval(rid)
    claimed, stopped = threading.Event(), threading.Event()
    claim = ApprovalRecords.decide
    settle = ApprovalStore.cancelled_by_cancel

    def claim_then_hold(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = claim(self, *args, **kwargs)
        claimed.set()
        assert stopped.wait(30)
        return item

    def stop_then_settle(self: Any, *args: Any, **kwargs: Any) -> int:
        stopped.set()
        return settle(self, *args, **kwargs)

    monkeypatch.setattr(ApprovalRecords, "decide", claim_then_hold)
    monkeypatch.setattr(ApprovalStore, "cancelled_by_cancel", stop_then_settle)
    replies: dict[str, Reply] = {}
    decider = threading.Thread(target=lambda: replies.update(decided=decide_elsewhere(aid)))
    decider.start()
    assert claimed.wait(30)
    replies["cancelled"] = cancel_elsewhere(rid)
    decider.join(30)
    assert (replies["decided"].status, replies["decided"].error["code"]) == (409, "approval_cancelled")
    assert replies["cancelled"].json == {"run_id": rid, "status": "ABORTED", "cancelled_approvals": 1}
    record = approval(aid)
    assert record["status"] == "CANCELLED" and "delivering" not in record
    assert finished(rid)["run"]["status"] == "ABORTED"
