"""Hostile workflow files (issue #13, findings 2 and 3): alias bombs, deep nesting, huge numbers,
recursive aliases, oversized, non-UTF-8 and malformed files, and a step id carrying a terminal
escape sequence. Each is refused with the exact error, by ``boternity validate`` in a subprocess
whose peak memory and time are measured (test_hostile_workflow_bodies.py sends the same corpus to
``PUT /workflows/{name}``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.support.hostile_corpus import WORKFLOWS, HostileWorkflow

if TYPE_CHECKING:
    from pathlib import Path

PEAK_MB_MAX = 300       # boternity validate of a small file peaks near 40 MB
SECONDS_MAX = 30        # generous: proves a bound, not a speed
# Without the limits these inputs take gigabytes; the address-space cap makes such a regression
# fail as a MemoryError in the child instead of swapping the machine.
ADDRESS_SPACE_CAP = 2 * 1024**3

# Linux counts a child's peak RSS from before its exec, i.e. from the (large) pytest process it
# was forked from; so a tiny launcher forks the CLI and reports that grandchild's own peak.
LAUNCHER = """
import json, os, resource, subprocess, sys
cap, report = int(sys.argv[1]), sys.argv[2]
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
proc = subprocess.Popen(sys.argv[3:])
_, status, usage = os.wait4(proc.pid, 0)
with open(report, "w") as f:
    json.dump({"exit_code": os.waitstatus_to_exitcode(status), "peak_kb": usage.ru_maxrss}, f)
"""


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    peak_mb: float
    seconds: float


def run_cli(*args: str, timeout: float = 90.0) -> CliResult:
    """``boternity ARGS`` in a fresh interpreter, with its own peak RSS (via LAUNCHER)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            launcher = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(ADDRESS_SPACE_CAP), report,
                 sys.executable, "-m", "boternity.cli.main", *args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                launcher.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)   # the launcher and the CLI it started
                launcher.wait()
        seconds = time.monotonic() - t0
        outcome = {"exit_code": -9, "peak_kb": 0}   # killed at the timeout: no report
        if os.path.exists(report):
            with open(report) as f:
                outcome = json.load(f)
        with open(out_path, "rb") as f_out, open(err_path, "rb") as f_err:
            stdout, stderr = f_out.read().decode(errors="replace"), f_err.read().decode(errors="replace")
        return CliResult(outcome["exit_code"], stdout, stderr, outcome["peak_kb"] / 1024, seconds)


def ids(case: HostileWorkflow) -> str:
    return case.id


def test_the_corpus_has_the_shapes_the_issue_names():
    by_id = {c.id: c for c in WORKFLOWS}
    assert len(by_id["bomb-474-bytes"].content) == 474
    assert by_id["yaml-flow-100000-deep"].content.count(b"[") == 100_000
    assert len(by_id["oversized-file"].content) > 1024 * 1024


@pytest.mark.parametrize("case", WORKFLOWS, ids=ids)
def test_boternity_validate_refuses_with_one_precise_error(case: HostileWorkflow, tmp_path: Path):
    f = tmp_path / case.filename
    f.write_bytes(case.content)
    r = run_cli("validate", str(f))
    assert r.exit_code == 1, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith(f"{f}: "), r.stderr
    assert case.cli_says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "\x1b" not in r.stderr
    assert r.peak_mb < PEAK_MB_MAX, f"peak {r.peak_mb:.0f} MB"
    assert r.seconds < SECONDS_MAX


def test_a_good_file_next_to_a_hostile_one_is_still_checked(tmp_path: Path):
    bomb = next(c for c in WORKFLOWS if c.id == "bomb-474-bytes")
    (tmp_path / "bomb.yaml").write_bytes(bomb.content)
    (tmp_path / "good.yaml").write_text("name: good\nsteps:\n  - {id: a, type: wait, config: {seconds: 0}}\n")
    r = run_cli("validate", str(tmp_path / "bomb.yaml"), str(tmp_path / "good.yaml"))
    assert r.exit_code == 1
    assert f"{tmp_path / 'good.yaml'}: ok (good, 1 steps)" in r.stdout


def test_boternity_run_refuses_the_bomb_before_starting_anything(tmp_path: Path):
    bomb = next(c for c in WORKFLOWS if c.id == "bomb-474-bytes")
    (tmp_path / "wf.yaml").write_bytes(bomb.content)
    r = run_cli("run", str(tmp_path / "wf.yaml"))
    assert r.exit_code == 2   # run: an invalid workflow is bad input (cli/main.py)
    assert "expands to more than 100,000 nodes" in r.stderr and "Traceback" not in r.stderr
    assert "on the local engine" not in r.stderr
    assert r.peak_mb < PEAK_MB_MAX
