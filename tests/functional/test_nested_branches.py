"""Records written deep inside Parallel branches reach every step that reads them.

Non-first branches keep their records apart (``$.b<level>``) and return only those; these runs
prove that every shape still sees exactly its upstream outputs: nested Parallels two levels deep,
chains with awaits inside a loop (where a stale record from the previous iteration must not win),
for_each, continue_on_error, conditional skips and control steps in non-first
branches, and the order in which the merges let the newest record win.
"""

from __future__ import annotations

from typing import Any

import pytest

from boternity.model import parse_workflow
from boternity.validate import check_workflow

pytest.importorskip("py_mini_racer")


def js(step_id: str, deps: tuple[str, ...] = (), k: int = 0, *, loop: bool = False, **kw: Any) -> dict[str, Any]:
    """A JavaScript step whose output is k + the sum of its dependencies' outputs (+ the iteration)."""
    inputs: dict[str, str] = {d: f"{{{{ steps.{d}.output.output }}}}" for d in deps}
    if loop:
        inputs["iteration"] = "{{ loop.iteration }}"
    return {"id": step_id, "type": "code", "depends_on": list(deps),
            "config": {"language": "javascript", "input": inputs,
                       "source": f"Object.values(input).reduce((s, v) => s + Number(v), {k})"}, **kw}


def value(result, step_id: str) -> Any:
    rec = result.output[step_id]
    assert rec["status"] == "completed", (step_id, rec)
    return rec["output"]["output"]


def run(engine, steps: list[dict[str, Any]], trigger: dict[str, Any] | None = None):
    w = parse_workflow({"name": "nested", "steps": steps})
    check_workflow(w)
    result = engine.run(w, trigger or {}, timeout=90)
    assert result.status == "SUCCEEDED", result.cause
    return result


def test_records_flow_through_parallels_nested_three_levels_deep(engine):
    # p is the first top-level branch; y's part is a second branch (level 1) holding a Parallel whose
    # second branch (level 2) holds another whose second branch (z2) is at level 3.
    result = run(engine, [
        js("p", k=1),
        js("y", k=2),
        js("y1", ("y",), k=3),
        js("y2", ("y",), k=4),
        js("z1", ("y2",), k=5),
        js("z2", ("y2",), k=6),
        js("j", ("y1", "z1", "z2"), k=7),
        js("end", ("p", "j"), k=0),
    ])
    y, y1, y2 = 2, 5, 6
    z1, z2 = y2 + 5, y2 + 6
    j = y1 + z1 + z2 + 7
    assert [value(result, s) for s in ("p", "y", "y1", "y2", "z1", "z2", "j", "end")] == \
        [1, y, y1, y2, z1, z2, j, 1 + j]


def test_awaited_records_inside_a_loop_are_the_current_iterations(engine):
    # The loop body is an N shape (a -> c, a -> d, b -> d): d waits for a from another branch. In the
    # second iteration the first iteration's a is still in the outer records; d must read the new one.
    # The loop itself sits in a second top-level branch, so its records live at level 1.
    result = run(engine, [
        js("other", k=100),
        {"id": "rounds", "type": "loop",
         "config": {"condition": "loop.iteration < 3", "max_iterations": 5, "body_steps": ["a", "b", "c", "d"]}},
        js("a", k=10, loop=True),
        js("b", k=20, loop=True),
        js("c", ("a",), k=0, loop=True),
        js("d", ("a", "b"), k=0, loop=True),
        js("after", ("rounds",), k=0) | {"config": {
            "language": "javascript", "source": "input",
            "input": {"d": "{{ steps.d.output.output }}", "c": "{{ steps.c.output.output }}",
                      "iterations": "{{ steps.rounds.output.iterations }}"}}},
    ])
    last = 3  # loop.iteration counts from 1 in the body, as the records do
    a, b = 10 + last, 20 + last
    assert value(result, "a") == a and value(result, "b") == b
    assert value(result, "c") == a + last
    assert value(result, "d") == a + b + last
    after = value(result, "after")
    assert {k: int(v) for k, v in after.items()} == {"d": a + b + last, "c": a + last, "iterations": 3}
    assert value(result, "other") == 100


