"""Section 6: peers. The same DAG shapes run by ``boternity run``, Prefect 3, LangGraph and asyncio.

Shapes: ``chain_N`` (each step after the previous one) and ``fan_N`` (N independent steps) of
prompt-skill-like no-op steps: each returns ``"Handled: step <id>\\n"``, what the ``echo-prompt``
skill returns for ``input: "step <id>"``. Every runner runs as a whole command in a fresh process
(interpreter, imports, set-up included), as a user would wait for it:

* ``boternity run FILE --json`` on the local engine (moto), prompt-skill steps;
* Prefect 3, ephemeral (no server configured; it starts its own), ``task.submit(wait_for=...)``;
* LangGraph, a ``StateGraph`` with one node per step;
* ``benchmarks/asyncdag.py``, a minimal asyncio DAG runner: the floor.

Start-up is the wall time of a 1-step run; the cost of a step is ``(wall(N) - wall(1)) / (N - 1)``,
so start-up is not spread over the steps. Each child checks every step's output before it reports,
so a runner that skipped work cannot look fast. The same difference over the run's own time
(in-process; the fastest of several runs in one child for asyncio and LangGraph, whose steps cost
microseconds) is recorded too; ratios use it, on both sides, where a wall difference is within the
start-up noise. Prefect and LangGraph come from the optional extra ``.[bench-peers]``; when they
are not installed the section says so and measures the others. ``--quick`` runs only ours and
asyncio on small shapes.

The child side: ``python -m benchmarks.peers RUNNER SHAPE N [REPEAT]`` prints ``{"run_s": ...,
"extra_s": ...}`` (see :func:`child_main`). Only the standard library is imported at module level,
so a child loads nothing its runner does not need.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
SKILLS_DIR = ROOT / "examples" / "skills"

FULL_SHAPES: tuple[tuple[str, int], ...] = (("chain", 50), ("chain", 200), ("fan", 200), ("chain", 500))
# The per-step cost flat in N (issue goal: a 500-chain's at most 1.2x a 50-chain's).
FLAT_PAIR = ("chain_500", "chain_50")
QUICK_SHAPES: tuple[tuple[str, int], ...] = (("chain", 20), ("fan", 20))
# results.json's local.per_step_ms keys: always present, null when not measured (e.g. --quick).
RESULT_KEYS = tuple(f"{s}_{n}" for s, n in FULL_SHAPES)
RUNNERS = ("boternity", "prefect", "langgraph", "asyncio")
# Peer runner -> the distribution it needs (from the bench-peers extra).
PEER_PACKAGES = {"prefect": "prefect", "langgraph": "langgraph"}
EXTRA_HINT = "pip install -e '.[bench-peers]'"
# Repeats per measurement in full mode; the fastest is kept (on a shared machine noise only ever
# adds time). Cheap runners more often, since their per-step cost is a small difference of walls;
# ours three times, since flat in N compares a 50-chain's small difference with a 500-chain's
# (one sample each put it anywhere between 1.0 and 1.3 on this machine).
REPEATS = {"boternity": 3, "prefect": 2, "langgraph": 5, "asyncio": 5}
STARTUP_REPEATS = {"boternity": 3, "prefect": 3, "langgraph": 5, "asyncio": 5}
# Runs inside one child for the in-process measure (the fastest is kept). Prefect's first flow run
# also starts its ephemeral server, whose seconds of jitter would swamp 200 steps: its second run,
# on a 1-step flow as on an N-step one, has the server up.
IN_PROCESS_REPEATS = {"prefect": 2, "langgraph": 3, "asyncio": 20}


# ----------------------------------------------------------------------------- shapes


def step_ids(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(n)]


def shape_deps(shape: str, n: int) -> dict[str, list[str]]:
    """Each step's dependencies. Raises ValueError for an unknown shape or a size below 1."""
    if n < 1:
        raise ValueError(f"a DAG needs at least one step, got {n}")
    ids = step_ids(n)
    if shape == "chain":
        return {s: ([ids[i - 1]] if i else []) for i, s in enumerate(ids)}
    if shape == "fan":
        return {s: [] for s in ids}
    raise ValueError(f"unknown shape {shape!r} (chain or fan)")


def render(step_id: str) -> str:
    """A step's output: what the echo-prompt skill returns for ``input: "step <id>"``."""
    return f"Handled: step {step_id}\n"


