"""The events function: EventBridge "Step Functions Execution Status Change" → run records."""

from __future__ import annotations

from typing import Any

from boternity.approvals import ApprovalStore
from boternity.runtime.finish import finish_run
from boternity.runtime.log import traced
from boternity.service.runs import on_status_change
from boternity.store.run_records import RunStore

_stores: tuple[RunStore, ApprovalStore] | None = None


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _stores
    if _stores is None:
        runs = RunStore.from_env()
        _stores = (runs, ApprovalStore(runs.table_name))
    detail = event.get("detail") or {}
    if _before_a_redrive(detail, _stores[0]):
        # The end of an attempt the run has since been redriven past (EventBridge delivers late
        # and out of order): acting on it would end the redriven run and free its slot.
        return {"run_id": detail.get("name"), "status": detail.get("status"), "updated": False, "stale": True}
    result = finish_run(event, *_stores)
    # Concurrency slots, queued runs, and records of runs started by schedules and event rules.
    result["service"] = on_status_change(event, _stores[0].table_name)
    # A final status is counted once: when this event is the one that ended the run record
    # (EventBridge may deliver an event twice).
    if detail.get("status") == "RUNNING" or result.get("updated"):
        from boternity import metrics

        metrics.run_status(str(detail.get("status")), metrics.workflow_of(detail.get("stateMachineArn")))
    return result


def _before_a_redrive(detail: dict[str, Any], runs: RunStore) -> bool:
    """Whether this final status belongs to an execution attempt before the run's latest redrive
    (the event's ``redriveCount`` is below the one the run record counts)."""
    count = detail.get("redriveCount")
    if detail.get("status") == "RUNNING" or not isinstance(count, int) or not detail.get("name"):
        return False
    record = runs.get_run(str(detail["name"])) or {}
    return int(record.get("redrive_count") or 0) > count
