"""Section 5: scale limits. The largest DAGs and for_each fan-outs that fit Step Functions' limits.

* **DAG size**: the compiler refuses a workflow that cannot fit (``CompileError.limit`` =
  ``definition_size`` for the 1 MB definition, ``history_events`` for the 25,000-event history,
  ``parallel_branches`` for a Parallel too wide to merge, ``state_size`` for the records' worst
  case), and the format refuses more than 1,500 steps when the file is read (``max_steps``). Binary search on the step count of a
  wide DAG (n independent steps) and a long chain, for skill steps and for wait steps; the
  definition bytes and estimated events at the largest n that compiles, and the limit at n + 1.
* **Payload (claim-check on)**: every step's output is inlined up to the compiler's per-step share
  of the state budget and claim-checked above it. The worst case is every step returning output
  just at its inline limit: the state then holds n such records. Reported: the largest n whose
  worst-case state stays within the 256 KiB payload limit.
* **Planner depth**: chains far longer than Python's recursion limit plan, and how long it takes.
* **for_each**: the ``max_items`` the compiler writes into the step payload (the runtime refuses
  more items), and the history events per item, measured in moto (runs with 2 and 6 items), so
  the largest fan-out that fits 25,000 events.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from benchmarks.dags import Dag, workflow
from benchmarks.report import table

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_PAYLOAD_BYTES = 262_144
MAX_HISTORY_EVENTS = 25_000


def chain(n: int) -> Dag:
    steps = tuple(f"s{i:04d}" for i in range(n))
    return Dag(f"chain-{n}", "chain", steps, {s: ((steps[i - 1],) if i else ()) for i, s in enumerate(steps)},
               {s: 0 for s in steps})


def wide(n: int) -> Dag:
    steps = tuple(f"s{i:04d}" for i in range(n))
    return Dag(f"wide-{n}", "wide", steps, {s: () for s in steps}, {s: 0 for s in steps})


def try_compile(dag: Dag, kind: str) -> dict[str, Any]:
    from boternity.compiler import TaskTargets, compile_details
    from boternity.errors import CompileError, ValidationFailed
    from boternity.model.workflow import MAX_STEPS

    try:
        wf = workflow(dag, kind=kind, seconds=dag.durations, name="scale")
    except ValidationFailed:
        # The format's own cap, read before anything compiles (model/workflow.py: MAX_STEPS).
        if len(dag.steps) > MAX_STEPS:
            return {"ok": False, "limit": f"max_steps ({MAX_STEPS:,})"}
        raise
    try:
        c = compile_details(wf, targets=TaskTargets.local())
    except CompileError as exc:
        return {"ok": False, "limit": getattr(exc, "limit", None) or "compile_error"}
    except RecursionError:
        return {"ok": False, "limit": "RecursionError"}
    return {"ok": True, "definition_bytes": c.definition_bytes, "estimated_events": c.estimated_events,
            "inline_bytes": c.inline_bytes}


def largest(shape: Callable[[int], Dag], kind: str, *, hi_cap: int = 4096) -> dict[str, Any]:
    """Binary search the largest n that compiles, bracketed around a guess from the bytes per step."""
    probe = try_compile(shape(100), kind)
    if not probe["ok"]:
        lo, hi = 1, 100
    else:
        guess = 1_048_576 / (probe["definition_bytes"] / 100)
        lo, hi = max(100, int(guess * 0.95)), min(hi_cap, int(guess * 1.05) + 1)
        while lo > 100 and not try_compile(shape(lo), kind)["ok"]:
            lo, hi = max(100, int(lo * 0.8)), lo
        while hi < hi_cap and try_compile(shape(hi), kind)["ok"]:
            lo, hi = hi, min(hi_cap, hi * 2)
        if hi >= hi_cap and try_compile(shape(hi), kind)["ok"]:
            return {"max_steps": hi, "limit_at_next": None, "note": f"compiles up to the cap {hi_cap}"}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if try_compile(shape(mid), kind)["ok"]:
            lo = mid
        else:
            hi = mid
    t0 = time.perf_counter()
    best = try_compile(shape(lo), kind)
    seconds = time.perf_counter() - t0
    nxt = try_compile(shape(lo + 1), kind)
    return {"max_steps": lo, **{k: v for k, v in best.items() if k != "ok"},
            "compile_seconds": round(seconds, 2), "limit_at_next": nxt.get("limit")}


def worst_state_bytes(n: int) -> int:
    """The state when all n steps returned output exactly at their inline limit (claim-check on)."""
    from boternity.compiler import limits

    share = limits.STATE_BUDGET_BYTES // max(1, n)
    inline = max(limits.MIN_INLINE_BYTES, min(limits.DEFAULT_INLINE_BYTES, share))
    # A JSON string of exactly `inline` bytes: the largest value that still travels inline (a
    # claim-check reference is never larger than the floor).
    value = "x" * (max(inline, limits.MAX_REF_BYTES) - 2)
    state = {
        "ctx": {"trigger": {}, "run": {"id": "0" * 32, "started_at": "2026-01-01T00:00:00.000Z"},
                "workflow": {"name": "w" * 64, "allow_private_network": False}, "variables": {}},
        "steps": {f"s{i:04d}": {"status": "completed", "output": value} for i in range(n)},
    }
    return len(json.dumps(state, separators=(",", ":")).encode())


def payload_limit() -> dict[str, Any]:
    from boternity.compiler import limits

    lo, hi = 1, 4096
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if worst_state_bytes(mid) <= MAX_PAYLOAD_BYTES:
            lo = mid
        else:
            hi = mid
    budget_steps = limits.STATE_BUDGET_BYTES // limits.MIN_INLINE_BYTES
    return {"max_steps_worst_case_within_256KiB": lo, "worst_state_bytes_at_max": worst_state_bytes(lo),
            "state_budget_bytes": limits.STATE_BUDGET_BYTES, "min_inline_bytes": limits.MIN_INLINE_BYTES,
            "budget_holds_up_to_steps": budget_steps}


def planner_depth(sizes: tuple[int, ...] = (1_000, 5_000, 20_000)) -> dict[str, Any]:
    """Chains far longer than Python's recursion limit plan (the series split is one pass), and how fast."""
    from boternity.compiler.plan import plan_scope

    timings: dict[str, float] = {}
    max_chain = None
    for n in sizes:
        nodes = [f"s{i}" for i in range(n)]
        deps = {s: ([nodes[i - 1]] if i else []) for i, s in enumerate(nodes)}
        t0 = time.perf_counter()
        try:
            plan_scope(nodes, deps)
        except RecursionError:
            break
        timings[str(n)] = round(time.perf_counter() - t0, 3)
        max_chain = n
    return {"max_chain": max_chain, "recursion_limit": sys.getrecursionlimit(), "plan_seconds": timings}