def expected(n: int) -> dict[str, str]:
    return {s: render(s) for s in step_ids(n)}


# ----------------------------------------------------------------------------- child side


def _run_asyncio(shape: str, n: int) -> dict[str, Any]:
    import asyncio

    from benchmarks.asyncdag import run_dag

    deps = shape_deps(shape, n)

    def make(step_id: str) -> Callable[[dict[str, Any]], Any]:
        async def step(inputs: dict[str, Any]) -> str:
            return render(step_id)
        return step

    return asyncio.run(run_dag({s: make(s) for s in deps}, deps))


def _merge(left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
    return {**left, **right}


class _GraphState(TypedDict):
    # Module level: LangGraph reads the reducer from the resolved type hints.
    out: Annotated[dict[str, str], _merge]


def _run_langgraph(shape: str, n: int) -> dict[str, Any]:
    from langgraph.graph import END, START, StateGraph

    deps = shape_deps(shape, n)
    graph = StateGraph(_GraphState)

    def make(step_id: str) -> Callable[[_GraphState], dict[str, Any]]:
        def node(state: _GraphState) -> dict[str, Any]:
            return {"out": {step_id: render(step_id)}}
        return node

    for step_id, ds in deps.items():
        graph.add_node(step_id, make(step_id))
        for d in ds or [START]:
            graph.add_edge(d, step_id)
    has_dependents = {d for ds in deps.values() for d in ds}
    for step_id in deps:
        if step_id not in has_dependents:
            graph.add_edge(step_id, END)
    app = graph.compile()
    # A chain of n nodes is n supersteps; the default limit (25) would stop it.
    return app.invoke({"out": {}}, {"recursion_limit": n + 10})["out"]


def _run_prefect(shape: str, n: int) -> dict[str, Any]:
    from prefect import flow, task

    deps = shape_deps(shape, n)

    @task(name="step")
    def step(step_id: str) -> str:
        return render(step_id)

    @flow(name=f"peers-{shape}-{n}")
    def dag_flow() -> dict[str, str]:
        futures: dict[str, Any] = {}
        for step_id, ds in deps.items():   # definition order is topological
            futures[step_id] = step.submit(step_id, wait_for=[futures[d] for d in ds])
        return {s: f.result() for s, f in futures.items()}

    return dag_flow()


CHILD_RUNNERS: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "asyncio": _run_asyncio, "langgraph": _run_langgraph, "prefect": _run_prefect,
}


def child_main(argv: Sequence[str]) -> int:
    """``RUNNER SHAPE N [REPEAT]``: run the DAG REPEAT times (default 1), check every output, print
    ``{"run_s": fastest run, "extra_s": time spent in the runs after the first}``. Repeating in one
    process measures a cheap runner's in-process cost below the noise of a process start; the
    parent subtracts ``extra_s`` from the wall, so the whole command still counts one run."""
    if len(argv) not in (3, 4) or argv[0] not in CHILD_RUNNERS:
        print(f"usage: python -m benchmarks.peers {{{','.join(CHILD_RUNNERS)}}} {{chain,fan}} N [REPEAT]",
              file=sys.stderr)
        return 2
    runner, shape, n = argv[0], argv[1], int(argv[2])
    repeat = int(argv[3]) if len(argv) == 4 else 1
    times: list[float] = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = CHILD_RUNNERS[runner](shape, n)
        times.append(time.perf_counter() - t0)
        if out != expected(n):
            wrong = sorted(s for s in expected(n) if out.get(s) != render(s))
            print(f"{runner}: {len(wrong)} step(s) missing or wrong, e.g. {wrong[:3]}", file=sys.stderr)
            return 1
    print(json.dumps({"run_s": min(times), "extra_s": sum(times[1:])}))
    return 0


# ----------------------------------------------------------------------------- parent side


class RunFailed(RuntimeError):
    """A runner's command exited non-zero, timed out, or produced the wrong outputs."""


def workflow_doc(shape: str, n: int) -> dict[str, Any]:
    """The boternity workflow for a shape: echo-prompt skill steps."""
    steps: list[dict[str, Any]] = []
    for step_id, ds in shape_deps(shape, n).items():
        step: dict[str, Any] = {"id": step_id, "type": "skill",
                                "config": {"skill": "echo-prompt", "input": f"step {step_id}"}}
        if ds:
            step["depends_on"] = ds
        steps.append(step)
    return {"name": f"peers-{shape}-{n}", "description": f"benchmark {shape} of {n} prompt-skill steps",
            "steps": steps}


