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


def test_a_dependent_reads_a_failed_steps_cause_as_a_sentence(engine):
    w = parse_workflow({"name": "reads-cause", "steps": [
        {"id": "fetch", "type": "http", "continue_on_error": True, "config": {"url": "http://127.0.0.1:9/x"}},
        {"id": "report", "type": "skill", "depends_on": ["fetch"],
         "config": {"skill": "echo-prompt", "input": "{{ steps.fetch.output.cause }}"}}]})
    result = engine.run(w, {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    said = str(result.output["report"]["output"])
    assert "[http.blocked_address] refusing to connect" in said
    assert "errorType" not in said


def test_an_ancestor_whose_record_stayed_in_another_branch_is_read_from_the_run(engine):
    # x -> a -> c, a -> d, b -> d: d's branch awaits a, not x, yet d reads steps.x.
    w = parse_workflow({"name": "far-ancestor", "steps": [
        {"id": "x", "type": "skill", "config": {"skill": "echo-prompt", "input": "from x"}},
        {"id": "a", "type": "skill", "depends_on": ["x"], "config": {"skill": "echo-prompt", "input": "a"}},
        {"id": "b", "type": "skill", "config": {"skill": "echo-prompt", "input": "b"}},
        {"id": "c", "type": "skill", "depends_on": ["a"], "config": {"skill": "echo-prompt", "input": "c"}},
        {"id": "d", "type": "skill", "depends_on": ["a", "b"],
         "config": {"skill": "echo-prompt", "input": "d saw {{ steps.x.output.output }}"}}]})
    result = engine.run(w, {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert "d saw" in str(result.output["d"]["output"]) and "from x" in str(result.output["d"]["output"])