def test_for_each_continue_on_error_and_skips_in_second_branches(engine):
    result = run(engine, [
        js("first", k=1),
        # Second top-level branch: a for_each over an upstream list, then a step reading its outputs.
        {"id": "list", "type": "code", "config": {"language": "javascript", "source": "[1, 2, 3]"}},
        {"id": "each", "type": "code", "depends_on": ["list"], "for_each": "{{ steps.list.output.output }}",
         "config": {"language": "javascript", "source": "Number(input.item) * Number(input.base)",
                    "input": {"item": "{{ item }}", "base": "{{ steps.list.output.output[2] }}"}}},
        {"id": "total", "type": "code", "depends_on": ["each"],
         "config": {"language": "javascript", "source": "input.reduce((s, r) => s + r.output, 0)",
                    "input": "{{ steps.each.output }}"}},
        # Third top-level branch: a failure recorded and passed on, and a skipped branch.
        {"id": "broken", "type": "code", "continue_on_error": True,
         "config": {"language": "javascript", "source": "throw new Error('nope')"}},
        {"id": "route", "type": "conditional", "depends_on": ["broken"],
         "config": {"condition": "steps.broken.status == 'failed'", "then_steps": ["recover"],
                    "else_steps": ["proceed"]}},
        js("recover", k=7),
        js("proceed", k=8),
        js("join", ("first", "total", "recover"), k=0) | {"depends_on": ["first", "total", "recover", "proceed"]},
    ])
    assert value(result, "total") == 3 * (1 + 2 + 3)
    assert result.output["broken"]["status"] == "failed"
    assert "nope" in result.output["broken"]["output"]["cause"]
    assert result.output["proceed"]["status"] == "skipped"
    assert value(result, "recover") == 7
    assert value(result, "join") == 1 + 18 + 7


def test_for_each_outputs_larger_than_the_state_together_still_reach_the_next_step(engine):
    # 60 items of 10 KB each: 600 KB, more than a Step Functions state may hold at once.
    result = run(engine, [
        {"id": "list", "type": "code", "config": {"language": "javascript",
                                                  "source": "Array.from({length: 60}, (_, i) => i)"}},
        {"id": "each", "type": "code", "depends_on": ["list"], "for_each": "{{ steps.list.output.output }}",
         "max_concurrency": 10,
         "config": {"language": "javascript", "source": "'x'.repeat(10000) + input",
                    "input": "{{ item }}"}},
        {"id": "check", "type": "code", "depends_on": ["each"],
         "config": {"language": "javascript",
                    "source": "({n: input.length, chars: input.reduce((s, r) => s + r.output.length, 0),"
                              " last: input[59].output.slice(10000)})",
                    "input": "{{ steps.each.output }}"}},
    ])
    assert value(result, "check") == {"n": 60, "chars": 60 * 10000 + 10 + 50 * 2, "last": "59"}


def test_a_sub_workflow_whose_output_would_not_fit_next_to_the_parents_records(engine):
    # The child returns five 32 KB outputs (160 KB, inline in the child); the parent already holds
    # five 23 KB ones (115 KB, its inline share is 23,405 B). Both together exceed a state, so the
    # parent's .done task must read the child's output and claim-check it, not take it into the state.
    def big(step_id: str, ch: str, n: int) -> dict[str, Any]:
        return {"id": step_id, "type": "code", "config": {"language": "javascript", "source": f"'{ch}'.repeat({n})"}}

    child = parse_workflow({"name": "child", "steps": [big(f"c{i}", "c", 32_000) for i in range(5)]})
    engine.deploy(child)
    result = run(engine, [
        *(big(f"p{i}", "p", 23_000) for i in range(5)),
        {"id": "sub", "type": "sub_workflow", "depends_on": [f"p{i}" for i in range(5)],
         "config": {"workflow_name": "child"}},
        {"id": "check", "type": "code", "depends_on": ["sub"],
         "config": {"language": "javascript", "source": "input.length",
                    "input": "{{ steps.sub.output.c4.output.output }}"}},
    ])
    assert all(isinstance(result.output[f"p{i}"]["output"]["output"], str) for i in range(5)), "kept inline"
    assert result.output["sub"]["output"]["$ref"].startswith("blob:")
    assert value(result, "check") == 32000


def test_for_each_inside_a_loop_gathers_the_current_iterations_items(engine):
    w = parse_workflow({"name": "loop-each", "variables": {"items": [1, 2, 3]}, "steps": [
        {"id": "rounds", "type": "loop",
         "config": {"condition": "loop.iteration < 2", "max_iterations": 5, "body_steps": ["each"]}},
        {"id": "each", "type": "code", "for_each": "{{ variables.items }}",
         "config": {"language": "javascript", "source": "Number(input.item) * 10 + Number(input.round)",
                    "input": {"item": "{{ item }}", "round": "{{ loop.iteration }}"}}},
        {"id": "after", "type": "code", "depends_on": ["rounds"],
         "config": {"language": "javascript", "source": "input.map(r => r.output)",
                    "input": "{{ steps.each.output }}"}},
    ]})
    check_workflow(w)
    result = engine.run(w, {}, timeout=90)
    assert result.status == "SUCCEEDED", result.cause
    assert value(result, "after") == [12, 22, 32], "the second round's items (iteration 2), not the first's"
    item_records = [r for r in result.steps if r.get("step_id") == "each" and "/i" in str(r.get("iteration"))]
    assert len(item_records) == 6, "each round's items are recorded apart"
