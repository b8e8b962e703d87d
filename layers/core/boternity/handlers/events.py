"""The events function: EventBridge "Step Functions Execution Status Change" → run records."""

from __future__ import annotations

from typing import Any

from boternity.runtime.finish import finish_run
from boternity.store.runs import RunStore

_runs: RunStore | None = None


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _runs
    if _runs is None:
        _runs = RunStore.from_env()
    return finish_run(event, _runs)
