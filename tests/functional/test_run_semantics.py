"""Execution semantics, proven by running compiled state machines in moto's interpreter."""

from __future__ import annotations

from typing import Any

import pytest

from boternity.model import parse_workflow
from boternity.validate import check_workflow


def wf(steps: list[dict[str, Any]], **top: Any):
    w = parse_workflow({"name": top.pop("name", "t"), "steps": steps, **top})
    check_workflow(w)
    return w


def noop(step_id: str, **kw: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "wait", "config": {"seconds": kw.pop("seconds", 0)}, **kw}


def statuses(result) -> dict[str, str]:
    return {k: v["status"] for k, v in (result.output or {}).items()}


def test_exact_dataflow_on_a_non_series_parallel_dag(engine):
    # a(1 s) -> c(3 s), a -> d, b(3 s) -> d(1 s): critical path 4 s; layers or added edges give 6 s.
    w = wf([noop("a", seconds=1), noop("b", seconds=3), noop("c", seconds=3, depends_on=["a"]),
            noop("d", seconds=1, depends_on=["a", "b"])])
    result = engine.run(w, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    events = engine.history(result.execution_arn)
    t0 = events[0]["timestamp"]
    t1 = events[-1]["timestamp"]
    makespan = (t1 - t0).total_seconds()
    assert 3.9 <= makespan < 5.0, f"makespan {makespan:.2f} s: the non-series-parallel DAG lost its parallelism"


def test_conditional_runs_only_the_selected_branch_and_the_join_runs(engine):
    w = wf([
        {"id": "route", "type": "conditional",
         "config": {"condition": "trigger.amount > 10", "then_steps": ["big"], "else_steps": ["small"]}},
        noop("big"), noop("small"), noop("join", depends_on=["big", "small"]),
        noop("after-big", depends_on=["big"]),
    ])
    result = engine.run(w, {"amount": 50}, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    assert statuses(result) == {"route": "completed", "big": "completed", "small": "skipped", "join": "completed",
                                "after-big": "completed"}
    assert result.output["route"]["output"] == {"condition_met": True, "selected_steps": ["big"]}
    result = engine.run(w, {"amount": 5}, timeout=30)
    assert statuses(result) == {"route": "completed", "big": "skipped", "small": "completed", "join": "completed",
                                "after-big": "skipped"}


def test_false_condition_skips_the_step_and_skips_propagate(engine):
    w = wf([noop("a", condition="trigger.go == true"), noop("b", depends_on=["a"]), noop("c", depends_on=["b"]),
            noop("d")])
    result = engine.run(w, {"go": False}, timeout=30)
    assert statuses(result) == {"a": "skipped", "b": "skipped", "c": "skipped", "d": "completed"}
    records = {r["step_id"]: r for r in result.steps}
    assert records["a"]["status"] == "skipped"
    assert "condition is false" in records["a"]["output"]["reason"]


def test_a_failing_step_fails_the_run_naming_the_step(engine):
    # fetch fails a second in, so that its 5 s sibling has certainly started (its record is what
    # this checks); without the pause it could fail before the sibling's first task ran.
    w = wf([
        noop("pause", seconds=1),
        {"id": "fetch", "type": "http", "depends_on": ["pause"], "config": {"url": "http://127.0.0.1:9/never"}},
        noop("slow", seconds=5),
        noop("after", depends_on=["fetch"]),
    ])
    result = engine.run(w, timeout=30)
    assert result.status == "FAILED"
    assert result.error == "StepFailed"
    assert result.cause.startswith("step fetch failed (StepFailed):")
    assert "http.blocked_address" in result.cause
    assert result.seconds < 4, "fail-fast: the 5 s sibling must be stopped, not waited for"
    assert result.record["status"] == "FAILED"
    steps = {r["step_id"]: r for r in result.steps}
    assert steps["fetch"]["status"] == "failed"
    assert "after" not in steps
    assert steps["slow"]["status"] == "aborted", "the sibling was stopped by fail-fast, it did not fail"
    assert steps["slow"]["error"] == "stopped: step fetch failed (StepFailed)"


def test_continue_on_error_records_the_error_and_lets_dependents_run(engine):
    w = wf([
        {"id": "fetch", "type": "http", "continue_on_error": True, "config": {"url": "http://127.0.0.1:9/x"}},
        noop("after", depends_on=["fetch"]),
    ])
    result = engine.run(w, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["fetch"]["status"] == "failed"
    assert result.output["fetch"]["output"]["error"] == "StepFailed"
    assert "blocked" in result.output["fetch"]["output"]["cause"]
    assert result.output["after"]["status"] == "completed"


def test_loop_repeats_its_body_while_the_condition_holds(engine):
    w = wf([
        {"id": "again", "type": "loop",
         "config": {"condition": "loop.iteration < 3", "max_iterations": 10, "body_steps": ["tick"]}},
        noop("tick"),
        noop("after", depends_on=["again"]),
    ])
    result = engine.run(w, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["again"]["output"] == {"iterations": 3, "completed": True}
    assert result.output["after"]["status"] == "completed"


def test_loop_stops_at_max_iterations(engine):
    w = wf([
        {"id": "forever", "type": "loop", "config": {"condition": "true", "max_iterations": 4, "body_steps": ["tick"]}},
        noop("tick"),
    ])
    result = engine.run(w, timeout=30)
    assert result.output["forever"]["output"] == {"iterations": 4, "completed": False}


def test_wait_until_a_rendered_timestamp(engine):
    w = wf([{"id": "later", "type": "wait", "config": {"until": "{{ trigger.at }}"}}])
    result = engine.run(w, {"at": "2020-01-01T00:00:00Z"}, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["later"]["output"]["until"].startswith("2020-01-01T00:00:00")


def test_a_bad_timestamp_fails_with_the_field_named(engine):
    w = wf([{"id": "later", "type": "wait", "config": {"until": "{{ trigger.at }}"}}])
    result = engine.run(w, {"at": "next tuesday"}, timeout=30)
    assert result.status == "FAILED"
    assert "step 'later', field 'config.until'" in result.cause


def test_missing_template_value_fails_the_step_naming_the_reference(engine):
    w = wf([{"id": "later", "type": "wait", "config": {"until": "{{ trigger.when }}"}}])
    result = engine.run(w, {}, timeout=30)
    assert result.status == "FAILED"
    assert "trigger.when" in result.cause


@pytest.mark.parametrize("shape", ["diamond", "wide"])
def test_every_step_runs_once_and_after_its_dependencies(engine, shape):
    if shape == "diamond":
        steps = [noop("a"), noop("b", depends_on=["a"]), noop("c", depends_on=["a"]), noop("d", depends_on=["b", "c"])]
    else:
        steps = [noop(f"s{i}") for i in range(8)] + [noop("join", depends_on=[f"s{i}" for i in range(8)])]
    result = engine.run(wf(steps), timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    assert set(statuses(result).values()) == {"completed"}


def test_sub_workflow_runs_the_child_with_rendered_input_and_returns_its_output(engine):
    child = parse_workflow({"name": "child", "steps": [
        {"id": "check", "type": "conditional",
         "config": {"condition": "trigger.channel == 'blog'", "then_steps": ["post"], "else_steps": []}},
        noop("post"),
    ]})
    engine.deploy(child)
    parent = wf([
        noop("draft"),
        {"id": "publish", "type": "sub_workflow", "depends_on": ["draft"],
         "config": {"workflow_name": "child", "input": {"channel": "{{ trigger.where }}", "n": 3}}},
    ], name="parent")
    result = engine.run(parent, {"where": "blog"}, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    child_out = result.output["publish"]["output"]
    assert child_out["check"]["output"]["condition_met"] is True
    assert child_out["post"]["status"] == "completed"


def test_a_failing_sub_workflow_fails_the_parent_step(engine):
    child = parse_workflow({"name": "bad-child", "steps": [
        {"id": "fetch", "type": "http", "config": {"url": "http://127.0.0.1:9/"}}]})
    engine.deploy(child)
    parent = wf([{"id": "run-child", "type": "sub_workflow", "config": {"workflow_name": "bad-child"}}],
                name="parent2")
    result = engine.run(parent, {}, timeout=30)
    assert result.status == "FAILED"
    assert result.cause.startswith("step run-child failed (States.TaskFailed)")
