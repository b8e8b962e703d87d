"""A wait of fixed seconds that nothing can skip is planned ahead (compiler/waits.py).

Its whole record is known before it starts: the task before it in the flow (a Lambda step's, or
its own ``prepare``) writes it, start and end, and puts the final record in the state, so the wait
is its Wait state alone. The task that runs right after the Wait, if any, ends the record in the
run table (and signals the wait to other branches) before its own work; when none does, nothing is
added (the record holds its end), unless another branch waits for a signal: then a ``.done`` task.
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


def test_a_wait_that_ends_the_run_ends_it_and_the_runs_end_settles_its_record():
    # Its final record is in the run's output; runtime/finish.py settles it in the run table.
    for steps in ("""
  - {id: work, type: skill, config: {skill: s, input: "W"}}
  - {id: pause, type: wait, depends_on: [work], config: {seconds: 5}}
""", """
  - {id: pause, type: wait, config: {seconds: 5}}
"""):
        sts = states(compiled(steps))
        assert "pause.done" not in sts
        assert sts["pause"]["End"] is True and sts["pause"]["OutputPath"] == "$.steps"


def test_a_wait_ending_a_branch_needs_no_done_task():
    # The other branch may go on for long after it: its record, planned with its end, shows it
    # ended when it does (store/run_records.py: as_of), and the run's end settles it.
    sts = states(compiled("""
  - {id: work, type: skill, config: {skill: s, input: "W"}}
  - {id: pause, type: wait, depends_on: [work], config: {seconds: 5}}
  - {id: slow, type: skill, config: {skill: s, input: "S"}}
  - {id: end, type: skill, depends_on: [pause, slow], config: {skill: s, input: "E"}}
"""))
    par = next(st for st in sts.values() if st["Type"] == "Parallel")
    branch = next(b["States"] for b in par["Branches"] if "pause" in b["States"])
    assert branch["pause"]["End"] is True and "pause.done" not in branch
    assert payload(branch, "work")["starts"] == [{"id": "pause", "seconds": 5, "after": 0, "loops": []}]


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
    # d (a skill in another branch, on b's clock) waits for a through a signal; c, the task after
    # a, ends a and signals it.
    sts = states(compiled("""
  - {id: a, type: wait, config: {seconds: 1}}
  - {id: b, type: skill, config: {skill: s, input: "B"}}
  - {id: c, type: skill, depends_on: [a], config: {skill: s, input: "C"}}
  - {id: d, type: skill, depends_on: [a, b], config: {skill: s, input: "D"}}
"""))
    assert payload(sts, "c")["ended"] == [{"id": "a", "loops": [], "signal": True}]
    assert "d.await.a" in sts
    assert not any(name.endswith(".signal") for name in sts)


def test_a_wait_after_a_signalled_wait_is_planned_afresh_by_its_own_prepare():
    # a2 cannot go on a's clock: nothing would give a's signal between the two Wait states.
    sts = states(compiled("""
  - {id: a, type: wait, config: {seconds: 1}}
  - {id: a2, type: wait, depends_on: [a], config: {seconds: 1}}
  - {id: b, type: skill, config: {skill: s, input: "B"}}
  - {id: d, type: skill, depends_on: [a, b], config: {skill: s, input: "D"}}
"""))
    assert payload(sts, "a2.prepare")["ended"] == [{"id": "a", "loops": [], "signal": True}]
    assert sts["a"]["Next"] == "a2.prepare"


def test_an_n_shape_of_waits_is_one_prepare_and_one_wait_state_a_step():
    # a -> c, a -> d, b -> d: d starts at max(end of a, end of b) = 3 s after the prepare. In
    # b's branch it waits out b (3 s) and then its own second; no await, no signal.
    sts = states(compiled("""
  - {id: a, type: wait, config: {seconds: 1}}
  - {id: b, type: wait, config: {seconds: 3}}
  - {id: c, type: wait, depends_on: [a], config: {seconds: 3}}
  - {id: d, type: wait, depends_on: [a, b], config: {seconds: 1}}
