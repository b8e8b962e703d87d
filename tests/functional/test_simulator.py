"""The ASL timing simulator (benchmarks/aslsim.py) against real moto runs, and on its own.

The makespan benchmark trusts the simulator, so it must agree with moto's interpreter: compile
small DAGs of ``wait`` steps with integer seconds, run them on the local engine, measure the real
makespan from the execution history, and compare. The 0.5 s tolerance is about the simulator's
correctness (moto adds tens of milliseconds per Lambda task), not a performance target.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import aslsim, baselines, dags, motorun
from boternity.compiler import compile_details

TOLERANCE_S = 0.5
SMALL = {d.name: d for d in dags.small_examples()}


@pytest.fixture(scope="module")
def warm_engine():
    """One engine for the module, warmed up (handler imports, clients) before anything is timed."""
    with motorun.local_engine() as eng:
        n = SMALL["n-shape"]
        warm = motorun.run_workflow(eng, dags.workflow(n, seconds={s: 0 for s in n.steps}, name="warm-up"),
                                    timeout=30)
        assert warm.status == "SUCCEEDED"
        yield eng


@pytest.mark.parametrize("name", sorted(SMALL))
def test_simulated_makespan_matches_moto(warm_engine: Any, name: str) -> None:
    dag = SMALL[name]
    wf = dags.workflow(dag)
    definition = compile_details(wf, targets=warm_engine.targets).definition
    sim = aslsim.simulate(definition, dag.durations)
    assert sim.makespan == dags.critical_path(dag)
    # moto adds the latency of every Lambda task on the critical path (tens of ms; hundreds on a
    # busy machine). The simulator takes the run's median helper-task latency as ``task_seconds``,
    # so the comparison is about structure, not machine load; a simulator error would be
    # systematic, so one re-run absorbs a noisy measurement.
    measured: list[tuple[float, float]] = []
    for _ in range(2):
        run = motorun.run_workflow(warm_engine, wf, timeout=30)
        assert run.status == "SUCCEEDED"
        latency = motorun.helper_task_seconds(run.events, dag.steps)
        expected = aslsim.simulate(definition, dag.durations, task_seconds=latency).makespan
        measured.append((motorun.real_makespan(run.events, dag.steps), expected))
        if abs(measured[-1][0] - expected) <= TOLERANCE_S:
            break
    real, expected = measured[-1]
    assert abs(real - expected) <= TOLERANCE_S, f"{name}: (moto, simulated) {measured}; at 0 latency {sim.makespan} s"


def test_simulated_layered_baseline_matches_moto(warm_engine: Any) -> None:
    """The baseline machines go through the same simulator: check one in moto too (N shape: 6 s)."""
    dag = SMALL["n-shape"]
    definition = baselines.layered_asl(dag)
    sim = aslsim.simulate(definition, dag.durations)
    assert sim.makespan == 6
    run = motorun.run_definition(warm_engine, definition, timeout=30)
    assert run.status == "SUCCEEDED"
    real = motorun.real_makespan(run.events, dag.steps)
    assert abs(real - sim.makespan) <= TOLERANCE_S, f"moto {real:.3f} s, simulated {sim.makespan} s"


def test_transition_count_matches_moto(warm_engine: Any) -> None:
    """The simulator walks the happy path: it enters exactly the states moto enters."""
    dag = SMALL["crown-3"]
    wf = dags.workflow(dag, seconds={s: 0 for s in dag.steps}, name="crown-zero")
    sim = aslsim.simulate(compile_details(wf, targets=warm_engine.targets).definition, {s: 0 for s in dag.steps})
    run = motorun.run_workflow(warm_engine, wf, timeout=30)
    assert run.status == "SUCCEEDED"
    assert motorun.count(run.events, dag.steps).transitions == sim.transitions


# ----------------------------------------------------------------------------- the simulator alone


def _wait(seconds: int, nxt: str | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"Type": "Wait", "Seconds": seconds}
    if nxt:
        st["Next"] = nxt
    else:
        st["End"] = True
    return st


def _signal(step: str, nxt: str | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                          "Parameters": {"Payload": {"op": "signal", "step": {"id": step}}}}
    if nxt:
        st["Next"] = nxt
    else:
        st["End"] = True
    return st


def _await(step: str, nxt: str | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                          "Parameters": {"Payload": {"op": "await", "step": {"id": step}}}}
    if nxt:
        st["Next"] = nxt
    else:
        st["End"] = True
    return st


def test_cross_branch_wait_is_exact() -> None:
    # Branch 1: a (1 s) then c (3 s). Branch 2: b (3 s), then d (1 s) once a has signalled.
    machine = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "a", "States": {"a": _wait(0, "a.signal"), "a.signal": _signal("a", "c"), "c": _wait(0)}},
        {"StartAt": "b", "States": {"b": _wait(0, "d.await.a"), "d.await.a": _await("a", "d"), "d": _wait(0)}},
    ]}}}
    r = aslsim.simulate(machine, {"a": 1, "b": 3, "c": 3, "d": 1})
    assert r.makespan == 4
    assert r.signals == {"a": 1}
    # a late producer holds the consumer back
    r = aslsim.simulate(machine, {"a": 5, "b": 1, "c": 1, "d": 1})
    assert r.makespan == 6 and r.step_start["d"] == 5


def test_deadlock_and_missing_signal_are_reported() -> None:
    cycle = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "x.await.y", "States": {"x.await.y": _await("y", "x"), "x": _wait(0, "x.signal"),
                                            "x.signal": _signal("x")}},
        {"StartAt": "y.await.x", "States": {"y.await.x": _await("x", "y"), "y": _wait(0, "y.signal"),
                                            "y.signal": _signal("y")}},
    ]}}}
    with pytest.raises(aslsim.SimulationError, match="deadlock"):
        aslsim.simulate(cycle, {"x": 1, "y": 1})
    never = {"StartAt": "x.await.z", "States": {"x.await.z": _await("z", "x"), "x": _wait(0)}}
    with pytest.raises(aslsim.SimulationError, match="never given"):
        aslsim.simulate(never, {"x": 1})


def test_baselines_lose_time_on_the_n_shape() -> None:
    dag = SMALL["n-shape"]
    assert baselines.kedro_groups(dag) == [["a", "b"], ["c", "d"]]
    assert baselines.reference_waves(dag) == [["a", "b"], ["c", "d"]]
    assert aslsim.simulate(baselines.layered_asl(dag), dag.durations).makespan == 6
    assert aslsim.simulate(baselines.waves_asl(dag), dag.durations).makespan == 6
    assert dags.critical_path(dag) == 4
