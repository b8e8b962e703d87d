"""``python -m benchmarks [--quick] [--out PATH] [--markdown PATH] [--only SECTION ...]``

Runs the seven sections (makespan, cost, cold start, scale, local engine, peers, serve under load), prints a
table per section and a summary, and writes the results as JSON (``benchmarks/results.json`` by default).
A section that fails is reported and recorded as ``{"error": ...}``; the command still exits 0
(unless ``--strict``), so CI's ``--quick`` run proves the code works without being flaky.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
SECTIONS = ("makespan", "cost", "coldstart", "scale", "local", "peers", "serve")


def machine() -> dict[str, Any]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=HERE.parent, timeout=10, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor() or None, "python": platform.python_version(),
            "platform": platform.platform(), "git_commit": commit}


def _section(name: str, fn: Callable[[], dict[str, Any]], texts: dict[str, str]) -> tuple[dict[str, Any], float]:
    lines: list[str] = []
    t0 = time.perf_counter()
    print(f"\n== {name} ==", flush=True)
    try:
        res = fn_with_log(fn, lines)
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        tb = traceback.format_exc(limit=6)
        print(tb, file=sys.stderr)
        res = {"error": f"{type(exc).__name__}: {exc}"}
        lines.append(f"{name}: FAILED: {type(exc).__name__}: {exc}")
        print(lines[-1], flush=True)
    texts[name] = "\n".join(lines)
    return res, time.perf_counter() - t0


def fn_with_log(fn: Callable[..., dict[str, Any]], lines: list[str]) -> dict[str, Any]:
    def log(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    return fn(log)


def build(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    from benchmarks import coldstart, cost, local, makespan, peers, scale, serveload

    quick = args.quick
    texts: dict[str, str] = {}
    timings: dict[str, float] = {}
    wanted = args.only or list(SECTIONS)
    results: dict[str, Any] = {}
    runners: dict[str, Callable[[Callable[[str], None]], dict[str, Any]]] = {
        "makespan": lambda log: makespan.run(seed=args.seed, log=log, real_repeats=1 if quick else 2),
        "cost": lambda log: cost.run(quick=quick, seed=args.seed, log=log),
        "coldstart": lambda log: coldstart.run(repeats=3 if quick else 10, log=log),
        "scale": lambda log: scale.run(quick=quick, log=log),
        # Last: the api trigger sets up the emulated cloud, whose patches stay on in this process.
        "local": lambda log: local.run(quick=quick, log=log),
        # Child processes: `boternity run`, Prefect, LangGraph and asyncio on the same shapes.
        "peers": lambda log: peers.run(quick=quick, log=log),
        # A child process: `boternity serve` as users start it, loaded over loopback.
        "serve": lambda log: serveload.run(quick=quick, log=log),
    }
    for name in SECTIONS:
        if name in wanted:
            results[name], timings[name] = _section(name, runners[name], texts)
    return assemble(results, args, timings), texts


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def assemble(sections: dict[str, Any], args: argparse.Namespace, timings: dict[str, float]) -> dict[str, Any]:
    """The results document; the dotted keys other tools read are always present (null if not measured)."""
    mk = sections.get("makespan") or {}
    co = sections.get("cost") or {}
    cs = sections.get("coldstart") or {}
    lo = sections.get("local") or {}
    pe = sections.get("peers") or {}
    sv = sections.get("serve") or {}
    from benchmarks.coldstart import HANDLERS
    from benchmarks.peers import RESULT_KEYS as PEER_KEYS

    cold = dict.fromkeys(("boto3", *HANDLERS))
    cold.update(_get(cs, "cold_start_ms") or {})
    api = _get(lo, "api_trigger") or {}
    ms = _get(lo, "ms_per_step") or {}
    return {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python -m benchmarks" + (" --quick" if args.quick else "")
                       + (f" --only {' '.join(args.only)}" if args.only else ""),
            "quick": args.quick, "seed": args.seed, "machine": machine(),
            "seconds": {k: round(v, 1) for k, v in timings.items()},
            "errors": {k: v["error"] for k, v in sections.items() if isinstance(v, dict) and "error" in v},
        },
        "makespan": {
            "ours_vs_critical": {"max": _get(mk, "ours_vs_critical", "max"), "mean": _get(mk, "ours_vs_critical", "mean")},
            "layered_vs_critical": {"mean": _get(mk, "layered_vs_critical", "mean"),
                                    "max": _get(mk, "layered_vs_critical", "max")},
            "waves_vs_critical": {"mean": _get(mk, "waves_vs_critical", "mean"),
                                  "max": _get(mk, "waves_vs_critical", "max")},
            # Real makespan (helper tasks timed as they run, waits real) over the critical path.
            "real_vs_critical": {"max": _get(mk, "real_vs_critical", "max")},
            "detail": mk,
        },
        "cost": {
            "transitions_per_step": {
                "ours": _get(co, "transitions_per_step", "ours"),
                "layered": _get(co, "transitions_per_step", "layered"),
                # Ours by step kind: the section's own keys when it has them, else its per-kind
                # aggregates. The cost section names its 0-second wait steps "wait0".
                **{kind: _first(*(_get(co, *path) for name in names for path in (
                                    ("transitions_per_step", name), ("transitions_per_step_by_kind", name),
                                    ("by_kind", name, "ours", "transitions_per_step"))))
                   for kind, names in (("skill", ("skill",)), ("wait", ("wait", "wait0")))},
            },
            "lambda_per_wait_step": _first(
                _get(co, "lambda_per_wait_step"), _get(co, "lambda_invocations_per_wait_step"),
                *(_get(co, "by_kind", name, "ours", "lambda_invocations_per_step") for name in ("wait", "wait0"))),
            # One static wait's transitions and Lambda invocations, by where it sits (between two
            # steps: its Wait state alone).
            "static_wait_by_position": _get(co, "static_wait_by_position"),
            "detail": co,
        },
        "cold_start_ms": cold,
        "cold_start": cs,
        "local": {
            "ms_per_step": {n: ms.get(n) for n in ("10", "100", "500")},
            # `boternity run` as a whole command (the peers section): a 1-step run's wall, and
            # (wall(N) - wall(1)) / (N - 1) per shape.
            "startup_s": _get(pe, "local", "startup_s"),
            "per_step_ms": {k: _get(pe, "local", "per_step_ms", k) for k in PEER_KEYS}
                           | {k: v for k, v in (_get(pe, "local", "per_step_ms") or {}).items() if v is not None},
            # chain_500 / chain_50 per step (whole command, and in-process): 1.0 is flat in N.
            "flat_in_n": _get(pe, "local", "flat_in_n") or {"whole": None, "in_process": None},
            "detail": lo,
        },
        "peers": {
            "ratios": _get(pe, "ratios"),
            "detail": pe,
        },
        "api": {
            "trigger_ms": {"p50": api.get("p50"), "p99": api.get("p99")},
            "note": api.get("note"),
        },
        "scale": sections.get("scale"),
        "serve_load": {
            "lost": _sum(_get(sv, "free", "lost"), _get(sv, "concurrency_2", "lost")),
            "duplicated": _sum(_get(sv, "free", "duplicated"), _get(sv, "concurrency_2", "duplicated")),
            "trigger_ms": {"p50": _get(sv, "free", "trigger_ms", "p50"), "p99": _get(sv, "free", "trigger_ms", "p99")},
            "concurrency_2_max_running": _get(sv, "concurrency_2", "max_running_seen"),
            "detail": sv,
        },
    }


def _snapstart_summary(verdicts: dict[str, Any]) -> str:
    """"; SnapStart pays for agent (template agrees)" from the cold start section's verdicts."""
    if not verdicts:
        return ""
    pays = [k for k, v in verdicts.items() if v.get("pays")]
    disagree = [k for k, v in verdicts.items() if v.get("agrees") is False]
    return (f"; SnapStart pays for {', '.join(pays) or 'none'} "
            + (f"(template.yaml disagrees on {', '.join(disagree)})" if disagree else "(template.yaml agrees)"))


