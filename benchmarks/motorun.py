"""Running machines on the local engine (moto) and reading their execution histories."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.aslsim import step_of

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

    from boternity.local.engine import LocalEngine

ROOT = Path(__file__).resolve().parent.parent
SKILLS_DIR = ROOT / "examples" / "skills"


@contextmanager
def local_engine(tmp: Path | None = None) -> Iterator[LocalEngine]:
    """A LocalEngine with instant Retry intervals and the example skills, in a temporary folder."""
    from boternity.local.engine import LocalEngine

    with tempfile.TemporaryDirectory(prefix="boternity-bench-") as d:
        base = Path(tmp or d)
        env = {"BOTERNITY_SKILLS_DIR": str(SKILLS_DIR)}
        with LocalEngine(base_dir=base, blob_dir=base / "blobs", fast_retry=True, env=env) as eng:
            yield eng


def history(engine: LocalEngine, execution_arn: str) -> list[dict[str, Any]]:
    """The whole execution history (following nextToken, as AWS pages it at 1,000 events)."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn}
    while True:
        page = engine.sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events
        kwargs["nextToken"] = token


@dataclass
class Counts:
    transitions: int          # states entered: what Standard workflows bill
    lambda_invocations: int   # TaskScheduled (lambda:invoke integrations) + LambdaFunctionScheduled
    events: int               # history events (the 25,000 limit)
    own_transitions: int      # states that belong to a step itself (not awaits, signals, Parallels)
    breakdown: dict[str, int]  # transitions by kind: step, await, signal, parallel, branch_end, run


def transition_kind(name: str, state_type: str, steps: Collection[str]) -> str:
    sid, role = step_of(name)
    if sid in steps:
        if (role or "").startswith("await."):
            return "await"
        if role == "signal":
            return "signal"
        return "step"
    if state_type == "Parallel":
        return "parallel"
    if role is not None and (role.startswith("out") or role.startswith("end")):
        return "branch_end"     # Parallel(...).endN: the Pass ending a branch whose last state is a Choice
    return "run"                # Run.start, Run.done, baseline Start/Done


def count(events: list[dict[str, Any]], steps: Collection[str]) -> Counts:
    transitions = own = 0
    breakdown: dict[str, int] = {}
    for e in events:
        if e["type"].endswith("StateEntered"):
            transitions += 1
            kind = transition_kind(e["stateEnteredEventDetails"]["name"], e["type"][: -len("StateEntered")], steps)
            breakdown[kind] = breakdown.get(kind, 0) + 1
            if kind == "step":
                own += 1
    invocations = sum(e["type"] in ("TaskScheduled", "LambdaFunctionScheduled") for e in events)
    return Counts(transitions=transitions, lambda_invocations=invocations, events=len(events), own_transitions=own,
                  breakdown=breakdown)


def helper_task_seconds(events: list[dict[str, Any]], steps: Collection[str]) -> float:
    """The median time of a step's helper tasks (``<id>.prepare``, ``<id>.done``, ``<id>.signal``)
    in a run: the Lambda latency moto adds, which the simulator can take as ``task_seconds``."""
    import statistics

    entered: dict[str, Any] = {}
    spans: list[float] = []
    for e in events:
        if e["type"] == "TaskStateEntered":
            entered[e["stateEnteredEventDetails"]["name"]] = e["timestamp"]
        elif e["type"] == "TaskStateExited":
            name = e["stateExitedEventDetails"]["name"]
            sid, role = step_of(name)
            if sid in steps and role in ("prepare", "done", "signal") and name in entered:
                spans.append((e["timestamp"] - entered[name]).total_seconds())
    return statistics.median(spans) if spans else 0.0


def real_makespan(events: list[dict[str, Any]], steps: Collection[str]) -> float:
    """From the first state of any step entered to the last state of any step left (seconds).

    A step's states are ``<id>`` and ``<id>.<role>``, except ``<id>.await.<dep>``: waiting for
    another branch is not the step's own work (as in the simulator).
    """
    t0 = t1 = None
    for e in events:
        for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            details = e.get(key)
            if not details:
                continue
            sid, role = step_of(details["name"])
            if sid not in steps or (role or "").startswith("await."):
                continue
            ts = e["timestamp"]
            if key == "stateEnteredEventDetails":
                t0 = ts if t0 is None else min(t0, ts)
            else:
                t1 = ts if t1 is None else max(t1, ts)
    if t0 is None or t1 is None:
        raise ValueError("no step states in the history")
    return (t1 - t0).total_seconds()


@dataclass
class MachineRun:
    status: str
    execution_arn: str
    seconds: float
    events: list[dict[str, Any]]
    attempts: int


def run_definition(engine: LocalEngine, definition: dict[str, Any], payload: Any = None, *,
                   timeout: float = 60.0, name: str | None = None) -> MachineRun:
    """Create a state machine from a raw definition (a baseline) and run it to the end."""
    sm_name = name or f"bench-{uuid.uuid4().hex[:12]}"
    arn = engine.sfn.create_state_machine(name=sm_name, definition=json.dumps(definition),
                                          roleArn=engine.role_arn, type="STANDARD")["stateMachineArn"]
    run_id = uuid.uuid4().hex
    # The step functions record their steps under the run, as for a workflow started by the engine.
    engine.runs.run_started(run_id, workflow=sm_name, trigger_type="manual")
    t0 = time.monotonic()
    ex = engine.sfn.start_execution(stateMachineArn=arn, name=run_id,
                                    input=json.dumps(payload if payload is not None else {}))["executionArn"]
    while True:
        d = engine.sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            break
        if time.monotonic() - t0 > timeout:
            engine.sfn.stop_execution(executionArn=ex, error="Bench.Timeout", cause=f"no result within {timeout} s")
            continue
        time.sleep(0.02)
    return MachineRun(d["status"], ex, time.monotonic() - t0, history(engine, ex), 1)


def run_workflow(engine: LocalEngine, wf: Any, payload: Any = None, *, timeout: float = 60.0,
                 attempts: int = 2) -> MachineRun:
    """Run a workflow; a run that does not finish within ``timeout`` is stopped and run again.

    Runs of DAGs that are not series-parallel can hang on the local engine: the cross-branch
    signal store relies on DynamoDB UpdateItem being atomic, and moto's is not under concurrent
    threads, so a signal and a waiter that meet at the same moment can both miss each other
    (see benchmarks/RESULTS.md). Such a run is counted (``attempts``) and retried.
    """
    last: MachineRun | None = None
    for attempt in range(1, attempts + 1):
        r = engine.run(wf, payload if payload is not None else {}, timeout=timeout)
        last = MachineRun(r.status, r.execution_arn, r.seconds, history(engine, r.execution_arn), attempt)
        if r.status == "SUCCEEDED":
            return last
    assert last is not None
    return last
