"""A status event of an attempt the run has been redriven past changes nothing (EventBridge
delivers late and out of order; AWS counts an execution's redrives in the event)."""

from __future__ import annotations

from boternity.handlers.events import lambda_handler
from boternity.runtime.finish import finish_run


def _end_event(run_id: str, *, status: str, redrives: int) -> dict:
    return {"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
            "detail": {"name": run_id, "status": status, "redriveCount": redrives, "error": "Boternity.Cancelled",
                       "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:boternity-w",
                       "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:boternity-w:{run_id}"}}


def _redriven_and_running(engine, run_id: str) -> None:
    engine.runs.run_started(run_id, workflow="w", trigger_type="manual")
    assert engine.runs.run_ended(run_id, status="ABORTED")
    from boternity.store.run_records import Reopen

    assert engine.runs.reopen_for_redrive(run_id, status="ABORTED", workflow="w", slot_limit=0,
                                          at="2026-12-01T00:00:00.000Z") is Reopen.REOPENED
    engine.runs.step_started(run_id, "review", step_type="approval")


def test_the_end_of_an_earlier_attempt_neither_ends_the_redriven_run_nor_its_steps(engine):
    _redriven_and_running(engine, "r-late")
    result = finish_run(_end_event("r-late", status="ABORTED", redrives=0), engine.runs)
    assert result["updated"] is False and result.get("stale") is True
    assert engine.runs.get_run("r-late")["status"] == "RUNNING"
    assert engine.runs.step_record("r-late", "review")["status"] == "running"


def test_the_events_function_passes_over_it_too_and_the_current_attempts_end_counts(engine):
    _redriven_and_running(engine, "r-late-2")
    assert lambda_handler(_end_event("r-late-2", status="ABORTED", redrives=0))["stale"] is True
    assert engine.runs.get_run("r-late-2")["status"] == "RUNNING"
    ended = lambda_handler(_end_event("r-late-2", status="ABORTED", redrives=1))
    assert ended["updated"] is True
    assert engine.runs.get_run("r-late-2")["status"] == "ABORTED"
    assert engine.runs.step_record("r-late-2", "review")["status"] == "aborted"


def test_a_run_ended_write_refuses_an_attempt_the_run_was_redriven_past(engine):
    _redriven_and_running(engine, "r-late-3")
    assert engine.runs.run_ended("r-late-3", status="ABORTED", attempt=0) is False
    assert engine.runs.run_ended("r-late-3", status="SUCCEEDED", attempt=1) is True
