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


def test_workflow_timeout_times_the_run_out(engine):
    w = wf({"name": "too-long", "timeout_secs": 1, "steps": [{"id": "nap", "type": "wait", "config": {"seconds": 5}}]})
    result = engine.run(w, timeout=30)
    assert result.status == "TIMED_OUT"
    assert result.record["status"] == "TIMED_OUT"
    steps = {s["step_id"]: s for s in result.steps}
    assert steps["nap"]["status"] == "failed" and "timed out" in steps["nap"]["error"]