"""))
    assert {n for n, st in sts.items() if st["Type"] == "Task"} == {"a.prepare"}
    assert payload(sts, "a.prepare")["starts"] == [
        {"id": "c", "seconds": 3, "after": 1, "loops": []},
        {"id": "b", "seconds": 3, "after": 0, "loops": []},
        {"id": "d", "seconds": 1, "after": 3, "loops": []}]
    assert [sts[w]["Seconds"] for w in "abcd"] == [1, 3, 3, 1]
    # With a the longer one, d's Wait also waits out the 2 s by which a ends after b.
    sts = states(compiled("""
  - {id: a, type: wait, config: {seconds: 3}}
  - {id: b, type: wait, config: {seconds: 1}}
  - {id: c, type: wait, depends_on: [a], config: {seconds: 1}}
  - {id: d, type: wait, depends_on: [a, b], config: {seconds: 1}}
"""))
    assert sts["d"]["Seconds"] == 3 and "2 s wait for its dependencies" in sts["d"]["Comment"]
    assert {s["id"]: s["after"] for s in payload(sts, "a.prepare")["starts"]} == {"b": 0, "c": 3, "d": 3}


def test_a_step_that_needs_planned_waits_of_other_branches_waits_out_the_difference():
    sts = states(compiled("""
  - {id: go, type: skill, config: {skill: s, input: "G"}}
  - {id: a, type: wait, depends_on: [go], config: {seconds: 4}}
  - {id: b, type: wait, depends_on: [go], config: {seconds: 1}}
  - {id: c, type: skill, depends_on: [a], config: {skill: s, input: "C"}}
  - {id: d, type: skill, depends_on: [a, b], config: {skill: s, input: "{{ steps.a.output.seconds }}"}}
"""))
    assert payload(sts, "go")["starts"] == [{"id": "a", "seconds": 4, "after": 0, "loops": []},
                                            {"id": "b", "seconds": 1, "after": 0, "loops": []}]
    assert sts["d.after.a"] == {"Type": "Wait", "Seconds": 3, "Next": "d", "Comment": sts["d.after.a"]["Comment"]}
    assert not any(".await." in n for n in sts)
    # d reads a's record where go's task put it, in d's own branch too.
    assert payload(sts, "d")["state"]["steps"]["a.$"] == "$.steps.go.started.a"


def test_a_chain_of_waits_after_a_task_is_planned_by_that_task():
    sts = states(compiled("""
  - {id: fetch, type: skill, config: {skill: s, input: "F"}}
  - {id: w1, type: wait, depends_on: [fetch], config: {seconds: 5}}
  - {id: w2, type: wait, depends_on: [w1], config: {seconds: 3}}
  - {id: w3, type: wait, depends_on: [w2], config: {seconds: 0}}
  - {id: use, type: skill, depends_on: [w3], config: {skill: s, input: "U"}}
"""))
    assert [(s["id"], s["after"]) for s in payload(sts, "fetch")["starts"]] == [("w1", 0), ("w2", 5), ("w3", 8)]
    assert [sts[w]["Type"] for w in ("w1", "w2", "w3")] == ["Wait"] * 3
    assert not any(n.endswith((".prepare", ".done")) for n in sts)
    assert payload(sts, "use")["ended"] == [{"id": "w3", "loops": []}]


def test_a_wait_ending_a_loop_body_goes_back_to_the_check_and_is_not_ended_by_it():
    # The loop's check also runs before the first iteration: it must not end a wait that has not
    # run yet. The wait's record holds its end, so it needs no .done either.
    sts = states(compiled("""
  - {id: again, type: loop, config: {condition: "loop.iteration < 2", max_iterations: 3, body_steps: [pause]}}
  - {id: pause, type: wait, config: {seconds: 1}}