def _first(*values: Any) -> Any:
    """The first value that was measured (not None)."""
    return next((v for v in values if v is not None), None)


def _sum(*values: Any) -> int | None:
    """The total of counts, or None when any of them was not measured."""
    return None if any(v is None for v in values) else sum(values)


def summary(res: dict[str, Any]) -> str:
    def f(v: Any, fmt: str = "{:.2f}") -> str:
        return "-" if v is None else fmt.format(v)

    cold = res["cold_start_ms"]
    boto3_ms = cold.get("boto3")
    worst_goal = None
    from benchmarks.coldstart import GOAL_HANDLERS

    ratios = {k: cold[k] / boto3_ms for k in GOAL_HANDLERS if cold.get(k) and boto3_ms}
    if ratios:
        worst_goal = max(ratios.items(), key=lambda kv: kv[1])
    scale = res.get("scale") or {}
    wide = _get(scale, "dags", "wide_skill", "max_steps")
    lines = [
        "",
        "== summary ==",
        f"makespan / critical path: ours mean {f(res['makespan']['ours_vs_critical']['mean'], '{:.3f}')} "
        f"max {f(res['makespan']['ours_vs_critical']['max'], '{:.3f}')}; layered mean "
        f"{f(res['makespan']['layered_vs_critical']['mean'], '{:.3f}')}; waves mean "
        f"{f(res['makespan']['waves_vs_critical']['mean'], '{:.3f}')}",
        f"transitions per step: ours {f(res['cost']['transitions_per_step']['ours'])}, layered "
        f"{f(res['cost']['transitions_per_step']['layered'])}",
        f"cold start: boto3 {f(boto3_ms, '{:.0f}')} ms"
        + (f"; slowest goal handler {worst_goal[0]} {worst_goal[1]:.2f}x boto3" if worst_goal else "")
        + (f"; agent {f(cold.get('agent'), '{:.0f}')} ms" if cold.get("agent") else "")
        + _snapstart_summary(_get(res, "cold_start", "snapstart") or {}),
        "local engine ms/step: " + ", ".join(f"{n}: {f(v, '{:.1f}')}" for n, v in res["local"]["ms_per_step"].items()),
        f"boternity run: start-up {f(res['local']['startup_s'], '{:.2f}')} s; ms/step "
        + ", ".join(f"{k}: {f(v, '{:.1f}')}" for k, v in res["local"]["per_step_ms"].items())
        + "".join(f"; ours/{k.removeprefix('ours_vs_')} " + ", ".join(f"{s} {f(r, '{:.1f}')}x" for s, r in v.items() if s != "basis")
                  for k, v in (res["peers"]["ratios"] or {}).items()),
        f"api trigger: p50 {f(res['api']['trigger_ms']['p50'], '{:.1f}')} ms, p99 "
        f"{f(res['api']['trigger_ms']['p99'], '{:.1f}')} ms",
        f"largest wide DAG of skill steps that compiles: {wide if wide is not None else '-'} steps",
        f"serve under load: lost {f(res['serve_load']['lost'], '{}')}, duplicated "
        f"{f(res['serve_load']['duplicated'], '{}')}, trigger p50 {f(res['serve_load']['trigger_ms']['p50'], '{:.1f}')} "
        f"ms, p99 {f(res['serve_load']['trigger_ms']['p99'], '{:.1f}')} ms; concurrency: 2 peak "
        f"{f(res['serve_load']['concurrency_2_max_running'], '{}')} running",
    ]
    if res["meta"]["errors"]:
        lines.append("FAILED sections: " + "; ".join(f"{k}: {v}" for k, v in res["meta"]["errors"].items()))
    return "\n".join(lines)


