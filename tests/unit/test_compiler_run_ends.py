"""Where a run starts and ends: no state is spent on either when the shape allows it.

The run's output is every step's record (``$.steps``): the states that end the run output it
themselves, instead of entering a final Succeed state (one transition less per run). A run that
opens with a Parallel builds ``ctx`` from the trigger in that Parallel's Parameters, instead of in
a ``Run.start`` Pass (one more).
"""

from __future__ import annotations

from typing import Any

from boternity import load_workflow_text
from boternity.compiler import TaskTargets, compile_workflow


def compiled(steps: str) -> dict[str, Any]:
    return compile_workflow(load_workflow_text(f"name: ends\nvariables: {{v: 1}}\nsteps:\n{steps}").workflow,
                            targets=TaskTargets.sam())


CTX = {"trigger.$": "$", "run": {"id.$": "$$.Execution.Name", "started_at.$": "$$.Execution.StartTime"},
       "workflow": {"name": "ends", "allow_private_network": False}, "variables": {"v": 1}}


def test_a_run_opening_with_a_parallel_builds_ctx_there():
    d = compiled("""
  - {id: a, type: skill, config: {skill: s, input: "A"}}
  - {id: b, type: skill, config: {skill: s, input: "B"}}
""")
    assert d["StartAt"] == "Parallel(a+b)" and "Run.start" not in d["States"]
    assert d["States"]["Parallel(a+b)"]["Parameters"] == {"ctx": CTX, "steps": {}, "b1": {}}


def test_a_run_opening_with_a_task_starts_with_run_start():
    d = compiled("""
  - {id: a, type: skill, config: {skill: s, input: "A"}}
  - {id: b, type: skill, depends_on: [a], config: {skill: s, input: "B"}}
""")
    assert d["StartAt"] == "Run.start"
    assert d["States"]["Run.start"]["Parameters"] == {"ctx": CTX, "steps": {}}
    assert d["States"]["Run.start"]["Next"] == "a"


def test_the_last_states_output_every_record_and_no_succeed_state_is_entered():
    d = compiled("""
  - {id: a, type: skill, config: {skill: s, input: "A"}}
  - {id: b, type: skill, depends_on: [a], continue_on_error: true, config: {skill: s, input: "B"}}
""")
    ends = {n: st for n, st in d["States"].items() if st.get("End")}
    # b itself and its continue_on_error handler (a Pass recording the failure) end the run.
    assert set(ends) == {"b", "b.error"}
    assert all(st["OutputPath"] == "$.steps" for st in ends.values())
    assert not any(st["Type"] == "Succeed" for st in d["States"].values())


def test_a_run_ending_in_a_choice_ends_in_a_run_done_pass():
    d = compiled("""
  - {id: again, type: loop, config: {condition: "loop.iteration < 2", max_iterations: 3, body_steps: [w]}}
  - {id: w, type: skill, config: {skill: s, input: "W"}}
""")
    assert d["States"]["again.again"]["Default"] == "Run.done"
    assert d["States"]["Run.done"] == {"Type": "Pass", "End": True, "OutputPath": "$.steps"}
