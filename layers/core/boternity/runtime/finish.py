"""The end of a run, from a "Step Functions Execution Status Change" event.

Ends that the machine's own states never see (a stop, a run timeout) and the records of steps
that run inside Step Functions (wait, Map, sub-workflow) are settled here, once: every write is
conditional, so a late or repeated event changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from boternity.errors import readable_cause
from boternity.store.runs import RUN_FINAL, STEP_FINAL


def finish_run(event: dict[str, Any], runs: Any, approvals: Any = None) -> dict[str, Any]:
    detail = event.get("detail") or {}
    status = detail.get("status")
    run_id = detail.get("name")
    if not run_id or status not in RUN_FINAL:
        return {"run_id": run_id, "status": status, "updated": False}
    output = _json(detail.get("output"))
    stop = detail.get("stopDate")
    ended_at = None
    if isinstance(stop, int | float):
        import time

        ended_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stop / 1000)) + f".{int(stop) % 1000:03d}Z"
    # Settle step records: those in the output are final; anything still running did not finish.
    # One read of the run's records first, so only the records not yet final are written (a
    # step's own task has written most of them already).
    if isinstance(output, dict):
        settled = {str(r["step_id"]) for r in runs.steps(run_id)
                   if "step_id" in r and not r.get("iteration") and r.get("status") in STEP_FINAL}
        for step_id, rec in output.items():
            if (isinstance(rec, dict) and rec.get("status") in STEP_FINAL and step_id not in settled):
                runs.step_ended(run_id, step_id, status=rec["status"], output=rec.get("output"),
                                only_if_not_final=True)
    _close_what_is_open(run_id, status, runs, approvals)
    # After the settling, so whoever reads the run as ended finds its steps settled too...
    updated = runs.run_ended(run_id, status=status, error=detail.get("error") or None,
                             cause=readable_cause(None, detail.get("cause") or None), output=output,
                             ended_at=ended_at)
    # ...and once more after it: an approval function still running when the run stopped opens
    # its approval and step record, then checks the run (handlers/approval.py). Whatever it opened
    # before this write is closed here; whatever after, it closes itself.
    _close_what_is_open(run_id, status, runs, approvals)
    return {"run_id": run_id, "status": status, "updated": updated}


def _close_what_is_open(run_id: str, status: str, runs: Any, approvals: Any) -> None:
    if approvals is not None:
        # A decision can no longer resume anything: no approval of an ended run stays PENDING
        # (a succeeded run can still hold one whose step timed out and went on).
        approvals.close_for_run(run_id, status)
    if status != "SUCCEEDED":
        end_status = "failed" if status in ("FAILED", "TIMED_OUT") else "aborted"
        runs.end_open_steps(run_id, status=end_status, error=f"run {status.lower().replace('_', ' ')}")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
