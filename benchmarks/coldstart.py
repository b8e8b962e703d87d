"""Section 3: cold start. The import time of each Lambda handler module in a fresh interpreter.

Each measurement is a new ``python -X importtime -c "import <module>"``; the import time is the
sum of the cumulative times of the top-level imports that a bare ``python -X importtime -c pass``
does not make (so interpreter start-up and ``site`` are excluded). The median of ``repeats`` runs,
interleaved (round-robin over the modules) so that machine noise spreads evenly, against a bare
``import boto3`` measured in the same rounds. The whole process wall time minus the bare
interpreter's is recorded too. Which heavy packages each handler pulls in is read from the same
output.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from benchmarks.report import table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HANDLERS = ("api", "webhook", "agent", "skill", "http", "code", "approval", "control", "events")
# The goal: these at most 1.5x a bare boto3 import. agent is reported on its own (it imports anthropic).
GOAL_HANDLERS = ("api", "webhook", "http", "skill", "approval", "events", "control")
GOAL_RATIO = 1.5
# Lambda SnapStart (template.yaml): the functions whose init is worth a snapshot. The rule: a handler
# import of at least SNAPSTART_MIN_RATIO x a bare boto3 import. Below that, a restore saves little
# (every function imports boto3-sized code anyway) while each published version is billed for its
# cached snapshot and each new environment for its restore. Measured: agent ~8x (anthropic); skill
# and code ~0.4x at import, under 1.5x even with the SDK they load on first use (FIRST_USE below).
SNAPSTART_MIN_RATIO = 3.0
SNAPSTART = ("agent",)
# SDKs a handler imports on its first step rather than at import (so a snapshot would not hold them
# unless the handler imported them at init): measured with the handler to judge SnapStart fairly.
FIRST_USE: dict[str, tuple[str, ...]] = {"skill": ("wasmtime",), "code": ("wasmtime", "py_mini_racer")}
HEAVY = ("anthropic", "wasmtime", "pydantic", "requests", "boto3", "botocore", "moto", "yaml",
         "aws_lambda_powertools", "urllib3", "py_mini_racer", "httpx")
NEVER = ("moto",)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP"):
        env.pop(var, None)
    return env


def parse_importtime(stderr: str) -> list[tuple[int, int, str]]:
    """(self_us, cumulative_us, name with its indentation) per ``import time:`` line."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        try:
            _, rest = line.split(":", 1)
            self_us, cum_us, name = rest.split("|", 2)
            out.append((int(self_us), int(cum_us), name.rstrip()))
        except ValueError:
            continue
    return out


def _probe(code: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                       env=_env(), timeout=120, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}")
    return wall, p.stderr


