"""The events function: EventBridge "Step Functions Execution Status Change" → run records."""

from __future__ import annotations

from typing import Any

from boternity.approvals import ApprovalStore
from boternity.runtime.finish import finish_run
from boternity.runtime.log import traced
from boternity.service.runs import on_status_change
from boternity.store.runs import RunStore

_stores: tuple[RunStore, ApprovalStore] | None = None


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _stores
    if _stores is None:
        runs = RunStore.from_env()
        _stores = (runs, ApprovalStore(runs.table_name))
    result = finish_run(event, *_stores)
    # Concurrency slots, queued runs, and records of runs started by schedules and event rules.

    result["service"] = on_status_change(event, _stores[0].table_name)
    detail = event.get("detail") or {}
    # A final status is counted once: when this event is the one that ended the run record
    # (EventBridge may deliver an event twice).
    if detail.get("status") == "RUNNING" or result.get("updated"):
        from boternity import metrics

        metrics.run_status(str(detail.get("status")), metrics.workflow_of(detail.get("stateMachineArn")))
    return result