"""))
    assert sts["pause"]["Next"] == "again" and "pause.done" not in sts
    assert "ended" not in payload(sts, "again")


def test_an_approval_after_a_wait_does_not_end_it():
    sts = states(compiled("""
  - {id: pause, type: wait, config: {seconds: 1}}
  - {id: ok, type: approval, depends_on: [pause], config: {prompt: "go?"}}
"""))
    assert sts["pause"]["Next"] == "ok" and "ended" not in payload(sts, "ok")


# ---------------------------------------------------------------- started by the task before it
# A static wait right after a Lambda step's task is started by that task: it records the start
# and returns the wait's record with its own (under its record's "started"), so the wait is the
# Wait state alone: no start task, no Lambda invocation of its own.


def test_the_task_before_a_wait_starts_it_and_the_wait_is_one_state():
    sts = states(compiled("""
  - {id: fetch, type: skill, config: {skill: s, input: "F"}}
  - {id: pause, type: wait, depends_on: [fetch], config: {seconds: 5}}
  - {id: use, type: skill, depends_on: [pause], config: {skill: s, input: "{{ steps.pause.output.until }}"}}
"""))
    assert set(sts) == {"Run.start", "fetch", "fetch.failed", "pause", "use", "use.failed"}
    assert payload(sts, "fetch")["starts"] == [{"id": "pause", "seconds": 5, "after": 0, "loops": []}]
    assert sts["fetch"]["ResultSelector"]["started.$"] == "$.Payload.started"
    assert sts["fetch"]["ResultPath"] == "$.steps.fetch" and sts["fetch"]["Next"] == "pause"
    assert sts["pause"]["Type"] == "Wait" and sts["pause"]["Seconds"] == 5 and sts["pause"]["Next"] == "use"
    # The step after it reads (and ends) the record where the starting task put it.
    assert payload(sts, "use")["ended"] == [{"id": "pause", "loops": []}]
    assert payload(sts, "use")["state"]["steps"] == {"pause.$": "$.steps.fetch.started.pause"}


def test_a_started_wait_signalled_with_nothing_after_it_is_ended_by_a_done_task_that_adds_no_copy():
    # Chains [u, c], [w, e], [x, p]: p ends its branch, and c and e, in other branches on other
    # clocks, wait for it through a signal, which only a task can give.
    sts = states(compiled("""
  - {id: u, type: skill, config: {skill: s, input: "U"}}
  - {id: w, type: skill, config: {skill: s, input: "W"}}
  - {id: x, type: skill, config: {skill: s, input: "X"}}
  - {id: p, type: wait, depends_on: [x], config: {seconds: 5}}
  - {id: c, type: skill, depends_on: [u, p], config: {skill: s, input: "C"}}
  - {id: e, type: skill, depends_on: [w, p], config: {skill: s, input: "E"}}
"""))
    assert "p.prepare" not in sts and sts["p"]["Next"] == "p.done"
    done = sts["p.done"]
    assert done["ResultPath"] is None and "ResultSelector" not in done
    assert payload(sts, "p.done")["step"]["signal"] is True
    assert payload(sts, "p.done")["state"]["steps"]["p.$"].endswith("x.started.p")
    assert "c.await.p" in sts and "e.await.p" in sts


def test_only_a_lambda_step_task_that_the_flow_leaves_by_starts_a_wait():
    sts = states(compiled("""
  - {id: risky, type: skill, continue_on_error: true, config: {skill: s, input: "R"}}
  - {id: p1, type: wait, depends_on: [risky], config: {seconds: 1}}
  - {id: ok, type: approval, depends_on: [p1], config: {prompt: "go?"}}
  - {id: p2, type: wait, depends_on: [ok], config: {seconds: 1}}
  - {id: sub, type: sub_workflow, depends_on: [p2], config: {workflow_name: other}}
  - {id: p3, type: wait, depends_on: [sub], config: {seconds: 1}}
  - {id: each, type: skill, for_each: "{{ trigger.items }}", depends_on: [p3], config: {skill: s, input: "E"}}
  - {id: p4, type: wait, depends_on: [each], config: {seconds: 1}}
  - {id: last, type: skill, depends_on: [p4], config: {skill: s, input: "L"}}
