"""A wait of fixed seconds that nothing can skip: a start task and a Wait state, ended by the next task.

Its record is known before it starts (``{until, seconds}``), so the start task (op ``start``) puts
the final record in the state, and the task that runs right after the Wait ends the record in the
run table (and signals the wait to other branches) before its own work: no ``.done`` task, one
transition and one Lambda invocation less. When no such task follows (the end of a branch, a
loop body or the run; a Parallel; an approval, whose function does not end waits), the wait keeps
its ``.done`` task.
"""

from __future__ import annotations

from typing import Any

from boternity import load_workflow_text
from boternity.compiler import TaskTargets, compile_workflow
from tests.unit.test_compiler_payloads import states


def compiled(steps: str) -> dict[str, Any]:
    return compile_workflow(load_workflow_text(f"name: waits\nsteps:\n{steps}").workflow, targets=TaskTargets.sam())


def payload(sts: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    return sts[name]["Parameters"]["Payload"]


def test_the_next_task_ends_the_wait_and_no_done_task_is_compiled():
    sts = states(compiled("""
  - {id: pause, type: wait, config: {seconds: 5}}
  - {id: work, type: skill, depends_on: [pause], config: {skill: s, input: "W"}}
"""))
    assert payload(sts, "pause.prepare")["op"] == "start"
    assert sts["pause.prepare"]["Next"] == "pause" and sts["pause"] == {
        "Type": "Wait", "Comment": "wait step", "Seconds": 5, "Next": "work"}
    assert "pause.done" not in sts
    assert payload(sts, "work")["ended"] == [{"id": "pause", "loops": []}]
    assert payload(sts, "work")["state"]["steps"] == {"pause.$": "$.steps.pause"}


def test_a_wait_with_nothing_after_it_keeps_its_done_task():
    sts = states(compiled("""
  - {id: work, type: skill, config: {skill: s, input: "W"}}
  - {id: pause, type: wait, depends_on: [work], config: {seconds: 5}}
"""))
    assert sts["pause"]["Next"] == "pause.done"
    assert payload(sts, "pause.done")["op"] == "finish"
    assert sts["pause.done"]["End"] is True


def test_a_wait_that_can_be_skipped_or_waits_until_a_time_is_prepared_as_before():
    sts = states(compiled("""
  - {id: gate, type: skill, config: {skill: s, input: "G"}}
  - {id: maybe, type: wait, depends_on: [gate], condition: "steps.gate.status == 'completed'",
     config: {seconds: 5}}
  - {id: later, type: wait, depends_on: [maybe], config: {until: "2030-01-01T00:00:00Z"}}
  - {id: work, type: skill, depends_on: [later], config: {skill: s, input: "W"}}
"""))
    assert payload(sts, "maybe.prepare")["op"] == "prepare" and "maybe.gate" in sts and "maybe.done" in sts
    assert payload(sts, "later.prepare")["op"] == "prepare" and "later.done" in sts
    assert "ended" not in payload(sts, "work")


def test_a_signalled_wait_is_signalled_by_the_task_after_it():
    # N shape of waits: d (another branch) waits for a; c's start task ends a and signals it.
    sts = states(compiled("""
  - {id: a, type: wait, config: {seconds: 1}}
  - {id: b, type: wait, config: {seconds: 3}}
  - {id: c, type: wait, depends_on: [a], config: {seconds: 3}}
  - {id: d, type: wait, depends_on: [a, b], config: {seconds: 1}}
"""))
    assert payload(sts, "c.prepare")["ended"] == [{"id": "a", "loops": [], "signal": True}]
    assert payload(sts, "d.await.a")["ended"] == [{"id": "b", "loops": []}]
    assert payload(sts, "d.await.a")["state"]["steps"] == {"b.$": "$.b1.b"}
    assert not any(name.endswith(".signal") for name in sts)


def test_a_wait_ending_a_loop_body_has_its_done_task():
    # The body's last state goes back to the loop's check, which also runs before the first
    # iteration: it must not end a wait that has not run yet.
    sts = states(compiled("""
  - {id: again, type: loop, config: {condition: "loop.iteration < 2", max_iterations: 3, body_steps: [pause]}}
  - {id: pause, type: wait, config: {seconds: 1}}
"""))
    assert sts["pause"]["Next"] == "pause.done" and sts["pause.done"]["Next"] == "again"
    assert "ended" not in payload(sts, "again")


def test_an_approval_after_a_wait_does_not_end_it():
    sts = states(compiled("""
  - {id: pause, type: wait, config: {seconds: 1}}
  - {id: ok, type: approval, depends_on: [pause], config: {prompt: "go?"}}
"""))
    assert sts["pause"]["Next"] == "pause.done" and "ended" not in payload(sts, "ok")
