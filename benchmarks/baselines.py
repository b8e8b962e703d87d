"""The two baselines, built inside the benchmark, as ASL the simulator (and moto) can run.

* **layered**: Kedro's Step Functions mapping. ``Pipeline.grouped_nodes`` is a toposort into
  groups: repeatedly take every node whose dependencies are all in earlier groups (Kahn's
  algorithm, a group at a time; Kedro sorts each group by name). Each group becomes one Parallel
  state with one branch per node, and the groups are chained in sequence.
* **waves**: the reference implementation's executor. depth(step) = 0 without dependencies, else
  1 + the largest depth of its dependencies (longest path); wave k = the steps of depth k in
  definition order; every step of a wave runs at once and wave k+1 starts only when all of wave k
  has finished (a barrier).

Both group a step by its longest-path depth, so on every DAG they hold the same steps in the
same groups (only the order inside a group differs) and have the same makespan; the benchmark
keeps both, computed independently, and reports that they agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.dags import Dag, depths

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

Fragment = tuple[str, dict[str, dict[str, Any]]]   # (StartAt, States) of one step's branch


def kedro_groups(dag: Dag) -> list[list[str]]:
    """Kedro's ``grouped_nodes``: toposort groups, each sorted by name."""
    remaining = {s: set(dag.deps[s]) for s in dag.steps}
    groups: list[list[str]] = []
    while remaining:
        ready = sorted(s for s, ds in remaining.items() if not ds)
        if not ready:
            raise ValueError(f"{dag.name}: cycle")
        groups.append(ready)
        for s in ready:
            del remaining[s]
        for ds in remaining.values():
            ds.difference_update(ready)
    return groups


def reference_waves(dag: Dag) -> list[list[str]]:
    """The reference executor's waves: by longest-path depth, definition order inside a wave."""
    d = depths(dag)
    waves: list[list[str]] = [[] for _ in range(max(d.values(), default=-1) + 1)]
    for s in dag.steps:
        waves[d[s]].append(s)
    return waves


def wait_fragment(durations: Mapping[str, int]) -> Callable[[str], Fragment]:
    """A step as a single Wait state of its duration (what the simulator needs)."""
    def build(step: str) -> Fragment:
        return step, {step: {"Type": "Wait", "Seconds": int(durations[step]), "End": True}}

    return build


def grouped_asl(groups: list[list[str]], fragment: Callable[[str], Fragment], *,
                start: dict[str, Any] | None = None, label: str = "Group") -> dict[str, Any]:
    """``start`` Pass → one Parallel per group (one branch per step) → Succeed.

    Each group is a Parallel state even when it has one step, as in Kedro's CDK script. The
    Parallel's result is discarded (``ResultPath: null``): Kedro passes data through its catalog
    (S3), never through the state.
    """
    states: dict[str, dict[str, Any]] = {}
    states["Start"] = dict(start) if start is not None else {"Type": "Pass"}
    prev = "Start"
    for i, group in enumerate(groups, start=1):
        name = f"{label} {i}"
        branches = []
        for step in group:
            first, st = fragment(step)
            branches.append({"StartAt": first, "States": st})
        states[prev]["Next"] = name
        states[name] = {"Type": "Parallel", "Branches": branches, "ResultPath": None}
        prev = name
    states[prev]["Next"] = "Done"
    states["Done"] = {"Type": "Succeed"}
    if start is not None:
        states["Done"]["OutputPath"] = "$.steps"   # as ours: the run's output is the step records
    return {"Comment": f"{label}s of Parallel states (baseline)", "StartAt": "Start", "States": states}


def layered_asl(dag: Dag, fragment: Callable[[str], Fragment] | None = None, **kw: Any) -> dict[str, Any]:
    return grouped_asl(kedro_groups(dag), fragment or wait_fragment(dag.durations), label="Group", **kw)


def waves_asl(dag: Dag, fragment: Callable[[str], Fragment] | None = None, **kw: Any) -> dict[str, Any]:
    return grouped_asl(reference_waves(dag), fragment or wait_fragment(dag.durations), label="Wave", **kw)


def same_groups(a: list[list[str]], b: list[list[str]]) -> bool:
    return [sorted(g) for g in a] == [sorted(g) for g in b]
