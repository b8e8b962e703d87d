"""A static wait (fixed seconds, nothing can skip it) runs as a start task and a Wait state, and
the task after it ends its record: the records the API and CLI show are still the whole truth."""

from __future__ import annotations

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


def test_a_wait_awaited_by_another_branch_is_signalled_by_the_task_after_it(engine):
    # a -> c, a -> d, b -> d: d (in b's branch) waits for a; c's start task ends a and signals it.
    result = engine.run(wf([wait("a", 1), wait("b", 0), wait("c", 0, depends_on=["a"]),
                            wait("d", 0, depends_on=["a", "b"])]), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    names = entered(engine, result)
    assert "a.done" not in names and not any(n.endswith(".signal") for n in names)
    recs = records(engine, result)
    assert {s: r["status"] for s, r in recs.items()} == dict.fromkeys("abcd", "completed")
    assert at(recs["a"]["ended_at"]) <= at(recs["d"]["started_at"])
    assert at(recs["a"]["ended_at"]) <= at(recs["c"]["started_at"])


def test_a_wait_last_in_the_run_is_ended_by_its_done_task(engine):
    result = engine.run(wf([skill("work"), wait("pause", 0, depends_on=["work"])]), timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    assert entered(engine, result)[-1] == "pause.done"
    assert records(engine, result)["pause"]["status"] == "completed"
