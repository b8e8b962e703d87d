"""`boternity run` loads the sub-workflows a workflow names from its folder, and theirs in turn."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from boternity.cli.main import _sub_workflows
from boternity.errors import BoternityError
from boternity.validate import load_workflow


def _chain(folder: Path, depth: int) -> Path:
    for i in range(depth):
        step = (f"  - {{id: s, type: sub_workflow, config: {{workflow_name: w{i + 1}}}}}\n" if i + 1 < depth
                else "  - {id: s, type: wait, config: {seconds: 0}}\n")
        (folder / f"w{i}.yaml").write_text(f"name: w{i}\nsteps:\n{step}")
    return folder / "w0.yaml"


def test_a_chain_deeper_than_the_recursion_limit_is_loaded_whole(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() + 100   # recursing per level raised RecursionError here
    top = _chain(tmp_path, depth)
    seen: dict[str, object] = {}
    _sub_workflows(load_workflow(top), tmp_path, seen)
    assert sorted(seen, key=lambda n: int(n[1:])) == [f"w{i}" for i in range(1, depth)]


def test_a_missing_sub_workflow_names_the_file_and_step(tmp_path: Path) -> None:
    top = _chain(tmp_path, 3)
    (tmp_path / "w2.yaml").unlink()
    with pytest.raises(BoternityError, match=r"w1\.yaml: step 's': sub-workflow 'w2' not found"):
        _sub_workflows(load_workflow(top), tmp_path, {})