def _parse_boternity(stdout: str, n: int) -> float:
    """The run's own duration, after checking that every step completed with the expected output."""
    import datetime as dt

    try:
        doc = json.loads(stdout)
    except ValueError as exc:
        raise RunFailed(f"boternity run --json printed no JSON: {stdout[:200]!r}") from exc
    run = doc["run"]
    if run["status"] != "SUCCEEDED":
        raise RunFailed(f"run {run['status']}")
    outputs = {s: (rec or {}).get("output", {}).get("output") for s, rec in (run.get("output") or {}).items()}
    if outputs != expected(n):
        wrong = sorted(s for s in expected(n) if outputs.get(s) != render(s))
        raise RunFailed(f"{len(wrong)} step(s) missing or wrong, e.g. {wrong[:3]}")

    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (at(run["ended_at"]) - at(run["started_at"])).total_seconds()


def _child_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH", "PYTHONPROFILEIMPORTTIME"):
        env.pop(var, None)
    env.update({
        # Prefect: its own home (the ephemeral server's SQLite database), quiet, no telemetry.
        "PREFECT_HOME": str(workdir / "prefect-home"),
        "PREFECT_LOGGING_LEVEL": "ERROR",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
    })
    return env


def run_once(runner: str, shape: str, n: int, *, workdir: Path, timeout: float) -> tuple[float, float]:
    """(wall seconds of the whole command, seconds of the run alone). Raises RunFailed."""
    if runner == "boternity":
        path = workdir / f"{shape}-{n}.json"
        path.write_text(json.dumps(workflow_doc(shape, n)))
        cmd = [sys.executable, "-c", "import sys; from boternity.cli.main import main; sys.exit(main())",
               "run", str(path), "--json", "--skills", str(SKILLS_DIR)]
    else:
        cmd = [sys.executable, "-m", "benchmarks.peers", runner, shape, str(n), str(IN_PROCESS_REPEATS.get(runner, 1))]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir,
                           env=_child_env(workdir), check=False)
    except subprocess.TimeoutExpired as exc:
        raise RunFailed(f"no result after {timeout:.0f} s") from exc
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        raise RunFailed(f"exit {p.returncode}: {last[:300]}")
    if runner == "boternity":
        return wall, _parse_boternity(p.stdout, n)
    try:
        result = json.loads(p.stdout.strip().splitlines()[-1])
        return wall - float(result["extra_s"]), float(result["run_s"])
    except (ValueError, KeyError, IndexError) as exc:
        raise RunFailed(f"no result line: {p.stdout[-200:]!r}") from exc


def _version(runner: str) -> str | None:
    dist = {"boternity": "boternity", **PEER_PACKAGES}.get(runner)
    if dist is None:
        return sys.version.split()[0]    # asyncio: the interpreter's
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def available(runner: str, packages: Mapping[str, str] = PEER_PACKAGES) -> bool:
    """Whether a runner can run here: ours and asyncio always; a peer when its package is installed."""
    module = packages.get(runner)
    return module is None or importlib.util.find_spec(module) is not None


