"""The benchmark code works (a very small subset of ``python -m benchmarks``). No timing is asserted."""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchmarks import __main__ as bench
from benchmarks import coldstart, dags, makespan, scale
from benchmarks.report import table

DOTTED = [
    "makespan.ours_vs_critical.max", "makespan.ours_vs_critical.mean", "makespan.layered_vs_critical.mean",
    "makespan.waves_vs_critical.mean", "cost.transitions_per_step.ours", "cost.transitions_per_step.layered",
    "cold_start_ms.boto3", "local.ms_per_step.10", "local.ms_per_step.100", "local.ms_per_step.500",
    "api.trigger_ms.p50", "api.trigger_ms.p99",
    *(f"cold_start_ms.{h}" for h in coldstart.HANDLERS),
]


def _dotted(doc: dict[str, Any], path: str) -> tuple[bool, Any]:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def test_corpus_is_fixed_and_large_enough() -> None:
    a, b = dags.corpus(), dags.corpus()
    assert [d.name for d in a] == [d.name for d in b]
    assert [dict(d.durations) for d in a[:20]] == [dict(d.durations) for d in b[:20]]
    assert len(a) >= 200
    assert {"layered", "n", "w", "ladders", "crown", "skip"} <= {d.family for d in a}
    sizes = [d.size for d in a if d.family == "layered"]
    assert min(sizes) >= 5 and max(sizes) <= 200
    for d in a:   # definition order is topological
        seen: set[str] = set()
        for s in d.steps:
            assert set(d.deps[s]) <= seen
            seen.add(s)


def test_makespan_on_five_dags() -> None:
    corpus = dags.corpus()
    picked = [corpus[0], *(next(d for d in corpus if d.family == f) for f in ("n", "w", "ladders", "crown"))]
    lines: list[str] = []
    res = makespan.run(picked, log=lines.append, real_repeats=0)
    assert res["corpus"]["dags"] == 5
    assert res["ours_vs_critical"]["max"] == 1.0          # exact dataflow
    assert res["dataflow_violations"] == 0
    assert res["layered_vs_critical"]["mean"] >= 1.0
    assert res["layered_equals_waves"] == 5
    assert "worst for the baselines" in lines[0]


def test_one_cold_start_measurement() -> None:
    lines: list[str] = []
    res = coldstart.run(repeats=1, handlers=("control",), log=lines.append)
    assert res["cold_start_ms"]["boto3"] > 0
    control = res["handlers"]["control"]
    assert control["ms"] is not None and control["ms"] > 0
    assert "moto" not in control["heavy_modules"]
    assert "boto3" in res["handlers"]["boto3"]["heavy_modules"]


def test_importtime_parsing() -> None:
    err = ("import time: self [us] | cumulative | imported package\n"
           "import time:       100 |        100 |   encodings.aliases\n"
           "import time:       200 |        300 | encodings\n"
           "import time:        50 |       1500 | boto3\n")
    ms, modules = coldstart.import_ms(err, baseline_modules={"encodings"})
    assert ms == 1.5 and modules == {"encodings", "encodings.aliases", "boto3"}


def test_scale_helpers() -> None:
    assert scale.payload_limit()["max_steps_worst_case_within_256KiB"] > 0
    assert scale.for_each(measure_events=False)["max_items"] is not None
    assert scale.try_compile(scale.wide(5), "skill")["ok"]


def test_results_document_has_every_dotted_key() -> None:
    args = argparse.Namespace(quick=True, seed=dags.DEFAULT_SEED, only=["makespan"])
    doc = bench.assemble({"makespan": {"ours_vs_critical": {"max": 1.0, "mean": 1.0}}}, args, {"makespan": 0.1})
    json.dumps(doc)
    for key in DOTTED:
        present, _ = _dotted(doc, key)
        assert present, key
    assert _dotted(doc, "makespan.ours_vs_critical.max") == (True, 1.0)
    assert "summary" in bench.summary(doc)


def test_table_aligns_columns() -> None:
    text = table(["name", "value"], [["a", 1.5], ["long-name", 12.25]])
    lines = text.splitlines()
    assert len({len(line) for line in lines[:2]}) == 1
    assert lines[2].endswith(" 1.50") and lines[3].endswith("12.25")


def test_one_static_wait_costs_by_position() -> None:
    from benchmarks import cost
    from benchmarks.motorun import local_engine

    with local_engine() as engine:
        res = cost.static_wait_cost(engine)
    # Planned by the task before it (a step's, or the wait before it's prepare): its Wait state
    # alone. First in the run no task comes before it: its own prepare (which would plan the
    # waits after it too). At the end of the run the run's end settles it: no .done task either.
    assert res == {
        "between_steps": {"transitions": 1, "lambda_invocations": 0},
        "after_a_step_at_the_end": {"transitions": 1, "lambda_invocations": 0},
        "first_in_the_run": {"transitions": 2, "lambda_invocations": 1},
        "after_a_wait": {"transitions": 1, "lambda_invocations": 0},
    }
