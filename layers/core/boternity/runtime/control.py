"""The control function's operations: the small decisions Step Functions cannot make in ASL
because they need the condition language (one implementation, in Python).

* ``run``     — a conditional step: evaluate the condition, select a branch.
* ``loop``    — a loop's check: evaluate the condition, count iterations, stop at the maximum.
* ``prepare`` — before wait / sub_workflow / for_each steps: gate, and render what the ASL needs
  (a timestamp, the child's input, the list of items).
* ``start``   — before a wait of fixed seconds that nothing can skip: record its start and return
  the record it ends with (the next task in the flow ends it: ``end_waits``).
* ``signal`` / ``await`` / ``gate`` — cross-branch dependencies (store/sync.py): an await waits
  for one producer, a gate for several at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from boternity.compiler import limits
from boternity.compiler.records import STARTED, flat_records
from boternity.errors import StepFailed
from boternity.runtime.context import StepContext
from boternity.runtime.step import (
    Services,
    end_waits,
    iso_ms,
    now_ms,
    record,
    run_step,
    start_waits,
    static_wait_output,
    wait_ended_at,
    with_started,
)
from boternity.store.blobs import claim_check


def handle(event: dict[str, Any], services: Services) -> dict[str, Any]:
    op = event.get("op")
    if op == "run":
        return run_step(event, _conditional, services)   # ends the waits it follows itself
    end_waits(event, services)
    if op == "loop":
        return _loop(event, services)
    if op == "prepare":
        return _prepare(event, services)
    if op == "start":
        return _start(event, services)
    if op == "finish":
        return _finish(event, services)
    if op == "signal":
        sc = StepContext(spec=event["step"], state=event.get("state", {}))
        services.sync.signal(sc.run_id, sc.step_id, sc.iteration_key(), sc.steps.get(sc.step_id, {}))
        return {}
    if op == "await":
        sc = StepContext(spec=event["step"], state=event.get("state", {}))
        services.sync.wait(sc.run_id, sc.step_id, sc.iteration_key(), event["token"])
        return {}
    if op == "gate":
        sc = StepContext(spec=event["step"], state=event.get("state", {}))
        services.sync.gate(sc.run_id, sc.step_id, sc.iteration_key(), list(event["step"]["producers"]),
                           event["token"])
        return {}
    raise StepFailed(f"unknown control operation {op!r}", code="control")


def _conditional(sc: StepContext) -> dict[str, Any]:
    cfg = sc.spec["config"]
    met = sc.condition(cfg["condition"], field_name="config.condition")
    return {"condition_met": met, "selected_steps": list(cfg.get("then_steps" if met else "else_steps", []))}


def _loop(event: dict[str, Any], services: Services) -> dict[str, Any]:
    sc = StepContext(spec=event["step"], state=event.get("state", {}))
    cfg = sc.spec["config"]
    current = (sc.steps.get(sc.step_id) or {}).get("output") or {}
    iterations = int(current.get("iterations", 0))
    iteration_key = sc.iteration_key()
    if iterations == 0:
        reason = sc.skip_reason()
        if reason is not None:
            services.runs.step_ended(sc.run_id, sc.step_id, status="skipped", output={"reason": reason},
                                     iteration=iteration_key, step_type="loop")
            return {**record("skipped", {"iterations": 0, "completed": False}), "continue": False}
        services.runs.step_started(sc.run_id, sc.step_id, iteration=iteration_key, step_type="loop")
    holds = sc.condition(cfg["condition"], field_name="config.condition")
    if holds and iterations < int(cfg.get("max_iterations", 100)):
        return {**record("running", {"iterations": iterations + 1, "completed": False}), "continue": True}
    output = {"iterations": iterations, "completed": not holds}
    services.runs.step_ended(sc.run_id, sc.step_id, status="completed", output=output, iteration=iteration_key,
                             step_type="loop")
    result = record("completed", output)
    if sc.spec.get("signal"):
        services.sync.signal(sc.run_id, sc.step_id, iteration_key, result)
    return {**result, "continue": False}


def _prepare(event: dict[str, Any], services: Services) -> dict[str, Any]:
    sc = StepContext(spec=event["step"], state=event.get("state", {}))
    spec = sc.spec
    iteration = sc.iteration_key()
    # Inside a for_each's Map (a wait or sub_workflow item), the item is prepared on its own:
    # conditions that read {{ item }} are evaluated here, and the record is the item's.
    per_item = sc.index is not None
    reason = sc.skip_reason(per_item=per_item)
    if reason is not None:
        services.runs.step_ended(sc.run_id, sc.step_id, status="skipped", output={"reason": reason},
                                 iteration=iteration, step_type=spec.get("type"))
        if spec.get("signal") and not per_item:
            services.sync.signal(sc.run_id, sc.step_id, iteration, record("skipped"))
        return {**record("skipped"), "data": None}
    services.runs.step_started(sc.run_id, sc.step_id, iteration=iteration, step_type=spec.get("type"))
    data: dict[str, Any] = {}
    cfg = spec["config"]
    if spec.get("for_each") and not per_item:
        items = sc.render(spec["for_each"], field_name="for_each")
        if not isinstance(items, list):
            raise StepFailed(f"step '{sc.step_id}', field 'for_each': expected a list, got "
                             f"{type(items).__name__}", code="for_each")
        max_items = int(spec.get("max_items", 1000))
        if len(items) > max_items:
            raise StepFailed(f"step '{sc.step_id}': for_each has {len(items)} items; at most {max_items} fit in "
                             "one execution's history. Use a sub_workflow per batch.", code="for_each")
        size = len(json.dumps(items, separators=(",", ":"), ensure_ascii=False).encode())
        if size > limits.FOR_EACH_LIST_BYTES:
            raise StepFailed(f"step '{sc.step_id}', field 'for_each': the list is {size:,} bytes; at most "
                             f"{limits.FOR_EACH_LIST_BYTES // 1024} KiB fit in the run's state while the items run. "
                             "Iterate over ids (or indexes) and fetch each item in the step, or split the list "
                             "with a sub_workflow per batch.", code="for_each")
        if not items:
            services.runs.step_ended(sc.run_id, sc.step_id, status="completed", output=[], iteration=iteration,
                                     step_type=spec.get("type"))
            if spec.get("signal"):
                services.sync.signal(sc.run_id, sc.step_id, iteration, record("completed", []))
            return {**record("completed", []), "data": None}
        data["items"] = items
    elif cfg["type"] == "wait":
        if cfg.get("until"):
            raw = sc.render(cfg["until"], field_name="config.until")
            data["until"] = _timestamp(raw, sc.step_id)
        else:
            data.update(static_wait_output(int(cfg["seconds"]), datetime.now(UTC)))
    elif cfg["type"] == "sub_workflow":
        # The child's trigger: by reference when it is large, as for any run (store/blobs.py).
        data["input"] = claim_check(sc.render(cfg.get("input"), field_name="config.input"),
                                    limit=limits.TRIGGER_INLINE_BYTES, store=sc.blobs)
    return {**record("running"), "data": data}


def _start(event: dict[str, Any], services: Services) -> dict[str, Any]:
    """A static wait's start, by its own prepare (compiler/waits.py): its record written whole,
    with its end (store/run_records.py shows it by the clock), and returned as it will end
    (``{until, seconds}``), with the records of the waits planned on its clock."""
    sc = StepContext(spec=event["step"], state=event.get("state", {}))
    if sc.skip_reason(per_item=False) is not None:   # the compiler plans only waits nothing can skip
        prepared = _prepare(event, services)
        return record(prepared["status"], prepared.get("output"))
    now = now_ms()
    output = static_wait_output(int(sc.spec["config"]["seconds"]), now)
    services.runs.step_planned(sc.run_id, sc.step_id, iteration=sc.iteration_key(), started_at=iso_ms(now),
                               ends_at=output["until"], output=output)
    result = record("completed", output)
    if "starts" in event:
        result[STARTED] = start_waits(event, services, now=now)
    return result


def _finish(event: dict[str, Any], services: Services) -> dict[str, Any]:
    """Record the end of a step that ran inside Step Functions (Wait, Map, sub-workflow)."""
    sc = StepContext(spec=event["step"], state=event.get("state", {}))
    current = sc.steps.get(sc.step_id) or {}
    iteration = sc.iteration_key()
    child: str | None = None
    if sc.spec.get("for_each") and isinstance(current.get("results"), list):
        output = _gather_items(sc, services, current["results"], iteration)
    elif current.get("execution"):
        # A sub-workflow's child: its record names the child run, so the console links to it.
        child = str(current["execution"])
        output = _child_output(child)
    else:
        # A wait step's result is what prepare computed.
        output = current.get("data") if current.get("status") == "running" else current.get("output")
    stored = claim_check(output, limit=int(sc.spec.get("inline_limit", 32768)), store=sc.blobs)
    # A static wait ended when it was planned to (runtime/step.py: wait_ended_at).
    static = sc.spec.get("type") == "wait" and (sc.spec.get("config") or {}).get("seconds") is not None
    services.runs.step_ended(sc.run_id, sc.step_id, status="completed", output=stored, iteration=iteration,
                             step_type=sc.spec.get("type"), child_execution_arn=child,
                             ended_at=wait_ended_at(output) if static else None)
    result = record("completed", stored)
    if sc.spec.get("signal"):
        services.sync.signal(sc.run_id, sc.step_id, iteration, with_started(event, sc.step_id, result))
    return result


def _gather_items(sc: StepContext, services: Services, results: list[Any], iteration: str) -> list[Any]:
    """The outputs of a for_each step's items, in item order.

    The Map state keeps only each item's status (and an approval's small decision): a thousand
    outputs would not fit in a 256 KiB state together. Each item's function recorded its output in
    the run table before returning, so the outputs are read from there.
    """
    records = services.runs.item_records(sc.run_id, sc.step_id, loops=iteration)
    out: list[Any] = []
    for index, r in enumerate(results):
        r = r if isinstance(r, dict) else {}
        status = r.get("status")
        rec = records.get(index, {})
        if "output" in r:
            out.append(r["output"])
        elif status == "completed":
            if rec.get("status") != "completed":
                raise StepFailed(f"step '{sc.step_id}': item {index} completed but its output was not recorded",
                                 code="for_each")
            out.append(rec.get("output"))
        elif status == "failed":
            out.append({"error": r.get("error"), "cause": rec.get("error")})
        else:
            out.append(None)
    return out


_sfn: Any = None


def _child_output(execution_arn: str) -> Any:
    """A finished sub-workflow's output: its step records."""
    import boto3

    global _sfn
    if _sfn is None:
        _sfn = boto3.client("stepfunctions")
    d = _sfn.describe_execution(executionArn=execution_arn)
    return flat_records(json.loads(d["output"])) if d.get("output") else None


_SHOWN_CHARS = 100  # of a bad value in the message: a trigger payload may hold megabytes


def _timestamp(value: Any, step_id: str) -> str:
    """``value`` as the RFC 3339 UTC timestamp a Wait state's TimestampPath accepts, or StepFailed."""
    text = str(value)
    shown = repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…")
    where = f"step '{step_id}', field 'config.until': {shown}"
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise StepFailed(f"{where} is not an ISO-8601 timestamp", code="wait") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        dt = dt.astimezone(UTC)
    except OverflowError as exc:
        # 0001-01-01T00:00+01:00 is in year 0 in UTC, 9999-12-31T23:59-01:00 in year 10000.
        raise StepFailed(f"{where} is out of range (before year 1 or after year 9999 in UTC)", code="wait") from exc
    # Four-digit years whatever the platform's strftime does with year 1 ("1-01-02" is no timestamp
    # to Step Functions, and failed the run with States.Runtime instead of the step's own error).
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
            f".{dt.microsecond:06d}Z")
