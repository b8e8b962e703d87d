"""No field is silently ignored: a step field that cannot apply to its type is refused when the
workflow is loaded (naming step and field), and a field that applies is compiled and obeyed."""

from __future__ import annotations

from typing import Any

import pytest

from boternity.compiler import compile_workflow
from boternity.errors import ValidationFailed
from boternity.model import parse_workflow
from boternity.validate import check_workflow


def load(steps: list[dict[str, Any]], name: str = "nf") -> Any:
    w = parse_workflow({"name": name, "steps": steps})
    check_workflow(w)
    return w


BODY = {"id": "body", "type": "wait", "config": {"seconds": 0}}
TIMEOUT_REFUSED = {
    "wait": ([{"id": "s", "type": "wait", "timeout_secs": 1, "config": {"seconds": 4}}], "exactly its seconds"),
    "approval": ([{"id": "s", "type": "approval", "timeout_secs": 60, "config": {"prompt": "ok?"}}],
                 "config.timeout_secs"),
    "conditional": ([{"id": "s", "type": "conditional", "timeout_secs": 5,
                      "config": {"condition": "true", "then_steps": ["body"]}}, BODY], "only evaluates"),
    "loop": ([{"id": "s", "type": "loop", "timeout_secs": 5,
               "config": {"condition": "false", "body_steps": ["body"]}}, BODY], "max_iterations"),
}


@pytest.mark.parametrize("step_type", TIMEOUT_REFUSED)
def test_timeout_secs_where_it_cannot_apply_is_refused_with_the_reason(step_type):
    steps, reason = TIMEOUT_REFUSED[step_type]
    with pytest.raises(ValidationFailed) as info:
        load(steps)
    [error] = [e for e in info.value.errors if e.code == "timeout_unsupported"]
    assert error.step_id == "s" and error.field == "timeout_secs"
    assert step_type in error.message and reason in error.message


def test_a_wait_without_timeout_secs_still_loads():
    load([{"id": "s", "type": "wait", "config": {"seconds": 4}}])


def _task(asl: dict[str, Any], resource_part: str) -> dict[str, Any]:
    return next(st for st in asl["States"].values() if resource_part in st.get("Resource", ""))


def test_a_sub_workflow_retry_policy_is_compiled_and_nothing_is_retried_without_one():
    with_policy = load([{"id": "child", "type": "sub_workflow", "config": {"workflow_name": "other"},
                         "retry": {"max_attempts": 3, "interval_secs": 5, "backoff_rate": 1.5}}])
    task = _task(compile_workflow(with_policy), "states:::states")
    assert task["Retry"] == [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "MaxAttempts": 2,
                              "BackoffRate": 1.5, "JitterStrategy": "FULL"}]
    without = load([{"id": "child", "type": "sub_workflow", "config": {"workflow_name": "other"}}])
    assert "Retry" not in _task(compile_workflow(without), "states:::states")


def test_a_failing_child_is_started_again_as_the_retry_policy_says(engine):
    child_arn = engine.deploy(parse_workflow({"name": "always-fails", "steps": [
        {"id": "boom", "type": "code", "config": {"language": "javascript", "source": "throw new Error('no')"}}]}))
    parent = load([{"id": "child", "type": "sub_workflow", "config": {"workflow_name": "always-fails"},
                    "retry": {"max_attempts": 2, "interval_secs": 1}}], name="retrying-parent")
    result = engine.run(parent, {}, timeout=60)
    assert result.status == "FAILED"
    children = engine.sfn.list_executions(stateMachineArn=child_arn)["executions"]
    assert len(children) == 2


def test_on_limit_without_a_concurrency_limit_is_refused():
    w = parse_workflow({"name": "nf", "on_limit": "reject", "steps": [BODY]})
    with pytest.raises(ValidationFailed) as info:
        check_workflow(w)
    [error] = info.value.errors
    assert error.code == "on_limit_without_concurrency" and error.field == "on_limit"
    check_workflow(parse_workflow({"name": "nf", "concurrency": 2, "on_limit": "reject", "steps": [BODY]}))
