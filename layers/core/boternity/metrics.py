"""Business metrics as CloudWatch embedded-metric-format lines (Powertools Metrics): what the
stack's dashboard and alarms read (template.yaml, ``Dashboard``, ``FailedRunsAlarm``).

Namespace ``Boternity`` (``POWERTOOLS_METRICS_NAMESPACE`` overrides it):

* ``RunsStarted``, ``RunsSucceeded``, ``RunsFailed``, ``RunsTimedOut``, ``RunsAborted`` (Count,
  dimension ``workflow``, and once more for all workflows): from the status events
  (handlers/events.py), whoever started the run.
* ``StepDuration`` (Milliseconds) and ``StepAttempts`` (Count), dimension ``step_type``: from each
  step's function when the step ends.
* ``ApprovalsRequested`` and ``ApprovalsClosed`` (Count, dimension ``workflow``).

Each metric is one EMF line printed to stdout, which Lambda sends to CloudWatch Logs, which
turns it into a metric: no API call, no latency on the step. Local runs set
``POWERTOOLS_METRICS_DISABLED=true`` (boternity.local.engine), so nothing is printed on a
terminal. A metric that cannot be written never fails the step that emits it.
"""

from __future__ import annotations

import os
from typing import Any

NAMESPACE = "Boternity"

RUN_END_METRICS = {"SUCCEEDED": "RunsSucceeded", "FAILED": "RunsFailed", "TIMED_OUT": "RunsTimedOut",
                   "ABORTED": "RunsAborted"}


def enabled() -> bool:
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() not in ("1", "true", "yes")


def emit(name: str, value: float, *, unit: str = "Count", dimensions: dict[str, str] | None = None) -> None:
    """Print one metric now, with its own dimensions (Powertools ``single_metric``)."""
    if not enabled():
        return
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        with single_metric(name=name, unit=MetricUnit(unit), value=value,
                           namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE) as metric:
            for key, dim in (dimensions or {}).items():
                # CloudWatch refuses empty dimension values and values over 1024 characters.
                metric.add_dimension(name=key, value=(str(dim) or "-")[:1024])
    except Exception:  # noqa: BLE001 - a metric is never worth failing a step or a run
        import logging

        logging.getLogger("boternity").warning("metric %s not written", name, exc_info=True)


def run_status(status: str, workflow: str) -> None:
    """A run started (RUNNING) or ended (a final status): per workflow, and for the whole stack
    (only the ``service`` dimension Powertools adds), which is what the alarms watch: an alarm
    reads one metric series, not a search across workflows."""
    name = "RunsStarted" if status == "RUNNING" else RUN_END_METRICS.get(status)
    if name:
        emit(name, 1, dimensions={"workflow": workflow})
        emit(name, 1)


def step_ended(step_type: str, *, duration_ms: float, attempts: int) -> None:
    emit("StepDuration", round(duration_ms, 1), unit="Milliseconds", dimensions={"step_type": step_type})
    emit("StepAttempts", attempts, dimensions={"step_type": step_type})


def approval(event: str, workflow: str) -> None:
    """``requested`` or ``closed`` (decided, expired or cancelled)."""
    emit("ApprovalsRequested" if event == "requested" else "ApprovalsClosed", 1, dimensions={"workflow": workflow})


def workflow_of(state_machine_arn: Any) -> str:
    """The workflow a state machine runs: its name without the stack's prefix."""
    name = str(state_machine_arn or "").rsplit(":", 1)[-1]
    prefix = os.environ.get("BOTERNITY_STATE_MACHINE_PREFIX") or "boternity-"
    return name[len(prefix):] if name.startswith(prefix) else name
