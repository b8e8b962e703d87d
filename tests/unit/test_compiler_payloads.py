"""Each Lambda task receives ctx and only the records its step reads, each by its path in the state.

What a step reads: the steps named by its templates, condition and for_each; its dependencies and
conditionals (the gate reads their status); its loops (the iteration numbers). A record that may be
missing at that point of the run (a loop body's, after the loop; an ancestor that ran in another
branch and was not awaited) cannot be named by a path, which would fail the state: the task then
gets the whole state, as before, so such a template behaves exactly as it always did.
"""

from __future__ import annotations

from typing import Any

from boternity import load_workflow_text
from boternity.compiler import TaskTargets, compile_workflow


def compiled(yaml_text: str) -> dict[str, Any]:
    return compile_workflow(load_workflow_text(yaml_text).workflow, targets=TaskTargets.sam())


def states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of the machine by name, inside Parallel branches and Map processors too."""
    out: dict[str, dict[str, Any]] = {}

    def walk(sts: dict[str, dict[str, Any]]) -> None:
        for name, st in sts.items():
            out[name] = st
            for b in st.get("Branches", []):
                walk(b["States"])
            if "ItemProcessor" in st:
                walk(st["ItemProcessor"]["States"])

    walk(definition["States"])
    return out


def sent_state(definition: dict[str, Any], name: str) -> Any:
    payload = states(definition)[name]["Parameters"]["Payload"]
    return payload["state"] if "state" in payload else payload["state.$"]


def test_a_step_receives_its_dependencies_and_the_steps_its_template_names():
    d = compiled("""
name: chain
steps:
  - {id: a, type: skill, config: {skill: s, input: "A"}}
  - {id: b, type: skill, depends_on: [a], config: {skill: s, input: "B"}}
  - {id: c, type: skill, depends_on: [b], config: {skill: s, input: "{{ steps.a.output }}"}}
""")
    assert sent_state(d, "a") == {"ctx.$": "$.ctx", "steps": {}}
    assert sent_state(d, "b") == {"ctx.$": "$.ctx", "steps": {"a.$": "$.steps.a"}}
    assert sent_state(d, "c") == {"ctx.$": "$.ctx", "steps": {"a.$": "$.steps.a", "b.$": "$.steps.b"}}


def test_conditions_and_conditionals_are_read_too():
    d = compiled("""
name: cond
steps:
  - {id: a, type: skill, config: {skill: s, input: "A"}}
  - {id: z, type: skill, config: {skill: s, input: "Z"}}
  - {id: route, type: conditional, depends_on: [a], config: {condition: "steps.a.status == 'completed'",
     then_steps: [go], else_steps: []}}
  - {id: go, type: skill, condition: "steps.z.output.output != ''", depends_on: [z],
     config: {skill: s, input: "Y"}}
""")
    assert set(sent_state(d, "route")["steps"]) == {"a.$"}
    assert set(sent_state(d, "go")["steps"]) == {"route.$", "z.$"}


def test_records_written_in_a_parallel_branch_are_read_from_that_branch():
    d = compiled("""
name: n
steps:
  - {id: a, type: skill, config: {skill: s, input: "A"}}
  - {id: b, type: skill, config: {skill: s, input: "B"}}
  - {id: c, type: skill, depends_on: [a], config: {skill: s, input: "C"}}
  - {id: d, type: skill, depends_on: [a, b], config: {skill: s, input: "D"}}
""")
    sts = states(d)
    # Branch 0 runs a then c at level 0; branch 1 runs b, waits for a (its record lands in the
    # branch's own $.b1), then d.
    assert "d.await.a" in sts
    assert sent_state(d, "c") == {"ctx.$": "$.ctx", "steps": {"a.$": "$.steps.a"}}
    assert sent_state(d, "d") == {"ctx.$": "$.ctx", "steps": {"a.$": "$.b1.a", "b.$": "$.b1.b"}}
    # An await sends no record: it needs only the run id (and the loops' iteration numbers).
    awaits = [n for n in sts if ".await." in n]
    assert awaits and all(sent_state(d, n)["steps"] == {} for n in awaits)


def test_an_item_receives_the_records_it_reads_beside_the_item():
    d = compiled("""
name: items
steps:
  - {id: list, type: skill, config: {skill: s, input: "L"}}
  - {id: other, type: skill, config: {skill: s, input: "O"}}
  - {id: each, type: skill, depends_on: [list, other], for_each: "{{ steps.list.output.items }}",
     config: {skill: s, input: "{{ item }}"}}
""")
    sts = states(d)
    m = sts["each"]
    assert m["Type"] == "Map"
    assert m["ItemSelector"]["steps"] == {"list.$": "$.steps.list", "other.$": "$.steps.other"}
    assert sent_state(d, "each.item") == {"ctx.$": "$.ctx", "item.$": "$.item", "index.$": "$.index",
                                          "steps": {"list.$": "$.steps.list", "other.$": "$.steps.other"}}


def test_a_loop_body_record_read_after_the_loop_sends_the_whole_state():
    # The body may have run zero times: its records may be missing, so no path can name them.
    d = compiled("""
name: loop
steps:
  - {id: again, type: loop, config: {condition: "loop.iteration < 2", max_iterations: 3, body_steps: [work]}}
  - {id: work, type: skill, config: {skill: s, input: "{{ loop.iteration }}"}}
  - {id: after, type: skill, depends_on: [again], config: {skill: s, input: "{{ steps.work.output }}"}}
""")
    assert sent_state(d, "after") == "$"
    # Inside the body the loop's own record is certain: the body step gets just that.
    assert sent_state(d, "work") == {"ctx.$": "$.ctx", "steps": {"again.$": "$.steps.again"}}


def test_an_ancestor_that_ran_in_another_branch_sends_the_whole_state_as_before():
    # d waits for a (another branch), whose ancestor x is not in d's branch: the template reading
    # x gets what it always got, the merged records of its branch (without x).
    d = compiled("""
name: unseen
steps:
  - {id: x, type: skill, config: {skill: s, input: "X"}}
  - {id: a, type: skill, depends_on: [x], config: {skill: s, input: "A"}}
  - {id: b, type: skill, config: {skill: s, input: "B"}}
  - {id: c, type: skill, depends_on: [a], config: {skill: s, input: "C"}}
  - {id: d, type: skill, depends_on: [b, a], config: {skill: s, input: "{{ steps.x.output }}"}}
""")
    assert sent_state(d, "d") == {"ctx.$": "$.ctx", "steps.$": "States.JsonMerge($.steps, $.b1, false)"}


def test_the_compiler_reads_the_same_templated_fields_as_validation():
    # The compiler keeps its own list (validate.py sits above it in the layers): the two must agree
    # on every step type, or a template could read a record its task was not sent.
    from boternity import load_workflow
    from boternity.compiler.compile import template_fields
    from boternity.validate import _template_fields
    from tests.conftest import EXAMPLES, ROOT

    files = [*sorted(EXAMPLES.glob("*.yaml")), *sorted((ROOT / "tests" / "fixtures" / "outputs").glob("*.yaml"))]
    types = set()
    for path in files:
        for step in load_workflow(path).workflow.steps:
            types.add(step.type)
            assert template_fields(step) == _template_fields(step), (path.name, step.id)
    assert {"agent", "skill", "code", "http", "approval", "sub_workflow", "wait"} <= types
