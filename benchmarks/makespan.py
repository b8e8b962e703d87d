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
from benchmarks.dags import (
    DEFAULT_SEED,
    Dag,
    corpus,
    critical_path,
    is_series_parallel,
    lattice_example,
    small_examples,
    workflow,
)
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


# The shapes whose real makespan is measured: the N, W, crown and lattice shapes of wait steps,
# with waits of 1-3 s so that a run takes seconds, not minutes.
REAL_SHAPES = ("n-shape", "w-shape", "crown-3", "lattice-2x3")
# A warm Lambda task as Step Functions runs it takes tens of milliseconds (scheduling, invoke, a
# DynamoDB write); the local engine's take a few. The simulator at this latency shows what the
# helper tasks on the critical path would cost in the cloud (an estimate, not a measurement).
CLOUD_TASK_SECONDS = 0.05


def real_dags() -> list[Dag]:
    by_name = {d.name: d for d in [*small_examples(), lattice_example()]}
    return [by_name[n] for n in REAL_SHAPES]


def measure_real(repeats: int = 2, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Real makespans: each shape run on the local engine (moto's interpreter, the Lambda tasks
    run in-process), timed from its execution history, over its critical path.

    The simulator's makespan assumes helper tasks take no time; here every ``prepare``, ``done``,
    ``signal`` and await task takes what it takes, so the ratio shows what the helper tasks on
    the critical path cost. The same run's median helper-task latency, fed back to the simulator,
    gives what it predicts for that latency (the two agree within the simulator test's tolerance).
    """
    from benchmarks import motorun
    from boternity.compiler import compile_details

    rows = []
    with motorun.local_engine() as eng:
        warm = small_examples()[0]
        motorun.run_workflow(eng, workflow(warm, seconds=dict.fromkeys(warm.steps, 0), name="warm-up"), timeout=30)
        for dag in real_dags():
            wf = workflow(dag)
            definition = compile_details(wf, targets=eng.targets).definition
            cp = critical_path(dag)
            reals, latencies, failed = [], [], 0
            for _ in range(repeats):
                run = motorun.run_workflow(eng, wf, timeout=60)
                if run.status != "SUCCEEDED":
                    failed += 1
                    continue
                reals.append(motorun.real_makespan(run.events, dag.steps))
                latencies.append(motorun.helper_task_seconds(run.events, dag.steps))
            lat = sorted(latencies)[len(latencies) // 2] if latencies else 0.0
            rows.append({
                "name": dag.name, "steps": dag.size, "critical_s": cp,
                "real_s": [round(r, 3) for r in reals], "failed_runs": failed,
                "real_vs_critical": round(max(reals) / cp, 4) if reals else None,
                "helper_task_ms": round(lat * 1000, 1),
                "simulated_at_that_latency_s": round(simulate(definition, dag.durations, task_seconds=lat).makespan, 3),
                "simulated_at_cloud_latency_vs_critical": round(
                    simulate(definition, dag.durations, task_seconds=CLOUD_TASK_SECONDS).makespan / cp, 4),
            })
    ratios = [r["real_vs_critical"] for r in rows if r["real_vs_critical"] is not None]
    res = {
        "method": "local engine (moto, in-process Lambda tasks), real waits; makespan from the execution "
                  "history (first step state entered to last left), the worst of the repeats per shape",
        "repeats": repeats,
        "max": max(ratios) if ratios else None,
        "mean": round(sum(ratios) / len(ratios), 4) if ratios else None,
        "dags": rows,
    }
    cloud = [r["simulated_at_cloud_latency_vs_critical"] for r in rows]
    res["simulated_at_cloud_latency"] = {"task_ms": CLOUD_TASK_SECONDS * 1000, "max": max(cloud) if cloud else None}
    log(table(["shape", "steps", "critical s", "real s", "real/critical", "helper task ms", "simulated s",
               f"sim/critical at {CLOUD_TASK_SECONDS * 1000:.0f} ms"],
              [[r["name"], r["steps"], r["critical_s"], " ".join(f"{x:.3f}" for x in r["real_s"]),
                r["real_vs_critical"], r["helper_task_ms"], r["simulated_at_that_latency_s"],
                r["simulated_at_cloud_latency_vs_critical"]] for r in rows],
              digits=3))
    log(f"real makespan / critical path: max {res['max']}, mean {res['mean']} (goal <= 1.03); "
        f"simulated with {CLOUD_TASK_SECONDS * 1000:.0f} ms per helper task: max {res['simulated_at_cloud_latency']['max']}")
    return res


def run(dags: Sequence[Dag] | None = None, *, seed: int = DEFAULT_SEED,
        log: Callable[[str], None] = print, real_repeats: int = 2) -> dict[str, Any]:
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
    if real_repeats:
        result["real_vs_critical"] = measure_real(real_repeats, log)
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
