"""Failures read as sentences in run records: never the service's or the runtime's JSON."""

from __future__ import annotations

from boternity.model import parse_workflow


def test_a_failed_sub_workflow_that_the_parent_goes_past_is_recorded_with_a_sentence(engine):
    child = parse_workflow({"name": "child", "steps": [
        {"id": "boom", "type": "http", "config": {"url": "http://127.0.0.1:9/x"}}]})
    parent = parse_workflow({"name": "parent", "steps": [
        {"id": "sub", "type": "sub_workflow", "continue_on_error": True, "config": {"workflow_name": "child"}},
        {"id": "after", "type": "wait", "depends_on": ["sub"], "config": {"seconds": 0}}]})
    engine.deploy(child)
    result = engine.run(parent, {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    sub = {r["step_id"]: r for r in result.steps}["sub"]
    assert sub["status"] == "failed"
    assert sub["output"]["cause"].startswith("sub-workflow child failed: step boom failed (StepFailed): "
                                             "[http.blocked_address]")
    assert sub["error"] == "States.TaskFailed: " + sub["output"]["cause"]
    assert "{" not in sub["error"], "no JSON in the sentence"
