"""The peers section and its asyncio DAG runner work. No timing is asserted: only what ran, in what order."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as bench
from benchmarks import dags, peers
from benchmarks.asyncdag import run_dag, topological_order

# ---------------------------------------------------------------------------- asyncio DAG runner


def _recording(log: list[str], *, yields: dict[str, int] | None = None, fail: str | None = None) -> Any:
    """Step functions that log start and end, optionally yield to the loop n times, or raise."""
    def make(step: str) -> Any:
        async def fn(inputs: dict[str, Any]) -> Any:
            log.append(f"start {step}")
            for _ in range((yields or {}).get(step, 0)):
                await asyncio.sleep(0)
            if step == fail:
                raise RuntimeError(f"{step} failed")
            log.append(f"end {step}")
            return {"step": step, "saw": sorted(inputs)}
        return fn
    return make


def test_a_chain_runs_in_order_and_each_step_gets_its_dependencys_result() -> None:
    log: list[str] = []
    make = _recording(log)
    deps = {"b": ["a"], "c": ["b"]}
    out = asyncio.run(run_dag({s: make(s) for s in ("c", "b", "a")}, deps))
    assert log == ["start a", "end a", "start b", "end b", "start c", "end c"]
    assert out["c"] == {"step": "c", "saw": ["b"]} and out["a"]["saw"] == []


def test_fan_steps_run_concurrently() -> None:
    log: list[str] = []
    make = _recording(log, yields={s: 1 for s in "abc"})
    asyncio.run(run_dag({s: make(s) for s in "abc"}, {}))
    assert [e.split()[0] for e in log] == ["start"] * 3 + ["end"] * 3


def test_a_step_starts_when_its_own_dependencies_are_done_not_a_whole_wave() -> None:
    # The N shape a->c, a->d, b->d with a slow b: c must not wait for b.
    log: list[str] = []
    make = _recording(log, yields={"b": 10})
    asyncio.run(run_dag({s: make(s) for s in "abcd"}, {"c": ["a"], "d": ["a", "b"]}))
    assert log.index("end c") < log.index("end b") < log.index("start d")


def test_a_failing_step_fails_the_run_and_stops_the_others() -> None:
    log: list[str] = []
    make = _recording(log, yields={"slow": 50}, fail="bad")
    with pytest.raises(RuntimeError, match="bad failed"):
        asyncio.run(run_dag({s: make(s) for s in ("bad", "slow", "after")}, {"after": ["bad"]}))
    assert "end slow" not in log and "start after" not in log


@pytest.mark.parametrize(("deps", "message"), [
    ({"a": ["b"], "b": ["a"]}, "cycle through a, b"),
    ({"a": ["zz"]}, "unknown step"),
    ({"zz": []}, "unknown step 'zz'"),
])
def test_bad_dependencies_are_refused_before_anything_runs(deps: dict[str, list[str]], message: str) -> None:
    log: list[str] = []
    make = _recording(log)
    with pytest.raises(ValueError, match=message):
        asyncio.run(run_dag({s: make(s) for s in "ab"}, deps))
    assert log == []


def test_topological_order_keeps_the_given_order_among_ready_steps() -> None:
    assert topological_order(["x", "y", "z"], {"x": ["z"]}) == ["y", "z", "x"]


# ---------------------------------------------------------------------------- shapes and children


def test_shapes() -> None:
    chain = peers.shape_deps("chain", 3)
    assert chain == {"s000": [], "s001": ["s000"], "s002": ["s001"]}
    assert peers.shape_deps("fan", 2) == {"s000": [], "s001": []}
    with pytest.raises(ValueError, match="unknown shape"):
        peers.shape_deps("ring", 3)
    with pytest.raises(ValueError, match="at least one step"):
        peers.shape_deps("chain", 0)


def test_the_boternity_workflow_is_valid_and_says_what_the_peers_compute() -> None:
    from boternity.model import parse_workflow
    from boternity.validate import check_workflow

    doc = peers.workflow_doc("chain", 4)
    check_workflow(parse_workflow(doc))
    assert [s.get("depends_on") for s in doc["steps"]] == [None, ["s000"], ["s001"], ["s002"]]
    assert {s["config"]["skill"] for s in doc["steps"]} == {"echo-prompt"}
    skill = (peers.SKILLS_DIR / "echo-prompt" / "SKILL.md").read_text()
    assert skill.rstrip().endswith("Handled: {{ input }}")
    assert peers.render("s001") == "Handled: step s001\n"


def test_a_child_checks_its_outputs_and_reports_its_run_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert peers.child_main(["asyncio", "fan", "5"]) == 0
    once = json.loads(capsys.readouterr().out)
    assert once["run_s"] > 0 and once["extra_s"] == 0
    assert peers.child_main(["asyncio", "chain", "5", "4"]) == 0
    repeated = json.loads(capsys.readouterr().out)
    assert repeated["extra_s"] >= 3 * repeated["run_s"] > 0     # three more runs, none faster than the fastest
    assert peers.child_main(["nosuch", "fan", "5"]) == 2


def _record(status: str, outputs: dict[str, str]) -> str:
    return json.dumps({"run": {
        "status": status, "started_at": "2026-12-01T10:00:00.000Z", "ended_at": "2026-12-01T10:00:01.500Z",
        "output": {s: {"status": "completed", "output": {"type": "skill", "output": o}} for s, o in outputs.items()},
    }})


def test_a_boternity_run_counts_only_when_every_step_produced_its_output() -> None:
    good = peers.expected(3)
    assert peers._parse_boternity(_record("SUCCEEDED", good), 3) == 1.5
    with pytest.raises(peers.RunFailed, match="1 step"):
        peers._parse_boternity(_record("SUCCEEDED", {**good, "s002": "nothing"}), 3)
    with pytest.raises(peers.RunFailed, match="run FAILED"):
        peers._parse_boternity(_record("FAILED", good), 3)


def test_one_real_boternity_run(tmp_path: Path) -> None:
    wall, in_run = peers.run_once("boternity", "fan", 2, workdir=tmp_path, timeout=120)
    assert wall > in_run > 0


# ---------------------------------------------------------------------------- the section


def test_missing_peers_are_skipped_with_the_install_hint_and_the_rest_is_measured() -> None:
    lines: list[str] = []
    res = peers.run(runners=("asyncio", "langgraph"), shapes=[("chain", 3), ("fan", 3)],
                    packages={"langgraph": "no_such_module_for_the_benchmark"}, log=lines.append)
    assert res["runners"]["langgraph"]["status"] == "skipped"
    assert peers.EXTRA_HINT in res["runners"]["langgraph"]["note"]
    asyncio_res = res["runners"]["asyncio"]
    assert asyncio_res["status"] == "ok" and not asyncio_res["errors"]
    assert asyncio_res["startup_spread_s"] is not None
    assert set(asyncio_res["per_step_ms"]) == set(asyncio_res["in_process_ms_per_step"]) == {"chain_3", "fan_3"}
    assert res["ratios"] == {}       # no boternity run here, so nothing to compare
    assert res["local"]["per_step_ms"] == dict.fromkeys(peers.RESULT_KEYS)
    assert "6. Peers" in lines[-1] and "not installed" in lines[-1]


def _measured(startup: float, wall_ms: float, in_process_ms: float, resolved: bool) -> dict[str, Any]:
    return {"startup_s": startup, "per_step_ms": {"chain_9": wall_ms}, "in_process_ms_per_step": {"chain_9": in_process_ms},
            "resolved": {"chain_9": resolved}}


def test_ratios_use_the_same_measure_on_both_sides() -> None:
    ours = _measured(2.0, 50.0, 40.0, True)
    assert peers.compare(ours, _measured(1.0, 5.0, 8.0, True), ["chain_9"]) == {
        "startup": 2.0, "chain_9": 10.0, "basis": {"chain_9": "wall"}}
    # A peer whose steps vanish in the start-up noise is compared in-process, on both sides.
    assert peers.compare(ours, _measured(0.1, -0.05, 0.1, False), ["chain_9"]) == {
        "startup": 20.0, "chain_9": 400.0, "basis": {"chain_9": "in-process"}}
    # Below the noise of both measures: no ratio rather than a huge one.
    assert peers.compare(ours, _measured(0.1, -0.05, -0.01, False), ["chain_9"])["basis"] == {"chain_9": "unresolved"}


def test_quick_mode_skips_the_peers_and_resolves_nothing_on_walls_from_one_sample() -> None:
    res = peers.run(quick=True, runners=("prefect", "asyncio"), shapes=[("fan", 3)], log=lambda _: None)
    assert res["runners"]["prefect"] == {"status": "skipped", "note": "not run in --quick mode"}
    assert res["runners"]["asyncio"]["startup_spread_s"] is None
    assert res["runners"]["asyncio"]["resolved"] == {"fan_3": False}


NEW_KEYS = ["local.startup_s", *(f"local.per_step_ms.{k}" for k in peers.RESULT_KEYS),
            "local.flat_in_n.whole", "local.flat_in_n.in_process",
            "cost.transitions_per_step.skill", "cost.transitions_per_step.wait", "cost.lambda_per_wait_step",
            "makespan.real_vs_critical.max"]


def _dotted(doc: dict[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        assert isinstance(cur, dict) and part in cur, path
        cur = cur[part]
    return cur


def test_flat_in_n_is_the_long_chains_cost_over_the_short_ones() -> None:
    ours = {"per_step_ms": {"chain_50": 4.0, "chain_500": 5.0}, "in_process_ms_per_step": {"chain_50": 3.0}}
    assert peers.flat_in_n(ours) == {"whole": 1.25, "in_process": None}


def test_results_document_has_the_new_keys_even_when_nothing_was_measured() -> None:
    args = argparse.Namespace(quick=True, seed=dags.DEFAULT_SEED, only=["makespan"])
    doc = bench.assemble({}, args, {})
    assert {k: _dotted(doc, k) for k in NEW_KEYS} == dict.fromkeys(NEW_KEYS)


def test_results_document_reads_the_new_keys_from_the_sections() -> None:
    args = argparse.Namespace(quick=False, seed=dags.DEFAULT_SEED, only=None)
    sections = {
        "peers": {"local": {"startup_s": 1.2, "per_step_ms": {"chain_50": 4.0, "chain_200": 5.0, "fan_200": 4.0,
                                                              "chain_500": None},
                            "flat_in_n": {"whole": None, "in_process": 1.1}},
                  "ratios": {"ours_vs_asyncio": {"startup": 20.0, "chain_200": 100.0}}},
        "cost": {"by_kind": {"skill": {"ours": {"transitions_per_step": 1.4}},
                             "wait": {"ours": {"transitions_per_step": 1.1, "lambda_invocations_per_step": 0.0}}}},
        "makespan": {"real_vs_critical": {"max": 1.02}},
    }
    doc = bench.assemble(sections, args, {})
    assert {k: _dotted(doc, k) for k in NEW_KEYS} == {
        "local.startup_s": 1.2, "local.per_step_ms.chain_50": 4.0, "local.per_step_ms.chain_200": 5.0,
        "local.per_step_ms.fan_200": 4.0, "local.per_step_ms.chain_500": None,
        "local.flat_in_n.whole": None, "local.flat_in_n.in_process": 1.1, "cost.transitions_per_step.skill": 1.4,
        "cost.transitions_per_step.wait": 1.1, "cost.lambda_per_wait_step": 0.0,
        "makespan.real_vs_critical.max": 1.02,
    }
    # A section's own top-level key wins over the per-kind aggregate.
    sections["cost"]["transitions_per_step"] = {"skill": 1.3}
    assert _dotted(bench.assemble(sections, args, {}), "cost.transitions_per_step.skill") == 1.3
    # The cost section's own names: 0-second wait steps are "wait0", and its per-kind summaries.
    renamed = {"cost": {"transitions_per_step_by_kind": {"skill": 1.5, "wait0": 1.2},
                        "lambda_invocations_per_wait_step": 0.5}}
    renamed_doc = bench.assemble(renamed, args, {})
    assert [_dotted(renamed_doc, k) for k in ("cost.transitions_per_step.skill", "cost.transitions_per_step.wait",
                                      "cost.lambda_per_wait_step")] == [1.5, 1.2, 0.5]
    assert "ours/asyncio" in bench.summary(doc)