def measure(runner: str, shapes: Sequence[tuple[str, int]], *, repeats: int, startup_repeats: int,
            workdir: Path, log: Callable[[str], None], warm_up: bool = True) -> dict[str, Any]:
    """Start-up and per-step cost of one runner on every shape; a failing shape is recorded, not raised.

    Per step, two measures, each a difference so that fixed costs drop out: the whole command's
    ``(wall(N) - wall(1)) / (N - 1)``, and the same over the run's own time (no interpreter start,
    imports or Prefect's server start-up, which happens inside its first flow call); each shape's
    N-step runs are paired with 1-step runs made just before them. A wall difference smaller than
    the spread of the start-up walls is noise: ``resolved`` says which are not.
    """
    res: dict[str, Any] = {"status": "ok", "version": _version(runner), "startup_s": None,
                           "per_step_ms": {}, "in_process_ms_per_step": {}, "resolved": {}, "wall_s": {},
                           "errors": {}}
    try:
        if warm_up:     # .pyc files, Prefect's database: what a user's second run no longer pays
            run_once(runner, "chain", 1, workdir=workdir, timeout=300)
        ones = [run_once(runner, "chain", 1, workdir=workdir, timeout=300) for _ in range(startup_repeats)]
    except RunFailed as exc:
        res.update(status="failed", note=f"1-step run: {exc}")
        log(f"   {runner}: 1-step run failed: {exc}")
        return res
    startup = min(w for w, _ in ones)
    # One sample shows no spread, so then no wall difference counts as resolved (--quick).
    noise = max(w for w, _ in ones) - min(w for w, _ in ones) if len(ones) > 1 else None
    res["startup_s"] = round(startup, 3)
    res["startup_spread_s"] = None if noise is None else round(noise, 3)
    log(f"   {runner} {res['version']}: start-up (1-step run) {startup:.2f} s"
        + ("" if noise is None else f" (spread {noise:.2f} s)"))
    for shape, n in shapes:
        key = f"{shape}_{n}"
        # Pairs (1 step, N steps) run back to back, so that the difference is taken between runs
        # that saw the same load: on a shared machine the load drifts over minutes.
        pairs: list[tuple[tuple[float, float], tuple[float, float]]] = []
        try:
            for _ in range(repeats):
                one = run_once(runner, "chain", 1, workdir=workdir, timeout=300)
                pairs.append((one, run_once(runner, shape, n, workdir=workdir, timeout=120 + 2.0 * n)))
        except RunFailed as exc:
            res["errors"][key] = str(exc)
            log(f"   {runner} {key}: FAILED: {exc}")
            continue
        one_wall = min(o[0] for o, _ in pairs)
        startup = min(startup, one_wall)     # every 1-step run measures start-up
        one_run = min(o[1] for o, _ in pairs)
        wall = min(s[0] for _, s in pairs)
        in_run = min(s[1] for _, s in pairs)
        res["wall_s"][key] = round(wall, 3)
        res["per_step_ms"][key] = round((wall - one_wall) * 1000 / (n - 1), 3)
        res["in_process_ms_per_step"][key] = round((in_run - one_run) * 1000 / (n - 1), 3)
        res["resolved"][key] = noise is not None and wall - one_wall > noise
        log(f"   {runner} {key}: {wall:.2f} s (1 step: {one_wall:.2f} s), {res['per_step_ms'][key]:.2f} ms/step"
            + ("" if res["resolved"][key] else " (not resolved: within start-up noise, or one sample)")
            + f"; in-process {res['in_process_ms_per_step'][key]:.3f} ms/step")
    res["startup_s"] = round(startup, 3)
    return res


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is not positive (a difference of walls can be <= 0)."""
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 1)


def compare(ours: dict[str, Any], peer: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """ours / peer for start-up and each shape's per-step cost, and the basis of each ratio.

    Whole-command costs when both are above their start-up noise; otherwise both sides' in-process
    costs (the same measure on both sides, never one of each): a sub-millisecond step cannot be
    read off two walls of a tenth of a second.
    """
    out: dict[str, Any] = {"startup": _ratio(ours["startup_s"], peer["startup_s"]), "basis": {}}
    for k in keys:
        if ours["resolved"].get(k) and peer["resolved"].get(k):
            out[k], out["basis"][k] = _ratio(ours["per_step_ms"].get(k), peer["per_step_ms"].get(k)), "wall"
        else:
            out[k] = _ratio(ours["in_process_ms_per_step"].get(k), peer["in_process_ms_per_step"].get(k))
            # Not positive on the peer's side: its steps cost less than the noise of either measure.
            out["basis"][k] = "in-process" if out[k] is not None else "unresolved"
    return out


def run(*, quick: bool = False, log: Callable[[str], None] = print, runners: Sequence[str] = RUNNERS,
        shapes: Sequence[tuple[str, int]] | None = None, packages: Mapping[str, str] = PEER_PACKAGES
        ) -> dict[str, Any]:
    """The section. ``runners``, ``shapes`` and ``packages`` (peer -> the module it needs) narrow it
    for tests; by default every runner on FULL_SHAPES, or ours and asyncio on QUICK_SHAPES."""
    shapes = list(shapes or (QUICK_SHAPES if quick else FULL_SHAPES))
    keys = [f"{s}_{n}" for s, n in shapes]
    measured: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="boternity-bench-peers-") as d:
        for runner in runners:
            if quick and runner in packages:
                measured[runner] = {"status": "skipped", "note": "not run in --quick mode"}
                continue
            if not available(runner, packages):
                measured[runner] = {"status": "skipped",
                                    "note": f"{packages[runner]} is not installed ({EXTRA_HINT})"}
                log(f"   {runner}: skipped, {measured[runner]['note']}")
                continue
            measured[runner] = measure(runner, shapes, repeats=1 if quick else REPEATS.get(runner, 1),
                                       startup_repeats=1 if quick else STARTUP_REPEATS.get(runner, 3),
                                       workdir=Path(d), log=log, warm_up=not quick)
    ours = measured.get("boternity") or {}
    ratios: dict[str, Any] = {}
    for peer in (r for r in runners if r != "boternity"):
        other = measured[peer]
        if other.get("status") != "ok" or ours.get("status") != "ok":
            continue
        ratios[f"ours_vs_{peer}"] = compare(ours, other, keys)
    per_step = dict.fromkeys(RESULT_KEYS)
    per_step.update(ours.get("per_step_ms") or {})
    result: dict[str, Any] = {
        "method": "whole commands in fresh processes, the fastest of several runs (repeats per runner: "
                  f"{'1' if quick else json.dumps(STARTUP_REPEATS)} for 1 step, "
                  f"{'1' if quick else json.dumps(REPEATS)} for N); start-up = wall of a 1-step run; "
                  "per step = (wall(N) - wall(1)) / (N - 1); in-process = the same over the run's own "
                  f"time (fastest of {json.dumps(IN_PROCESS_REPEATS)} runs in one process); ratios on walls, or on both sides' in-process costs where a wall difference is "
                  "within the 1-step runs' spread; every step's output checked",
        "shapes": keys,
        "step": "prompt-skill-like no-op: returns 'Handled: step <id>' (the echo-prompt skill)",
        "runners": measured,
        "ratios": ratios,
        "local": {"startup_s": ours.get("startup_s"), "per_step_ms": per_step,
                  "flat_in_n": flat_in_n(ours)},
    }
    log(_render(result))
    flat = result["local"]["flat_in_n"]
    if flat["whole"] is not None or flat["in_process"] is not None:
        log(f"   per step, {FLAT_PAIR[0]} / {FLAT_PAIR[1]}: whole command {flat['whole']}, "
            f"in-process {flat['in_process']} (goal <= 1.2)")
    return result


def flat_in_n(ours: dict[str, Any]) -> dict[str, float | None]:
    """Our per-step cost on the longer chain over the shorter: 1.0 is flat in N."""
    big, small = FLAT_PAIR

    def ratio(costs: dict[str, Any] | None) -> float | None:
        a, b = (costs or {}).get(big), (costs or {}).get(small)
        return round(a / b, 2) if a is not None and b is not None and b > 0 else None

    return {"whole": ratio(ours.get("per_step_ms")), "in_process": ratio(ours.get("in_process_ms_per_step"))}


def _render(res: dict[str, Any]) -> str:
    from benchmarks.report import table

    keys = res["shapes"]
    rows = []
    for name, r in res["runners"].items():
        if r.get("status") != "ok":
            rows.append([name, r.get("version"), None, *[None] * len(keys), r.get("note", r.get("status"))])
            continue
        rows.append([name, r["version"], r["startup_s"], *[r["per_step_ms"].get(k) for k in keys],
                     "; ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "ok"])
    out = [f"6. Peers: {', '.join(keys)} of prompt-skill-like no-op steps, whole commands "
           "(per step = (wall(N) - wall(1)) / (N - 1))"]
    out.append(table(["runner", "version", "start-up s", *[f"{k} ms/step" for k in keys], "status"], rows, digits=2))
    inproc = [[name, *[r["in_process_ms_per_step"].get(k) for k in keys]]
              for name, r in res["runners"].items() if r.get("status") == "ok"]
    if inproc:
        out.append(table(["in-process ms/step", *keys], inproc, digits=3))
    if res["ratios"]:
        def cell(v: dict[str, Any], s: str) -> str | None:
            if v["basis"].get(s) == "unresolved":
                return "below noise"
            if v.get(s) is None:
                return None
            return f"{v[s]:,.1f}" + ("" if v["basis"][s] == "wall" else f" ({v['basis'][s]})")
        out.append(table(["ours / peer", "start-up", *keys],
                         [[k.removeprefix("ours_vs_"), v["startup"], *[cell(v, s) for s in keys]]
                          for k, v in res["ratios"].items()], digits=1))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
