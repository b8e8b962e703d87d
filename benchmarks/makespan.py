"""Section 1: makespan of our compiled state machines against the critical path and two baselines.

For every DAG of the corpus: the critical path (lower bound); our compiled machine, twice (wait
steps, whose producers signal from a ``<id>.signal`` task, and skill steps, whose Lambda signals
itself); Kedro's layered Parallels; the reference's waves. All four machines go through the same
ASL timing simulator (:mod:`benchmarks.aslsim`), which tests/functional/test_simulator.py checks
against real moto runs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from benchmarks import baselines
from benchmarks.aslsim import simulate
from benchmarks.dags import DEFAULT_SEED, Dag, corpus, critical_path, is_series_parallel, workflow
from benchmarks.report import summary, table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def measure_dag(dag: Dag) -> dict[str, Any]:
    from boternity.compiler import TaskTargets, compile_details

    targets = TaskTargets.local()
    cp = critical_path(dag)
    ours = simulate(compile_details(workflow(dag, kind="wait"), targets=targets).definition, dag.durations)
    ours_task = simulate(compile_details(workflow(dag, kind="skill"), targets=targets).definition, dag.durations)
    layered = simulate(baselines.layered_asl(dag), dag.durations)
    waves = simulate(baselines.waves_asl(dag), dag.durations)
    violations = ours.dataflow_violations(dag.deps) + ours_task.dataflow_violations(dag.deps)
    return {
        "name": dag.name, "family": dag.family, "steps": dag.size, "edges": dag.edges,
        "series_parallel": is_series_parallel(dag),
        "critical": cp, "ours": ours.makespan, "ours_task": ours_task.makespan,
        "layered": layered.makespan, "waves": waves.makespan,
        "ours_vs_critical": round(ours.makespan / cp, 4),
        "ours_task_vs_critical": round(ours_task.makespan / cp, 4),
        "layered_vs_critical": round(layered.makespan / cp, 4),
        "waves_vs_critical": round(waves.makespan / cp, 4),
        "same_groups": baselines.same_groups(baselines.kedro_groups(dag), baselines.reference_waves(dag)),
        "signals": len(ours.signals), "sim_rounds": ours.rounds,
        "dataflow_violations": [list(v) for v in violations],
    }


def run(dags: Sequence[Dag] | None = None, *, seed: int = DEFAULT_SEED,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    dag_list = list(dags) if dags is not None else corpus(seed)
    rows = [measure_dag(d) for d in dag_list]
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        families[r["family"]].append(r)

    by_family = {}
    for fam, rs in families.items():
        by_family[fam] = {
            "dags": len(rs),
            "steps": [min(r["steps"] for r in rs), max(r["steps"] for r in rs)],
            "ours_mean": summary([r["ours_vs_critical"] for r in rs])["mean"],
            "ours_max": summary([r["ours_vs_critical"] for r in rs])["max"],
            "layered_mean": summary([r["layered_vs_critical"] for r in rs])["mean"],
            "layered_max": summary([r["layered_vs_critical"] for r in rs])["max"],
            "waves_mean": summary([r["waves_vs_critical"] for r in rs])["mean"],
        }
    worst_baseline = sorted(rows, key=lambda r: (-r["layered_vs_critical"], r["name"]))[:5]
    worst_ours = sorted(rows, key=lambda r: (-max(r["ours_vs_critical"], r["ours_task_vs_critical"]), r["name"]))[:5]
    result: dict[str, Any] = {
        "method": "ASL timing simulator (benchmarks/aslsim.py) over compiled and baseline ASL; "
                  "layered = Kedro grouped_nodes, one Parallel per group; waves = the reference's "
                  "longest-path-depth waves with a barrier after each",
        "corpus": {"seed": seed, "dags": len(rows), "families": dict(Counter(r["family"] for r in rows)),
                   "non_series_parallel": sum(not r["series_parallel"] for r in rows),
                   "steps": [min(r["steps"] for r in rows), max(r["steps"] for r in rows)] if rows else None},
        "ours_vs_critical": summary([r["ours_vs_critical"] for r in rows]),
        "ours_task_vs_critical": summary([r["ours_task_vs_critical"] for r in rows]),
        "layered_vs_critical": summary([r["layered_vs_critical"] for r in rows]),
        "waves_vs_critical": summary([r["waves_vs_critical"] for r in rows]),
        "ours_at_critical": sum(r["ours_vs_critical"] == 1.0 and r["ours_task_vs_critical"] == 1.0 for r in rows),
        "layered_at_critical": sum(r["layered_vs_critical"] == 1.0 for r in rows),
        "layered_equals_waves": sum(r["layered"] == r["waves"] for r in rows),
        "same_groups": sum(r["same_groups"] for r in rows),
        "dataflow_violations": sum(len(r["dataflow_violations"]) for r in rows),
        "by_family": by_family,
        "worst_for_baselines": [_brief(r) for r in worst_baseline],
        "worst_for_ours": [_brief(r) for r in worst_ours],
        "dags": rows,
    }
    log(_render(result))
    return result


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "family", "steps", "edges", "critical", "ours", "ours_task", "layered", "waves",
            "ours_vs_critical", "layered_vs_critical", "waves_vs_critical")
    return {k: r[k] for k in keys}


def _render(res: dict[str, Any]) -> str:
    out = [f"1. Makespan: {res['corpus']['dags']} DAGs (seed {res['corpus']['seed']}, "
           f"{res['corpus']['non_series_parallel']} not series-parallel), makespan / critical path"]
    fam_rows = []
    for fam, f in sorted(res["by_family"].items()):
        fam_rows.append([fam, f["dags"], f"{f['steps'][0]}-{f['steps'][1]}", f["ours_mean"], f["ours_max"],
                         f["layered_mean"], f["layered_max"], f["waves_mean"]])
    total = [res["ours_vs_critical"], res["layered_vs_critical"], res["waves_vs_critical"]]
    fam_rows.append(["all", res["corpus"]["dags"], "-", total[0]["mean"], total[0]["max"], total[1]["mean"],
                     total[1]["max"], total[2]["mean"]])
    out.append(table(["family", "dags", "steps", "ours mean", "ours max", "layered mean", "layered max",
                      "waves mean"], fam_rows, digits=3))
    out.append("")
    out.append(table(["worst for the baselines", "steps", "critical", "ours", "layered", "waves", "layered/cp"],
                     [[r["name"], r["steps"], r["critical"], r["ours"], r["layered"], r["waves"],
                       r["layered_vs_critical"]] for r in res["worst_for_baselines"]], digits=2))
    out.append("")
    n = res["corpus"]["dags"]
    out.append(f"ours = critical path on {res['ours_at_critical']}/{n} DAGs (wait and skill steps); "
               f"max ours/critical {res['ours_vs_critical']['max']}, skill steps {res['ours_task_vs_critical']['max']}; "
               f"dataflow violations {res['dataflow_violations']}")
    out.append(f"layered = waves on {res['layered_equals_waves']}/{n} DAGs (same groups on {res['same_groups']}/{n}): "
               "Kedro's toposort groups and the reference's longest-path waves coincide; "
               f"layered reaches the critical path on {res['layered_at_critical']}/{n}")
    return "\n".join(out)
