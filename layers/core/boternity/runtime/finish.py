"""The end of a run, from a "Step Functions Execution Status Change" event.

Ends that the machine's own states never see (a stop, a run timeout) and the records of steps
that run inside Step Functions (wait, Map, sub-workflow) are settled here, once: every write is
conditional, so a late or repeated event changes nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from boternity.compiler.records import flat_records
from boternity.errors import readable_cause
from boternity.store.run_records import RUN_FINAL, STEP_FINAL, STEP_OPEN


def finish_run(event: dict[str, Any], runs: Any, approvals: Any = None) -> dict[str, Any]:
    detail = event.get("detail") or {}
    status = detail.get("status")
    run_id = detail.get("name")
    if not run_id or status not in RUN_FINAL:
        return {"run_id": run_id, "status": status, "updated": False}
    output = flat_records(_json(detail.get("output")))
    stop = detail.get("stopDate")
    ended_at = None
    if isinstance(stop, int | float):
        import time

        ended_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stop / 1000)) + f".{int(stop) % 1000:03d}Z"
    # Settle step records: those in the output are final; anything still running did not finish.
    # One read of the run's records first, so only the records not yet final are written (a
    # step's own task has written most of them already).
    records: list[dict[str, Any]] | None = None
    if isinstance(output, dict):
        records = runs.steps(run_id, as_stored=True)
        stored = {str(r["step_id"]): r for r in records if "step_id" in r and not r.get("iteration")}
        settled = {sid for sid, r in stored.items() if r.get("status") in STEP_FINAL}
        for step_id, rec in output.items():
            planned = stored.get(step_id, {}).get("ends_at")
            if (planned and step_id in settled and isinstance(rec, dict) and rec.get("status") == "completed"
                    and stored[step_id].get("status") in ("aborted", "timed_out", "failed")):
                # A planned wait an earlier attempt's stop cut short, run again by a redrive that
                # then succeeded: its Wait ended in this attempt, before the run's stop.
                runs.step_ended(run_id, step_id, status="completed", output=rec.get("output"), ended_at=ended_at)
                continue
            if (isinstance(rec, dict) and rec.get("status") in STEP_FINAL and step_id not in settled):
                out, error, child = rec.get("output"), None, None
                if rec["status"] == "failed" and isinstance(out, dict) and "cause" in out:
                    child = child_execution(out.get("cause"))
                    # A step failed inside Step Functions (a sub-workflow, a Map) and went on
                    # (continue_on_error): its cause is the service's JSON; the record says it
                    # as a sentence.
                    reduced = readable_cause(out.get("error"), out.get("cause"))
                    out = {**out, "cause": reduced}
                    error = f"{out.get('error')}: {reduced}" if out.get("error") else reduced
                # Ended no later than the run: its stop is a truer end than this event's arrival
                # (a static wait that ends the run has no task of its own to record its end).
                # A planned wait ended when its record says (runtime/step.py: start_waits).
                runs.step_ended(run_id, step_id, status=rec["status"], output=out, error=error,
                                only_if_not_final=True, child_execution_arn=child,
                                ended_at=str(planned) if planned else ended_at)
    raw_cause = detail.get("cause") or None
    cause = readable_cause(None, raw_cause)
    # The end of an attempt the run was redriven past in the meantime (AWS counts redrives in the
    # event) must not close what the redriven execution opened, nor end it.
    attempt = detail.get("redriveCount") if isinstance(detail.get("redriveCount"), int) else None

    def superseded() -> bool:
        return attempt is not None and int((runs.get_run(run_id) or {}).get("redrive_count") or 0) > attempt

    if superseded():
        return {"run_id": run_id, "status": status, "updated": False, "stale": True}
    # The records read above, less those the output just settled: a run's end reads them once.
    unsettled = None if records is None else [
        r for r in records if r.get("iteration") or str(r.get("step_id")) not in output]
    _close_what_is_open(run_id, status, runs, approvals, cause, raw_cause, stop=ended_at, records=unsettled)
    # After the settling, so whoever reads the run as ended finds its steps settled too...
    updated = runs.run_ended(run_id, status=status, error=detail.get("error") or None, cause=cause,
                             output=output, ended_at=ended_at, attempt=attempt)
    # ...and once more after it: an approval function still running when the run stopped opens
    # its approval and step record, then checks the run (handlers/approval.py). Whatever it opened
    # before this write is closed here; whatever after, it closes itself.
    if updated or not superseded():
        # (Only a run that did not succeed can have such a late step: a run succeeds once every
        # task has ended.)
        _close_what_is_open(run_id, status, runs, approvals, cause, raw_cause, stop=ended_at,
                            steps=status != "SUCCEEDED")
    return {"run_id": run_id, "status": status, "updated": updated}


def _close_what_is_open(run_id: str, status: str, runs: Any, approvals: Any, cause: str | None,
                        raw_cause: str | None = None, *, stop: str | None = None,
                        records: list[dict[str, Any]] | None = None, steps: bool = True) -> None:
    """Close the run's approvals and (``steps``) the step records still open: ``records`` as
    stored if the caller has just read them, else read here."""
    if approvals is not None:
        # A decision can no longer resume anything: no approval of an ended run stays PENDING
        # (a succeeded run can still hold one whose step timed out and went on).
        approvals.close_for_run(run_id, status)
    if not steps:
        return
    for rec in records if records is not None else runs.steps(run_id, as_stored=True):
        if rec.get("status") not in STEP_OPEN or "step_id" not in rec:
            continue
        iteration = str(rec.get("iteration") or "")
        if rec.get("ends_at"):
            # A planned wait (one of a loop's earlier iterations, or cut by the stop): ended,
            # ended by the stop, or never started. A run that succeeded ran every Wait to its end.
            end, error = (("completed", None) if status == "SUCCEEDED"
                          else open_step_end(status, cause, step_id=str(rec["step_id"]), iteration=iteration))
            runs.settle_planned(rec, run_id=run_id, stop=stop, status=end, error=error)
            continue
        if status == "SUCCEEDED":
            continue
        end, error = open_step_end(status, cause, step_id=str(rec["step_id"]), iteration=iteration)
        child = None
        if end == "failed" and rec.get("step_type") == "sub_workflow":
            # The sub-workflow whose child failed the run: the run's cause carries the child's ARN.
            failed = _STEP_FAILED.match(raw_cause or "")
            child = child_execution(failed["cause"]) if failed else None
        runs.step_ended(run_id, str(rec["step_id"]), iteration=iteration, status=end, error=error,
                        only_if_not_final=True, child_execution_arn=child)


# The cause a step's failure gives its run (the compiler's `<id>.failed` Fail state).
_STEP_FAILED = re.compile(r"step (?P<step>\S+) failed \((?P<error>[^)]*)\)(?:: (?P<cause>.*))?", re.DOTALL)


def open_step_end(run_status: str, run_cause: str | None, *, step_id: str, iteration: str = "") -> tuple[str, str]:
    """How a step record still open when its run ended is closed: (status, error sentence).

    * the step whose failure failed the run: ``failed`` with its cause, or ``timed_out`` when its
      own timeout (``States.Timeout``) was the failure;
    * any other step of a failed run: ``aborted`` (fail-fast stopped it), naming the step that failed;
    * a run that timed out: ``timed_out``; a cancelled (aborted) run: ``aborted``.
    """
    if run_status == "TIMED_OUT":
        return "timed_out", "the run timed out (workflow timeout_secs) while this step ran"
    if run_status != "FAILED":
        return "aborted", "run aborted"
    failed = _STEP_FAILED.match(run_cause or "")
    if failed is None:
        return "aborted", f"stopped: the run failed ({run_cause or 'no cause given'})"
    if failed["step"] == step_id:
        cause = failed["cause"] or failed["error"]
        if failed["error"] == "States.Timeout":
            detail = f": {failed['cause']}" if failed["cause"] else ""
            return "timed_out", f"timed out (States.Timeout){detail}"
        if not iteration:
            return "failed", f"{failed['error']}: {cause}"
    return "aborted", f"stopped: step {failed['step']} failed ({failed['error']})"


def child_execution(cause: Any) -> str | None:
    """The child execution a failed sub-workflow task names: Step Functions puts the child's
    DescribeExecution (``{"ExecutionArn": ..., "Error": ..., "Cause": ...}``) in the task's cause."""
    if not isinstance(cause, str) or not cause.lstrip().startswith("{"):
        return None
    payload = _json(cause)
    arn = payload.get("ExecutionArn") if isinstance(payload, dict) else None
    return arn if isinstance(arn, str) and ":execution:" in arn else None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
