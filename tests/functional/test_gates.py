"""A step that needs several producers from other branches waits for all of them in one state (a
gate), not one await per producer: the sync store counts their arrivals and the last one sends
the token with every record. Exact dataflow as before, one transition per consumer."""

from __future__ import annotations

from typing import Any

import pytest

from boternity.compiler import TaskTargets, compile_workflow
from boternity.model import parse_workflow
from boternity.validate import check_workflow

pytest.importorskip("py_mini_racer")


def js(step_id: str, deps: tuple[str, ...] = (), k: int = 0, *, loop: bool = False) -> dict[str, Any]:
    """A JavaScript step whose output is k + the sum of its dependencies' outputs (+ the iteration)."""
    inputs: dict[str, str] = {d: f"{{{{ steps.{d}.output.output }}}}" for d in deps}
    if loop:
        inputs["iteration"] = "{{ loop.iteration }}"
    return {"id": step_id, "type": "code", "depends_on": list(deps),
            "config": {"language": "javascript", "input": inputs,
                       "source": f"Object.values(input).reduce((s, v) => s + Number(v), {k})"}}


def crown(k: int, *, loop: bool = False) -> list[dict[str, Any]]:
    """u_i feed every v_j but v_i: each v needs k - 1 producers, at most one in its own chain."""
    us = [js(f"u{i}", k=10 ** i, loop=loop) for i in range(k)]
    vs = [js(f"v{j}", tuple(f"u{i}" for i in range(k) if i != j), loop=loop) for j in range(k)]
    return us + vs


def gate_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, st in states.items():
            if st.get("Parameters", {}).get("Payload", {}).get("op") == "gate":
                found[name] = st
            for b in st.get("Branches", []):
                walk(b["States"])
            if "ItemProcessor" in st:
                walk(st["ItemProcessor"]["States"])

    walk(definition["States"])
    return found


def value(result: Any, step_id: str) -> Any:
    rec = result.output[step_id]
    assert rec["status"] == "completed", (step_id, rec)
    return rec["output"]["output"]


def test_a_consumer_of_several_branches_waits_once_for_all_of_them(engine: Any) -> None:
    w = parse_workflow({"name": "crown", "steps": crown(4)})
    check_workflow(w)
    gates = gate_states(compile_workflow(w, targets=TaskTargets.local()))
    # Each v has three producers; one shares its chain, the other two come through one gate.
    assert len(gates) == 4
    assert all(len(st["Parameters"]["Payload"]["step"]["producers"]) == 2 for st in gates.values())
    result = engine.run(w, {}, timeout=90)
    assert result.status == "SUCCEEDED", result.cause
    for j in range(4):
        assert value(result, f"v{j}") == sum(10 ** i for i in range(4) if i != j)
    entered = [e["stateEnteredEventDetails"]["name"] for e in engine.history(result.execution_arn)
               if "stateEnteredEventDetails" in e]
    assert sorted(n for n in entered if ".await." in n) == sorted(gates)


def test_gates_inside_a_loop_read_this_iterations_records(engine: Any) -> None:
    """Each iteration's gate brings in that iteration's records, not a copy left by the one before."""
    steps = [{"id": "again", "type": "loop",
              "config": {"condition": "loop.iteration < 3", "max_iterations": 5,
                         "body_steps": [f"u{i}" for i in range(4)] + [f"v{j}" for j in range(4)]}},
             *crown(4, loop=True)]
    w = parse_workflow({"name": "crown-loop", "steps": steps})
    check_workflow(w)
    assert gate_states(compile_workflow(w, targets=TaskTargets.local()))
    result = engine.run(w, {}, timeout=120)
    assert result.status == "SUCCEEDED", result.cause
    last = 3   # the body's records after the loop are its last iteration's
    for j in range(4):
        expected = sum(10 ** i + last for i in range(4) if i != j) + last
        assert value(result, f"v{j}") == expected


def test_gated_records_travel_through_a_parallel_later_in_the_branch(engine: Any) -> None:
    """A gate's records reach steps of a Parallel later in the same branch (here a loop's body of
    two independent steps): its Parameters and ResultSelector carry the gate's key."""
    steps = [*crown(4),
             {"id": "again", "type": "loop", "depends_on": ["v0"],
              "config": {"condition": "loop.iteration < 2", "max_iterations": 3, "body_steps": ["p", "q"]}},
             js("p", ("u1", "u2"), k=1), js("q", ("u2", "u3"), k=2)]
    w = parse_workflow({"name": "crown-then-fan", "steps": steps})
    check_workflow(w)
    definition = compile_workflow(w, targets=TaskTargets.local())
    inner = [st for st in _all_states(definition) if st.get("Type") == "Parallel"
             and any(k.startswith("w_") for k in st["Parameters"])]
    assert inner, "a Parallel after a gate carries the gate's key"
    result = engine.run(w, {}, timeout=90)
    assert result.status == "SUCCEEDED", result.cause
    assert value(result, "p") == 1 + 10 + 100
    assert value(result, "q") == 2 + 100 + 1000


def _all_states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(states: dict[str, Any]) -> None:
        for st in states.values():
            out.append(st)
            for b in st.get("Branches", []):
                walk(b["States"])

    walk(definition["States"])
    return out
