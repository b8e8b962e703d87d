"""Every offline example runs with `boternity run`, as the README promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES

OFFLINE = ["fan-out", "n-shape", "conditional-join", "loop-and-for-each"]


@pytest.mark.parametrize("name", OFFLINE)
def test_example_runs(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "boternity.cli.main", "run", str(EXAMPLES / f"{name}.yaml"), "--json",
         "--input", json.dumps({"topic": "agents", "amount": 42})],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "BOTERNITY_BLOB_DIR": str(tmp_path / "blobs")},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["run"]["status"] == "SUCCEEDED"
    assert all(s["status"] in ("completed", "skipped") for s in report["steps"])


def test_examples_cover_the_promised_shapes():
    from boternity.compiler.plan import Chains, plan_scope
    from boternity.graph import TOP, build_graph
    from boternity.validate import load_workflow

    n_shape = load_workflow(EXAMPLES / "n-shape.yaml").workflow
    g = build_graph(n_shape)
    assert isinstance(plan_scope(g.scopes[TOP], g.deps), Chains)  # not series-parallel
    kinds = {s.type for s in load_workflow(EXAMPLES / "loop-and-for-each.yaml").workflow.steps}
    assert "loop" in kinds
    assert any(s.for_each for s in load_workflow(EXAMPLES / "loop-and-for-each.yaml").workflow.steps)
    assert any(s.type == "conditional" for s in load_workflow(EXAMPLES / "conditional-join.yaml").workflow.steps)
