"""Independent checkers written for node (asl-validator, Mermaid's parser), each a small package in
``tests/support/<name>/`` with its lock file: installed with ``npm ci`` on first use, then run as
``node <script>`` reading stdin and printing JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SUPPORT = Path(__file__).resolve().parent


def node_checker(folder: str, package: str, script: str, *, what: str) -> Any:
    """A function sending text to ``node <script>`` in ``tests/support/<folder>`` and returning its
    JSON answer; skips the test (saying ``what`` needs node) where node or npm is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(f"node and npm are needed to run {what}")
    cwd = SUPPORT / folder
    if not (cwd / "node_modules" / package).is_dir():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=cwd, check=True, timeout=600)

    def check(text: str) -> Any:
        out = subprocess.run(["node", script], cwd=cwd, input=text, capture_output=True, text=True,
                             timeout=120, check=True)
        return json.loads(out.stdout)

    return check
