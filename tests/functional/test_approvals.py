"""Approval steps: the token stays in the backend, exactly one decision wins, timeouts reject."""

from __future__ import annotations

import pytest

from boternity.approvals import ApprovalStore
from boternity.errors import Conflict, NotFound
from boternity.model import parse_workflow


def approval_wf(**cfg):
    return parse_workflow({"name": "review", "steps": [
        {"id": "draft", "type": "wait", "config": {"seconds": 0}},
        {"id": "review", "type": "approval", "depends_on": ["draft"],
         "config": {"prompt": "Publish for {{ trigger.topic }}?", **cfg}},
        {"id": "publish", "type": "wait", "depends_on": ["review"], "condition": "steps.review.output.approved",
         "config": {"seconds": 0}},
    ]})


@pytest.mark.parametrize("approved", [True, False])
def test_a_decision_resumes_the_run_and_gates_what_follows(engine, approved):
    seen = []

    def decide(a):
        seen.append(a)
        return approved, "looks good" if approved else "no"

    result = engine.run(approval_wf(), {"topic": "evals"}, timeout=30, on_approval=decide)
    assert result.status == "SUCCEEDED", result.cause
    assert seen[0]["prompt"] == "Publish for evals?"
    assert "token" not in seen[0], "the task token must never leave the backend"
    out = result.output["review"]["output"]
    assert out["approved"] is approved and out["approver"] == "local" and out["decided_at"]
    assert result.output["publish"]["status"] == ("completed" if approved else "skipped")


def test_second_decision_is_refused_as_already_decided(engine):
    ids = []

    def decide(a):
        ids.append(a["approval_id"])
        return True, None

    engine.run(approval_wf(), {"topic": "x"}, timeout=30, on_approval=decide)
    store = ApprovalStore("boternity")
    with pytest.raises(Conflict, match="already decided"):
        store.decide(ids[0], approved=False)
    assert store.get(ids[0])["status"] == "APPROVED"


def test_unknown_approval_is_not_found(engine):
    with pytest.raises(NotFound):
        ApprovalStore("boternity").decide("nope", approved=True)


def test_no_decision_within_the_timeout_rejects(engine):
    result = engine.run(approval_wf(timeout_secs=1), {"topic": "x"}, timeout=30, on_approval=lambda a: None)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["review"]["output"]["approved"] is False
    assert result.output["review"]["output"]["timed_out"] is True
    assert result.output["publish"]["status"] == "skipped"


def test_on_timeout_fail_fails_the_run(engine):
    result = engine.run(approval_wf(timeout_secs=1, on_timeout="fail"), {"topic": "x"}, timeout=30,
                        on_approval=lambda a: None)
    assert result.status == "FAILED"
    assert "step review failed" in result.cause


def test_the_decision_is_in_the_step_record_while_the_run_goes_on(engine):
    import time

    w = parse_workflow({"name": "review2", "steps": [
        {"id": "review", "type": "approval", "config": {"prompt": "ok?"}},
        {"id": "nap", "type": "wait", "depends_on": ["review"], "config": {"seconds": 2}},
    ]})
    engine.deploy(w)
    run_id, arn = engine.start(w, {})
    store = ApprovalStore("boternity")
    for _ in range(100):
        pending = store.pending_for_run(run_id)
        if pending:
            break
        time.sleep(0.05)
    store.decide(pending[0]["approval_id"], approved=True, approver="ada", comment="fine")
    rec = {s["step_id"]: s for s in engine.runs.steps(run_id)}["review"]
    assert rec["status"] == "completed" and rec["output"]["approver"] == "ada"
    result = engine.wait(run_id, arn, timeout=30)
    assert result.status == "SUCCEEDED"
