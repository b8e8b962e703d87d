"""Large outputs are claim-checked and resolved transparently; timeouts end steps and runs."""

from __future__ import annotations

import json

from boternity.model import parse_workflow
from boternity.validate import check_workflow
from tests.support.http_target import HttpTarget


def wf(doc):
    w = parse_workflow(doc)
    check_workflow(w)
    return w


def test_large_output_travels_by_reference_and_templates_resolve_it(engine, tmp_path):
    big = "x" * 60_000
    w = wf({"name": "big", "steps": [
        {"id": "a", "type": "skill", "config": {"skill": "echo-prompt", "input": "{{ trigger.big }}"}},
        {"id": "b", "type": "skill", "depends_on": ["a"],
         "config": {"skill": "echo-prompt", "input": "{{ steps.a.output.output | default('missing') }}"}},
    ]})
    result = engine.run(w, {"big": big}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    ref = result.output["a"]["output"]
    assert set(ref) == {"$ref", "size"} and ref["size"] > 60_000 and ref["$ref"].startswith("blob:")
    blobs = tmp_path / "blobs" / "runs"
    stored = json.loads((blobs / f"{ref['$ref'].removeprefix('blob:')}.json").read_text())
    assert stored["output"] == f"Handled: {big}\n"
    b_ref = result.output["b"]["output"]["$ref"].removeprefix("blob:")
    assert json.loads((blobs / f"{b_ref}.json").read_text())["output"] == f"Handled: Handled: {big}\n\n"


def test_inline_threshold_shrinks_with_the_number_of_steps():
    from boternity.compiler import compile_details

    few = wf({"name": "few", "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]})
    many = wf({"name": "many", "steps": [{"id": f"s{i}", "type": "wait", "config": {"seconds": 0}}
                                         for i in range(100)]})
    assert compile_details(few).inline_bytes == 32 * 1024
    assert compile_details(many).inline_bytes == 160 * 1024 // 100


def test_step_timeout_fails_the_step_with_states_timeout(engine):
    with HttpTarget() as web:
        w = wf({"name": "slow", "allow_private_network": True, "steps": [
            {"id": "call", "type": "http", "timeout_secs": 1,
             "config": {"url": f"{web.url}/slow?secs=3", "timeout_secs": 10}}]})
        result = engine.run(w, timeout=30)
    assert result.status == "FAILED"
    assert result.cause.startswith("step call failed (States.Timeout)")
    (call,) = result.steps
    assert call["status"] == "timed_out" and call["error"].startswith("timed out (States.Timeout)")


def test_workflow_timeout_times_the_run_out(engine):
    w = wf({"name": "too-long", "timeout_secs": 1, "steps": [{"id": "nap", "type": "wait", "config": {"seconds": 5}}]})
    result = engine.run(w, timeout=30)
    assert result.status == "TIMED_OUT"
    assert result.record["status"] == "TIMED_OUT"
    steps = {s["step_id"]: s for s in result.steps}
    assert steps["nap"]["status"] == "timed_out" and "run timed out" in steps["nap"]["error"]


def test_a_large_trigger_starts_as_a_reference_and_templates_still_read_it(engine):
    # 150 KB of trigger next to 160 KB of records would not fit a state; the run starts with a
    # reference to the payload instead, and every step reads through it.
    items = [{"id": i, "text": "t" * 1000} for i in range(150)]
    w = wf({"name": "big-trigger", "steps": [
        {"id": "a", "type": "skill", "config": {"skill": "echo-prompt", "input": "{{ trigger.items[149].id }}"}},
        {"id": "b", "type": "skill", "depends_on": ["a"], "condition": "trigger.items[0].id == 0",
         "config": {"skill": "echo-prompt", "input": "{{ trigger.label }}"}},
    ]})
    result = engine.run(w, {"items": items, "label": "ok"}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    started = engine.history(result.execution_arn)[0]["executionStartedEventDetails"]["input"]
    assert json.loads(started)["$ref"].startswith("blob:") and len(started) < 120
    assert result.output["a"]["output"]["output"] == "Handled: 149\n"
    assert result.output["b"]["output"]["output"] == "Handled: ok\n"


def test_a_for_each_list_too_big_for_the_state_is_refused_with_the_field_named(engine):
    w = wf({"name": "big-list", "steps": [
        {"id": "each", "type": "skill", "for_each": "{{ trigger.items }}",
         "config": {"skill": "echo-prompt", "input": "{{ item }}"}}]})
    result = engine.run(w, {"items": ["x" * 1000] * 60}, timeout=60)
    assert result.status == "FAILED"
    assert "step 'each', field 'for_each': the list is 60," in result.cause
    assert "Iterate over ids" in result.cause


def test_a_large_sub_workflow_input_reaches_the_child_by_reference(engine):
    from boternity.model import parse_workflow

    child = parse_workflow({"name": "child", "steps": [
        {"id": "last", "type": "skill", "config": {"skill": "echo-prompt", "input": "{{ trigger.items[99].id }}"}}]})
    engine.deploy(child)
    parent = wf({"name": "parent", "steps": [
        {"id": "sub", "type": "sub_workflow", "config": {"workflow_name": "child", "input": {"items": "{{ trigger.items }}"}}}]})
    result = engine.run(parent, {"items": [{"id": i, "text": "t" * 1000} for i in range(100)]}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["sub"]["output"]["last"]["output"]["output"] == "Handled: 99\n"
