"""Failure causes, as run records, the API and the CLI show them."""

from __future__ import annotations


def test_a_lambda_error_cause_becomes_a_sentence_without_its_stack_trace():
    import json

    from boternity.errors import readable_cause

    lam = json.dumps({"errorType": "StepFailed", "errorMessage": "[http.status] GET https://x/ answered 500",
                      "requestId": "r", "stackTrace": ['  File "/var/task/app.py", line 3, in handler\n']})
    assert readable_cause("StepFailed", f"step fetch failed (StepFailed): {lam}") == \
        "step fetch failed (StepFailed): [http.status] GET https://x/ answered 500"
    assert readable_cause("States.Timeout", "step slow failed (States.Timeout): task timed out") == \
        "step slow failed (States.Timeout): task timed out"
    assert readable_cause("StepFailed", "step x failed (StepFailed): {not json") == "step x failed (StepFailed): {not json"
    assert readable_cause("Boternity.Cancelled", None) == "Boternity.Cancelled"


def _child_failure(name: str, inner_cause: str, *, status: str = "FAILED") -> str:
    import json

    return json.dumps({"ExecutionArn": f"arn:aws:states:us-east-1:1:execution:boternity-{name}:5fff",
                       "StateMachineArn": f"arn:aws:states:us-east-1:1:stateMachine:boternity-{name}",
                       "Name": "5fff", "Status": status, "StartDate": 1, "StopDate": 2, "Input": {},
                       "Error": "StepFailed", "Cause": inner_cause})


def test_a_failed_sub_workflow_reads_as_a_sentence_down_to_the_childs_own_step():
    from boternity.errors import readable_cause

    lambda_error = 'step fetch failed (StepFailed): {"errorType":"StepFailed","errorMessage":"[http.status] 500 from x"}'
    cause = "step publish failed (States.TaskFailed): " + _child_failure("publish-digest", lambda_error)
    assert readable_cause("StepFailed", cause) == (
        "step publish failed (States.TaskFailed): sub-workflow publish-digest failed: "
        "step fetch failed (StepFailed): [http.status] 500 from x")


def test_nested_sub_workflows_and_timeouts_reduce_all_the_way_down():
    from boternity.errors import readable_cause

    grandchild = "step wait failed (States.Timeout): "
    child = "step inner failed (States.TaskFailed): " + _child_failure("grandchild", grandchild, status="TIMED_OUT")
    cause = "step outer failed (States.TaskFailed): " + _child_failure("child", child)
    assert readable_cause("StepFailed", cause) == (
        "step outer failed (States.TaskFailed): sub-workflow child failed: step inner failed (States.TaskFailed): "
        "sub-workflow grandchild timed out: step wait failed (States.Timeout): ")


def test_causes_that_are_not_json_stay_as_they_are():
    from boternity.errors import readable_cause

    assert readable_cause("E", "step a failed (StepFailed): a plain sentence") == "step a failed (StepFailed): a plain sentence"
    assert readable_cause("E", "step a failed: {not json") == "step a failed: {not json"
    assert readable_cause("E", None) == "E"
    assert readable_cause(None, '{"errorType": "X", "errorMessage": "bare"}') == "bare"