def markdown(res: dict[str, Any], texts: dict[str, str]) -> str:
    m = res["meta"]
    mach = m["machine"]
    out = [
        "# Benchmark results",
        "",
        f"- Date: {m['date']}",
        f"- Command: `{m['command']}` (from the repository root)",
        f"- Machine: {mach['nproc']} CPUs, {mach['cpu']}, Python {mach['python']}, {mach['platform']}",
        f"- Commit: {mach['git_commit']}",
        "- Section times (s): " + ", ".join(f"{k} {v}" for k, v in m["seconds"].items()),
        "",
        "Numbers are regenerated by the command above; `benchmarks/results.json` has every detail.",
        "",
    ]
    for name in SECTIONS:
        if name in texts:
            out += [f"## {name}", "", "```", texts[name], "```", ""]
    out += ["## Summary", "", "```", summary(res).strip().removeprefix("== summary ==").strip(), "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.dags import DEFAULT_SEED

    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a run under two minutes (fewer DAGs, repeats and sizes)")
    p.add_argument("--out", default=str(HERE / "results.json"), help="where to write the results JSON")
    p.add_argument("--markdown", default=None, help="also write a Markdown report (e.g. benchmarks/RESULTS.md)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the corpus seed")
    p.add_argument("--strict", action="store_true", help="exit 1 if a section fails")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    res, texts = build(args)
    res["meta"]["total_seconds"] = round(time.perf_counter() - t0, 1)
    print(summary(res))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, sort_keys=False, default=str) + "\n")
    print(f"wrote {out} ({res['meta']['total_seconds']} s)")
    if args.markdown:
        Path(args.markdown).write_text(markdown(res, texts))
        print(f"wrote {args.markdown}")
    return 1 if (args.strict and res["meta"]["errors"]) else 0


if __name__ == "__main__":
    sys.exit(main())
