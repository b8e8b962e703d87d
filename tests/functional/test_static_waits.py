"""A static wait (fixed seconds, nothing can skip it) is planned ahead (compiler/waits.py): the task
before it writes its record whole, start and end, and it runs as its Wait state alone. The records
the API and CLI show are still the whole truth: read by the clock, and settled if the run stops."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from boternity.model import parse_workflow
from boternity.validate import check_workflow


def wf(steps: list[dict[str, Any]]) -> Any:
    w = parse_workflow({"name": "static-waits", "steps": steps})
    check_workflow(w)
    return w


def skill(step_id: str, **kw: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "skill", "config": {"skill": "echo-prompt", "input": step_id}, **kw}


def wait(step_id: str, seconds: int, **kw: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "wait", "config": {"seconds": seconds}, **kw}


def records(engine: Any, result: Any) -> dict[str, dict[str, Any]]:
    return {r["step_id"]: r for r in engine.runs.steps(result.execution_arn.rsplit(":", 1)[-1])}


def at(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def entered(engine: Any, result: Any) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in engine.history(result.execution_arn)
            if e["type"].endswith("StateEntered")]


def test_the_next_step_ends_the_wait_record_with_its_true_times(engine):
    result = engine.run(wf([wait("pause", 1), skill("work", depends_on=["pause"])]), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert entered(engine, result) == ["Run.start", "pause.prepare", "pause", "work"]
    recs = records(engine, result)
    pause, work = recs["pause"], recs["work"]
    assert pause["status"] == "completed" and pause["step_type"] == "wait"
    assert set(pause["output"]) == {"until", "seconds"} and pause["output"]["seconds"] == 1
    # The Wait lasted its second, and the step after it started once it had ended.
    assert (at(pause["ended_at"]) - at(pause["started_at"])).total_seconds() >= 1.0
    assert at(pause["ended_at"]) <= at(work["started_at"])
    # The run's output (what `boternity run --json` prints) holds the same record.
    assert result.output["pause"] == {"status": "completed", "output": pause["output"]}


def test_an_n_shape_of_waits_is_planned_by_one_task_with_exact_dataflow(engine):
    # a -> c, a -> d, b -> d: a's prepare plans all four; d, in b's branch, waits out a's end
    # in its own Wait. No await, no signal, no .done.
    result = engine.run(wf([wait("a", 2), wait("b", 1), wait("c", 0, depends_on=["a"]),
                            wait("d", 1, depends_on=["a", "b"])]), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    names = entered(engine, result)
    assert sorted(n for n in names if not n.startswith("Parallel")) == ["Run.start", "a", "a.prepare", "b", "c", "d"]
    recs = records(engine, result)
    assert {s: r["status"] for s, r in recs.items()} == dict.fromkeys("abcd", "completed")
    assert recs["a"]["started_at"] == recs["b"]["started_at"]
    assert at(recs["c"]["started_at"]) == at(recs["a"]["ended_at"])
    assert at(recs["d"]["started_at"]) == max(at(recs["a"]["ended_at"]), at(recs["b"]["ended_at"]))
    for sid, secs in (("a", 2), ("b", 1), ("c", 0), ("d", 1)):
        assert (at(recs[sid]["ended_at"]) - at(recs[sid]["started_at"])).total_seconds() == secs
    # The Wait states took as long as the plan: the run lasted the critical path (3 s), not 4.
    d = engine.sfn.describe_execution(executionArn=result.execution_arn)
    assert 3.0 <= (d["stopDate"] - d["startDate"]).total_seconds() < 3.9
    assert at(recs["d"]["ended_at"]) <= d["stopDate"]


def test_a_planned_wait_another_branch_awaits_is_signalled_by_the_task_after_it(engine):
    # d (after b, a skill: another clock) needs a: c, the task after a, ends a and signals it.
    result = engine.run(wf([wait("a", 1), skill("b"), skill("c", depends_on=["a"]),
                            skill("d", depends_on=["a", "b"])]), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    names = entered(engine, result)
    assert "d.await.a" in names and "a.done" not in names
    recs = records(engine, result)
    assert at(recs["a"]["ended_at"]) <= at(recs["d"]["started_at"])
    assert at(recs["a"]["ended_at"]) <= at(recs["c"]["started_at"])


def test_a_planned_wait_shows_by_the_clock_not_started_running_then_completed(engine):
    run_id, arn = engine.start(wf([skill("go"), wait("w1", 2, depends_on=["go"]),
                                   wait("w2", 2, depends_on=["w1"])]))
    shown: list[tuple[str, ...]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        recs = {r["step_id"]: r["status"] for r in engine.runs.steps(run_id)}
        row = tuple(recs.get(s, "-") for s in ("w1", "w2"))
        if not shown or shown[-1] != row:
            shown.append(row)
        if row == ("completed", "completed"):
            break
        time.sleep(0.1)
    # w2 is not a step of the run before w1 ends, though its record was written with w1's.
    assert shown[-1] == ("completed", "completed")
    assert ("running", "-") in shown and ("completed", "running") in shown
    assert all(row != ("running", "running") and row[1] != "completed" or row[0] == "completed" for row in shown)
    assert engine.wait(run_id, arn, timeout=60).status == "SUCCEEDED"


def test_a_cancel_settles_planned_waits_ended_cut_and_never_started(engine):
    run_id, arn = engine.start(wf([skill("go"), wait("w1", 1, depends_on=["go"]),
                                   wait("w2", 60, depends_on=["w1"]), wait("w3", 5, depends_on=["w2"])]))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if {r["step_id"]: r["status"] for r in engine.runs.steps(run_id)}.get("w2") == "running":
            break
        time.sleep(0.1)
    engine.sfn.stop_execution(executionArn=arn, error="Test.Cancel", cause="cancelled by the test")
    result = engine.wait(run_id, arn, timeout=60)
    assert result.status == "ABORTED"
    stored = {r["step_id"]: r for r in engine.runs.steps(run_id, as_stored=True)}
    stop = engine.sfn.describe_execution(executionArn=arn)["stopDate"]
    # w1 had ended: completed at its planned end; w2 was cut: aborted at the stop; w3 never
    # started: no record at all.
    assert stored["w1"]["status"] == "completed" and stored["w1"]["ended_at"] == stored["w1"]["ends_at"]
    assert stored["w2"]["status"] == "aborted"
    assert abs((at(stored["w2"]["ended_at"]) - stop).total_seconds()) < 0.002
    assert "w3" not in stored
    assert {r["step_id"] for r in engine.runs.steps(run_id)} == {"go", "w1", "w2"}


def test_a_wait_last_in_the_run_ends_when_it_was_planned_to(engine):
    result = engine.run(wf([wait("first", 0), wait("pause", 1, depends_on=["first"])]), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    # first's prepare plans pause too: one task for both.
    assert entered(engine, result) == ["Run.start", "first.prepare", "first", "pause"]
    pause = records(engine, result)["pause"]
    assert pause["status"] == "completed" and pause["output"]["seconds"] == 1
    assert pause["ended_at"] == pause["ends_at"] and at(pause["ended_at"]) == at(pause["output"]["until"])
    assert (at(pause["ended_at"]) - at(pause["started_at"])).total_seconds() == 1.0
    stop = engine.sfn.describe_execution(executionArn=result.execution_arn)["stopDate"]
    assert at(pause["ended_at"]) <= stop


# ------------------------------------------------------------ started by the step before it


def test_a_wait_after_a_step_is_one_wait_state_and_its_record_is_the_whole_truth(engine):
    steps = [skill("fetch"), wait("pause", 1, depends_on=["fetch"]),
             {"id": "use", "type": "skill", "depends_on": ["pause"],
              "config": {"skill": "echo-prompt", "input": "{{ steps.pause.output.seconds }}s until {{ steps.pause.output.until }}"}}]
    result = engine.run(wf(steps), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    # No start task, no .done task: the wait costs its Wait state and no Lambda invocation.
    assert entered(engine, result) == ["Run.start", "fetch", "pause", "use"]
    recs = records(engine, result)
    fetch, pause, use = recs["fetch"], recs["pause"], recs["use"]
    assert pause["status"] == "completed" and pause["step_type"] == "wait"
    assert set(pause["output"]) == {"until", "seconds"} and pause["output"]["seconds"] == 1
    assert at(fetch["ended_at"]) <= at(pause["started_at"])
    assert (at(pause["ended_at"]) - at(pause["started_at"])).total_seconds() >= 1.0
    assert at(pause["ended_at"]) <= at(use["started_at"])
    # The step after it read its record; the run's output holds it beside the others, in order.
    assert use["output"]["output"] == f"Handled: 1s until {pause['output']['until']}\n"
    assert list(result.output) == ["fetch", "pause", "use"]
    assert result.output["pause"] == {"status": "completed", "output": pause["output"]}
    assert result.output["fetch"] == {"status": "completed", "output": fetch["output"]}
    # ...and so does the run record the API and console read.
    assert engine.runs.get_run(result.run_id)["output"] == result.output


def test_a_started_wait_last_in_the_run_costs_its_wait_state_alone(engine):
    result = engine.run(wf([skill("work"), wait("pause", 0, depends_on=["work"])]), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert entered(engine, result) == ["Run.start", "work", "pause"]
    recs = records(engine, result)
    assert recs["pause"]["status"] == "completed" and recs["pause"]["output"]["seconds"] == 0
    assert result.output["pause"] == {"status": "completed", "output": recs["pause"]["output"]}


def test_a_started_wait_in_a_loop_is_recorded_per_iteration_and_read_after_the_loop(engine):
    steps = [
        {"id": "again", "type": "loop",
         "config": {"condition": "loop.iteration < 2", "max_iterations": 3, "body_steps": ["draft", "pause"]}},
        skill("draft"), wait("pause", 0, depends_on=["draft"]),
        # After the loop its body's records are not certainly in the state (it may run zero
        # times): this step's function gets the whole state, where pause sits under draft's record.
        {"id": "after", "type": "skill", "depends_on": ["again"],
         "config": {"skill": "echo-prompt", "input": "{{ steps.pause.status }} {{ steps.pause.output.seconds }}"}},
    ]
    result = engine.run(wf(steps), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    rid = result.execution_arn.rsplit(":", 1)[-1]
    def iterations(step_id: str) -> list[tuple[str, str]]:
        return sorted((str(r.get("iteration") or ""), r["status"]) for r in engine.runs.steps(rid)
                      if r.get("step_id") == step_id)

    # One record per iteration (and the step's latest), as for the step that started it.
    assert iterations("pause") == iterations("draft") == [("", "completed"), ("1", "completed"), ("2", "completed")]
    assert result.output["after"]["output"]["output"] == "Handled: completed 0\n"
    assert "pause.prepare" not in entered(engine, result)


def test_a_child_run_gives_its_parent_the_started_waits_records_beside_the_others(engine):
    engine.deploy(wf([skill("fetch"), wait("pause", 0, depends_on=["fetch"]),
                      skill("use", depends_on=["pause"])]).model_copy(update={"name": "child-waits"}))
    parent = parse_workflow({"name": "parent-waits", "steps": [
        {"id": "child", "type": "sub_workflow", "config": {"workflow_name": "child-waits"}},
        {"id": "read", "type": "skill", "depends_on": ["child"],
         "config": {"skill": "echo-prompt", "input": "{{ steps.child.output.pause.output.seconds }}"}}]})
    check_workflow(parent)
    result = engine.run(parent, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    child = result.output["child"]["output"]
    assert list(child) == ["fetch", "pause", "use"]
    assert child["fetch"] == {"status": "completed", "output": child["fetch"]["output"]}
    assert child["pause"]["status"] == "completed" and child["pause"]["output"]["seconds"] == 0
    assert result.output["read"]["output"]["output"] == "Handled: 0\n"


def test_a_started_wait_survives_the_merge_with_another_branchs_copy_of_its_starter(engine):
    # s1 starts s2 in its branch; s5, in another branch, awaits s1 and so holds a copy of s1's
    # record. After the Parallel the merged records keep one s1: whichever it is, it carries s2.
    # (Found by the random-DAG property test: the copy, signalled without s2, won the merge and
    # s2's record was lost from the run's output.)
    steps = [skill("s0"), skill("s1"), wait("s2", 0, depends_on=["s1"]),
             skill("s3", condition="trigger.flag"), skill("s4"),
             skill("s5", depends_on=["s1", "s3"], condition="trigger.flag")]
    result = engine.run(wf(steps), {"flag": False}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert sorted(result.output) == ["s0", "s1", "s2", "s3", "s4", "s5"]
    assert result.output["s2"]["status"] == "completed" and result.output["s2"]["output"]["seconds"] == 0
    assert any(n.startswith("s5.await.s1") for n in entered(engine, result))


def test_the_follow_up_example_runs_its_wait_as_one_state(engine):
    from boternity.validate import load_workflow
    from tests.conftest import EXAMPLES

    result = engine.run(load_workflow(EXAMPLES / "follow-up.yaml").workflow, {"who": "Ada"}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert entered(engine, result) == ["Run.start", "draft", "pause", "follow-up"]
    until = result.output["pause"]["output"]["until"]
    assert result.output["follow-up"]["output"]["output"] == (
        f"Handled: Follow-up for Ada, 2 s after the reminder (at {until})\n")


def test_a_planned_waits_records_survive_the_merge_with_a_signalled_copy_of_their_carrier(engine):
    # s0's prepare plans s1, s3 and s5 (their records sit under s0's); s7, in s1's branch, awaits
    # s0, whose signal brings a copy of s0's record into that branch. After the Parallel the copy
    # may win the merge: it must carry the records s0 started. (Found by the random-DAG property
    # test: the copy came without them and s1, s3 and s5 were lost from the run's output.)
    steps = [wait("s0", 0), wait("s1", 0), wait("s2", 0, depends_on=["s1"]), wait("s3", 0),
             skill("s4", depends_on=["s1", "s2", "s3"]), wait("s5", 0),
             skill("s6", depends_on=["s0", "s1", "s4"]), skill("s7", depends_on=["s0", "s2"])]
    result = engine.run(wf(steps), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert sorted(result.output) == [f"s{i}" for i in range(8)]
    assert all(r["status"] == "completed" for r in result.output.values())
    assert "s7.await.s0" in entered(engine, result)
