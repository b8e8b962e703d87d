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