def import_ms(stderr: str, baseline_modules: set[str]) -> tuple[float, set[str]]:
    """Sum of the cumulative time (ms) of top-level imports not made by a bare interpreter; and
    every module imported."""
    total = 0
    modules = set()
    for _, cum, name in parse_importtime(stderr):
        stripped = name.strip()
        modules.add(stripped)
        top_level = len(name) - len(name.lstrip()) <= 1
        if top_level and stripped not in baseline_modules:
            total += cum
    return total / 1000.0, modules


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def run(*, repeats: int = 10, handlers: Sequence[str] = HANDLERS, log: Callable[[str], None] = print
        ) -> dict[str, Any]:
    # key -> the modules one probe imports (comma-separated, as `import a, b` takes them)
    targets: dict[str, str] = {"boto3": "boto3"}
    missing: list[str] = []
    for h in handlers:
        mod = f"boternity.handlers.{h}"
        if available(mod):
            targets[h] = mod
            first_use = [m for m in FIRST_USE.get(h, ()) if available(m)]
            if first_use:
                targets[f"{h}+first_use"] = ", ".join([mod, *first_use])
        else:
            missing.append(h)
    # Warm the file system cache and write .pyc files before anything is timed.
    _probe("pass")
    for mod in targets.values():
        try:
            _probe(f"import {mod}")
        except RuntimeError:
            pass
    bare_walls: list[float] = []
    bare_modules: set[str] = set()
    samples: dict[str, list[float]] = {k: [] for k in targets}
    walls: dict[str, list[float]] = {k: [] for k in targets}
    modules: dict[str, set[str]] = {k: set() for k in targets}
    errors: dict[str, str] = {}
    for _ in range(repeats):
        wall, err = _probe("pass")
        bare_walls.append(wall)
        bare_modules = {n.strip() for _, _, n in parse_importtime(err)}
        for key, mod in targets.items():
            if key in errors:
                continue
            try:
                wall, err = _probe(f"import {mod}")
            except RuntimeError as exc:
                errors[key] = str(exc)
                continue
            ms, mods = import_ms(err, bare_modules)
            samples[key].append(ms)
            walls[key].append(wall)
            modules[key] |= mods
    bare_wall = statistics.median(bare_walls)
    boto3_ms = statistics.median(samples["boto3"]) if samples["boto3"] else None
    per: dict[str, Any] = {}
    cold: dict[str, float | None] = {}
    extra = [k for k in targets if k.endswith("+first_use")]
    for key in ("boto3", *handlers, *extra):
        if key in missing:
            per[key] = {"ms": None, "note": f"boternity.handlers.{key} does not exist yet"}
            cold[key] = None
            continue
        if key in errors or not samples.get(key):
            per[key] = {"ms": None, "note": f"import failed: {errors.get(key)}"}
            cold[key] = None
            continue
        ms = statistics.median(samples[key])
        heavy = sorted(h for h in HEAVY if h in {m.split(".")[0] for m in modules[key]})
        per[key] = {
            "ms": round(ms, 1),
            "wall_minus_bare_ms": round((statistics.median(walls[key]) - bare_wall) * 1000, 1),
            "vs_boto3": round(ms / boto3_ms, 2) if boto3_ms else None,
            "heavy_modules": heavy,
            "forbidden": sorted(h for h in NEVER if h in heavy),
            "modules": len(modules[key]),
            "goal": (f"<= {GOAL_RATIO}x boto3" if key in GOAL_HANDLERS else None),
            "meets_goal": (ms / boto3_ms <= GOAL_RATIO) if (boto3_ms and key in GOAL_HANDLERS) else None,
        }
        if key not in extra:
            cold[key] = round(ms, 1)
    result: dict[str, Any] = {
        "method": f"python -X importtime, sum of cumulative top-level imports beyond a bare interpreter; "
                  f"median of {repeats}, interleaved; same rounds for boto3",
        "repeats": repeats,
        "python": sys.version.split()[0],
        "bare_interpreter_ms": round(bare_wall * 1000, 1),
        "cold_start_ms": cold,
        "handlers": per,
        "missing": missing,
        "snapstart": snapstart_verdicts(per),
    }
    log(_render(result))
    return result


def snapstart_verdicts(per: dict[str, Any]) -> dict[str, Any]:
    """Per handler: its init (the import, plus what it imports on first use), x boto3, whether the
    rule says SnapStart pays, and whether template.yaml gives it SnapStart (SNAPSTART)."""
    out: dict[str, Any] = {}
    for key, p in per.items():
        if key == "boto3" or key.endswith("+first_use") or p.get("ms") is None:
            continue
        with_first_use = per.get(f"{key}+first_use", {})
        init = max(p["ms"], with_first_use.get("ms") or 0.0)
        ratio = with_first_use.get("vs_boto3") or p["vs_boto3"]
        pays = None if ratio is None else ratio >= SNAPSTART_MIN_RATIO
        out[key] = {"init_ms": init, "vs_boto3": ratio, "pays": pays, "in_template": key in SNAPSTART,
                    "agrees": None if pays is None else pays == (key in SNAPSTART)}
    return out


def _render(res: dict[str, Any]) -> str:
    rows = []
    for key, p in res["handlers"].items():
        if p.get("ms") is None:
            rows.append([key, None, None, None, None, p.get("note", "")])
            continue
        goal = "-" if p["meets_goal"] is None else ("ok" if p["meets_goal"] else "MISSED")
        if p["forbidden"]:
            goal = "FORBIDDEN " + ",".join(p["forbidden"])
        rows.append([key, p["ms"], p["wall_minus_bare_ms"], p["vs_boto3"], goal, " ".join(p["heavy_modules"])])
    head = (f"3. Cold start: import time in a fresh interpreter, median of {res['repeats']} "
            f"(python {res['python']}; bare interpreter {res['bare_interpreter_ms']} ms)")
    out = head + "\n" + table(["module", "import ms", "wall-bare ms", "x boto3", f"<= {GOAL_RATIO}x", "heavy imports"],
                              rows, digits=1)
    verdicts = res.get("snapstart") or {}
    heavy = [f"{k} {v['init_ms']:.0f} ms ({v['vs_boto3']:.1f}x)" for k, v in verdicts.items() if v["pays"]]
    disagree = [k for k, v in verdicts.items() if v["agrees"] is False]
    out += (f"\nSnapStart (init >= {SNAPSTART_MIN_RATIO:g}x boto3, first-use SDKs included): pays for "
            + (", ".join(heavy) or "none") + f"; template.yaml: {', '.join(SNAPSTART)}"
            + (f"; DISAGREES for {', '.join(disagree)}" if disagree else "; agrees"))
    return out