"""))
    # continue_on_error leaves through a Pass; an approval's result is the decision; a
    # sub-workflow and a for_each step end with their .done task: each wait keeps its start task.
    for wait in ("p1", "p2", "p3", "p4"):
        assert payload(sts, f"{wait}.prepare")["op"] == "start", wait
    assert not any("starts" in st.get("Parameters", {}).get("Payload", {}) for st in sts.values()
                   if isinstance(st.get("Parameters"), dict))


def test_a_wait_in_a_branch_is_read_under_its_starter_there_and_after_the_merge():
    # a and b run side by side; b starts wb in its branch; d (needs a and wb) comes after them.
    sts = states(compiled("""
  - {id: a, type: skill, config: {skill: s, input: "A"}}
  - {id: b, type: skill, config: {skill: s, input: "B"}}
  - {id: wb, type: wait, depends_on: [b], config: {seconds: 1}}
  - {id: d, type: wait, depends_on: [a, wb], config: {seconds: 1}}
  - {id: e, type: skill, depends_on: [d], config: {skill: s, input: "{{ steps.wb.output.seconds }}"}}
"""))
    branch = next(st for st in sts.values() if st["Type"] == "Parallel")["Branches"][1]["States"]
    assert payload(branch, "b")["starts"] == [{"id": "wb", "seconds": 1, "after": 0, "loops": []}]
    assert branch["b"]["ResultPath"] == "$.b1.b"
    assert branch["wb"]["End"] is True and "wb.done" not in branch
    # After the Parallel the branch's records are merged into $.steps, b's with what it carries.
    assert payload(sts, "d.prepare")["state"]["steps"]["wb.$"] == "$.steps.b.started.wb"
    assert payload(sts, "e")["state"]["steps"]["wb.$"] == "$.steps.b.started.wb"
    # d comes right after a Parallel, not a task: its own start task starts it.
    assert payload(sts, "d.prepare")["op"] == "start"


def test_a_wait_in_a_loop_body_after_a_task_is_started_with_the_loops_it_is_in():
    sts = states(compiled("""
  - {id: again, type: loop, config: {condition: "loop.iteration < 2", max_iterations: 3, body_steps: [draft, pause]}}
  - {id: draft, type: skill, config: {skill: s, input: "D"}}
  - {id: pause, type: wait, depends_on: [draft], config: {seconds: 1}}
"""))
    assert payload(sts, "draft")["starts"] == [{"id": "pause", "seconds": 1, "after": 0, "loops": ["again"]}]
    assert payload(sts, "draft")["state"]["steps"].get("again.$")   # the iteration number it needs
    assert sts["pause"]["Next"] == "again"


def test_flat_records_puts_started_waits_beside_the_others_in_order():
    from boternity.compiler.records import flat_records

    carried = {"fetch": {"status": "completed", "output": 1,
                         "started": {"pause": {"status": "completed", "output": {"seconds": 5}}}},
               "use": {"status": "completed", "output": 2}}
    flat = flat_records(carried)
    assert list(flat) == ["fetch", "pause", "use"]
    assert flat["fetch"] == {"status": "completed", "output": 1}
    assert flat["pause"] == {"status": "completed", "output": {"seconds": 5}}
    assert carried["fetch"]["started"]   # the state it read is not changed
    # A record also written flat keeps its place; nothing to lift is no copy; non-mappings pass.
    both = {**carried, "pause": {"status": "completed", "output": {"seconds": 5, "flat": True}}}
    assert flat_records(both)["pause"]["output"]["flat"] is True
    plain = {"a": {"status": "completed", "output": None}}
    assert flat_records(plain) is plain and flat_records(None) is None
