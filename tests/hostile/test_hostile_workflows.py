"""Hostile workflow files (issue #13, findings 2 and 3): alias bombs, deep nesting, huge numbers,
recursive aliases, oversized, non-UTF-8 and malformed files, and a step id carrying a terminal
escape sequence. Each is refused with the exact error, by ``boternity validate`` in a subprocess
whose peak memory and time are measured (test_hostile_workflow_bodies.py sends the same corpus to
``PUT /workflows/{name}``).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.support.hostile_corpus import WORKFLOWS, HostileWorkflow

if TYPE_CHECKING:
    from pathlib import Path

PEAK_MB_MAX = 300       # boternity validate of a small file peaks near 60 MB
SECONDS_MAX = 30        # generous: proves a bound, not a speed
# Without the limits these inputs take gigabytes; the address-space cap makes such a regression
# fail as a MemoryError in the child instead of swapping the machine.
ADDRESS_SPACE_CAP = 2 * 1024**3


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    peak_mb: float
    seconds: float


def run_cli(*args: str, timeout: float = 90.0) -> CliResult:
    """``boternity ARGS`` in a fresh interpreter; wait4 gives this child's own peak RSS."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "boternity.cli.main", *args], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, preexec_fn=cap)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)   # reaped here, not by Popen
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return CliResult(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                         usage.ru_maxrss / 1024, seconds)


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
