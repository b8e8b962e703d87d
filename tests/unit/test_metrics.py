"""Business metrics are CloudWatch EMF lines with the documented names, units and dimensions."""

from __future__ import annotations

import json

import pytest

from boternity import metrics


def emf_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(autouse=True)
def cloud(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    monkeypatch.setenv("BOTERNITY_STATE_MACHINE_PREFIX", "boternity_")


def test_a_run_end_is_counted_per_workflow(capsys):
    metrics.run_status("FAILED", "digest")
    line, everything = emf_lines(capsys.readouterr().out)
    assert everything["RunsFailed"] == [1.0] and everything["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]] \
        and "workflow" not in everything, "one series for all workflows, for the alarm"
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Boternity"
    assert directive["Metrics"] == [{"Name": "RunsFailed", "Unit": "Count"}]
    assert directive["Dimensions"] == [["workflow"]]
    assert line["workflow"] == "digest" and line["RunsFailed"] == [1.0]


def test_a_started_run_and_every_final_status_have_their_metric(capsys):
    for status in ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "QUEUED"):
        metrics.run_status(status, "w")
    names = [next(iter(m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]))
             for line in emf_lines(capsys.readouterr().out) if "workflow" in line]
    assert names == ["RunsStarted", "RunsSucceeded", "RunsFailed", "RunsTimedOut", "RunsAborted"]


def test_a_step_reports_its_duration_and_attempts_by_type(capsys):
    metrics.step_ended("agent", duration_ms=1234.56, attempts=2)
    duration, attempts = emf_lines(capsys.readouterr().out)
    assert duration["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "StepDuration", "Unit": "Milliseconds"}]
    assert duration["step_type"] == "agent" and attempts["step_type"] == "agent"
    assert duration["StepDuration"] == [1234.6] and attempts["StepAttempts"] == [2.0]


def test_nothing_is_printed_where_metrics_are_disabled(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.run_status("FAILED", "digest")
    metrics.step_ended("http", duration_ms=1, attempts=1)
    assert capsys.readouterr().out == ""


def test_the_workflow_is_the_state_machine_name_without_the_stack_prefix():
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:boternity_research-digest"
    assert metrics.workflow_of(arn) == "research-digest"
    assert metrics.workflow_of("arn:aws:states:eu-west-1:1:stateMachine:other") == "other"


def test_the_events_function_counts_a_run_end_once_however_often_it_is_delivered(engine, capsys, monkeypatch):
    from boternity.handlers.events import lambda_handler

    engine.runs.run_started("r-1", workflow="digest", trigger_type="manual")
    event = {"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
             "detail": {"name": "r-1", "status": "FAILED", "error": "StepFailed", "cause": "step a failed (X): y",
                        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:boternity_digest",
                        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:boternity_digest:r-1"}}
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    capsys.readouterr()
    lambda_handler(event, None)
    lambda_handler(event, None)   # EventBridge delivers at least once
    lines = emf_lines(capsys.readouterr().out)
    assert [(line.get("workflow"), line.get("RunsFailed")) for line in lines] == [("digest", [1.0]), (None, [1.0])]


def test_a_run_in_the_engine_writes_its_run_and_step_metrics(engine, capsys, monkeypatch):
    from boternity.model import parse_workflow

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("BOTERNITY_STATE_MACHINE_PREFIX", "boternity-")   # the engine's
    w = parse_workflow({"name": "measured", "steps": [
        {"id": "a", "type": "skill", "config": {"skill": "echo-prompt", "input": "x"}}]})
    capsys.readouterr()
    assert engine.run(w, {}, timeout=60).status == "SUCCEEDED"
    lines = emf_lines(capsys.readouterr().out)
    named = {(next(iter(m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"])),
              line.get("workflow") or line.get("step_type")) for line in lines}
    assert {("RunsStarted", "measured"), ("RunsSucceeded", "measured"), ("StepDuration", "skill"),
            ("StepAttempts", "skill")} <= named


def test_approvals_are_counted_when_requested_and_when_closed(capsys):
    metrics.approval("requested", "review")
    metrics.approval("closed", "review")
    assert [next(k for k in line if k.startswith("Approvals")) for line in emf_lines(capsys.readouterr().out)] == [
        "ApprovalsRequested", "ApprovalsClosed"]
