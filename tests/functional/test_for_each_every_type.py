"""for_each on every step type: a Map around a wait or a sub_workflow runs once per item; loop and
conditional are refused when the workflow is loaded, with the reason and what to do instead."""

from __future__ import annotations

from typing import Any

import pytest

from boternity.errors import ValidationFailed
from boternity.model import parse_workflow
from boternity.validate import check_workflow


def wf(steps: list[dict[str, Any]], name: str = "fe") -> Any:
    w = parse_workflow({"name": name, "steps": steps})
    check_workflow(w)
    return w


LIST = {"id": "list", "type": "code",
        "config": {"language": "javascript", "source": "({names: ['ada', 'bob', 'cy']})"}}


@pytest.fixture
def child(engine):
    engine.deploy(parse_workflow({"name": "greet", "steps": [
        {"id": "hello", "type": "code",
         "config": {"language": "javascript", "source": "({greeting: 'hi ' + input.who})",
                    "input": {"who": "{{ trigger.who }}"}}},
    ]}))


def test_a_sub_workflow_runs_once_per_item_and_gathers_the_children_outputs(engine, child):
    parent = wf([LIST, {"id": "each", "type": "sub_workflow", "depends_on": ["list"],
                        "for_each": "{{ steps.list.output.output.names }}", "max_concurrency": 2,
                        "config": {"workflow_name": "greet", "input": {"who": "{{ item }}"}}}])
    result = engine.run(parent, {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    outputs = result.output["each"]["output"]
    greetings = [o["hello"]["output"]["output"]["greeting"] for o in outputs]
    assert greetings == ["hi ada", "hi bob", "hi cy"]
    items = engine.runs.item_records(result.run_id, "each")
    assert sorted(items) == [0, 1, 2] and {r["status"] for r in items.values()} == {"completed"}


def test_a_wait_runs_once_per_item_with_the_item_in_its_template(engine):
    times = {"id": "times", "type": "code",
             "config": {"language": "javascript",
                        "source": "({at: ['2020-01-01T00:00:00Z', '2021-06-01T12:30:00+02:00']})"}}
    parent = wf([times, {"id": "pause", "type": "wait", "depends_on": ["times"],
                         "for_each": "{{ steps.times.output.output.at }}", "config": {"until": "{{ item }}"}}])
    result = engine.run(parent, {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert [o["until"] for o in result.output["pause"]["output"]] == [
        "2020-01-01T00:00:00.000000Z", "2021-06-01T10:30:00.000000Z"]


def test_an_item_condition_skips_only_that_item(engine, child):
    parent = wf([LIST, {"id": "each", "type": "sub_workflow", "depends_on": ["list"],
                        "for_each": "{{ steps.list.output.output.names }}", "condition": "item != 'bob'",
                        "config": {"workflow_name": "greet", "input": {"who": "{{ item }}"}}}])
    result = engine.run(parent, {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    outputs = result.output["each"]["output"]
    assert outputs[1] is None
    assert outputs[0]["hello"]["output"]["output"]["greeting"] == "hi ada"
    assert engine.runs.item_records(result.run_id, "each")[1]["status"] == "skipped"


def test_a_failing_child_fails_the_step_unless_continue_on_error(engine):
    engine.deploy(parse_workflow({"name": "picky", "steps": [
        {"id": "check", "type": "code",
         "config": {"language": "javascript",
                    "source": "if (input.n == 2) { throw new Error('two is bad') }; ({ok: input.n})",
                    "input": {"n": "{{ trigger.n }}"}}}]}))
    step = {"id": "each", "type": "sub_workflow", "for_each": "{{ trigger.ns }}",
            "config": {"workflow_name": "picky", "input": {"n": "{{ item }}"}}}
    failed = engine.run(wf([step], name="strict"), {"ns": [1, 2, 3]}, timeout=60)
    assert failed.status == "FAILED"
    assert "each" in failed.cause
    tolerant = engine.run(wf([{**step, "continue_on_error": True}], name="tolerant"), {"ns": [1, 2, 3]},
                          timeout=60)
    assert tolerant.status == "SUCCEEDED", tolerant.cause
    outputs = tolerant.output["each"]["output"]
    assert outputs[0]["check"]["output"]["output"] == {"ok": 1}
    assert outputs[1]["error"] == "States.TaskFailed"
    assert outputs[2]["check"]["output"]["output"] == {"ok": 3}


@pytest.mark.parametrize(("step", "reason"), [
    ({"id": "l", "type": "loop", "for_each": "{{ trigger.x }}",
      "config": {"condition": "false", "body_steps": ["body"]}}, "sub_workflow"),
    ({"id": "c", "type": "conditional", "for_each": "{{ trigger.x }}",
      "config": {"condition": "true", "then_steps": [], "else_steps": []}}, "sub_workflow"),
])
def test_loop_and_conditional_refuse_for_each_at_load_saying_what_to_do(step, reason):
    body = {"id": "body", "type": "wait", "config": {"seconds": 0}}
    with pytest.raises(ValidationFailed) as info:
        wf([step, body])
    error = next(e for e in info.value.errors if e.code == "for_each_unsupported")
    assert error.field == "for_each" and reason in error.message