def for_each(*, measure_events: bool = True) -> dict[str, Any]:
    from boternity.compiler import TaskTargets, compile_details, limits
    from boternity.model import parse_workflow

    def doc(items: int) -> dict[str, Any]:
        return {"name": f"fanout-{items}", "variables": {"items": list(range(items))},
                "steps": [{"id": "each", "type": "skill", "for_each": "{{ variables.items }}",
                           "config": {"skill": "echo-prompt", "input": "item {{ item }}"}}]}

    wf = parse_workflow(doc(2))
    definition = compile_details(wf, targets=TaskTargets.local()).definition
    max_items = None
    for st in definition["States"].values():
        step = ((st.get("Parameters") or {}).get("Payload") or {}).get("step") or {}
        if step.get("id") == "each" and "max_items" in step:
            max_items = step["max_items"]
    out: dict[str, Any] = {"max_items": max_items, "estimate_items": limits.FOR_EACH_ESTIMATE}
    if measure_events:
        from benchmarks.motorun import local_engine, run_workflow

        events: dict[int, int] = {}
        with local_engine() as eng:
            for items in (2, 6):
                r = run_workflow(eng, parse_workflow(doc(items)), timeout=60)
                if r.status != "SUCCEEDED":
                    out["note"] = f"the for_each run with {items} items ended {r.status}"
                    return out
                events[items] = len(r.events)
        per_item = (events[6] - events[2]) / 4
        base = events[2] - 2 * per_item
        out.update({
            "history_events_per_item": per_item, "history_events_fixed": base,
            "max_items_within_history": int((MAX_HISTORY_EVENTS - base) // per_item),
            "history_events_at_max_items": int(base + per_item * max_items) if max_items else None,
        })
    return out


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    # A chain compiles in seconds near the limit (the planner is quadratic on chains): full mode only.
    shapes: list[tuple[str, Callable[[int], Dag], str]] = [("wide", wide, "skill")]
    if not quick:
        shapes += [("chain", chain, "skill"), ("wide", wide, "wait"), ("chain", chain, "wait")]
    dags: dict[str, Any] = {}
    for label, shape, kind in shapes:
        dags[f"{label}_{kind}"] = largest(shape, kind)
    result: dict[str, Any] = {
        "dags": dags,
        "payload": payload_limit(),
        "planner": None if quick else planner_depth(),
        "for_each": for_each(),
    }
    log(_render(result))
    return result


def _render(res: dict[str, Any]) -> str:
    rows = []
    for key, r in res["dags"].items():
        rows.append([key, r["max_steps"], r.get("definition_bytes"), r.get("estimated_events"), r.get("inline_bytes"),
                     r.get("compile_seconds"), r.get("limit_at_next") or r.get("note", "-")])
    out = ["5. Scale limits (compiler refusals: definition 1 MB, 25,000 history events, Parallel merge width)"]
    out.append(table(["shape", "max steps", "definition B", "est. events", "inline B", "compile s", "limit at +1"],
                     rows))
    p = res["payload"]
    out.append(f"payload: the per-step inline share keeps the state within the {p['state_budget_bytes']:,} B budget up "
               f"to {p['budget_holds_up_to_steps']} steps; the worst case (every output at its inline limit) fits "
               f"256 KiB up to {p['max_steps_worst_case_within_256KiB']} steps")
    pl = res["planner"]
    if pl:
        took = ", ".join(f"{int(n):,} steps {t} s" for n, t in pl["plan_seconds"].items())
        out.append(f"planner: chains plan without recursion (recursion limit {pl['recursion_limit']}): {took}")
    fe = res["for_each"]
    line = f"for_each: max_items {fe['max_items']} (history estimate assumes {fe['estimate_items']} items)"
    if "history_events_per_item" in fe:
        line += (f"; {fe['history_events_per_item']:g} history events per item in moto, so at most "
                 f"{fe['max_items_within_history']:,} items fit 25,000 events "
                 f"({fe['history_events_at_max_items']:,} events at max_items)")
    out.append(line)
    return "\n".join(out)
