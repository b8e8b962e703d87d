"""Terminal escapes: whatever a workflow file, a payload or a run record carries, the CLI prints
control characters as visible ``\\uXXXX`` escapes, never raw (a raw ESC can clear the screen,
rewrite lines or retitle the window)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from boternity.cli.main import main

if TYPE_CHECKING:
    from pathlib import Path

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
ESCAPES = {
    "clear-screen": "\x1b[2J\x1b[H",
    "window-title": "\x1b]0;pwned\x07",
    "c1-csi": "\x9b31m",
    "backspaces-and-cr": "ok\b\b\rfake",
    "delete": "\x7f",
}


@pytest.mark.parametrize("sequence", list(ESCAPES.values()), ids=list(ESCAPES))
def test_validate_shows_a_hostile_step_id_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  sequence: str) -> None:
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps({"name": "esc", "steps": [{"id": "ok" + sequence, "type": "wait",
                                                         "config": {"seconds": 0}}]}))
    assert main(["validate", str(wf)]) == 1
    out = capsys.readouterr()
    assert not RAW_CONTROL.search(out.out + out.err)
    shown = "ok" + "".join(f"\\u{ord(c):04x}" if RAW_CONTROL.match(c) else c for c in sequence)
    assert f"step '{shown}': field 'id'" in out.err


def test_run_shows_an_approval_prompt_from_a_payload_escaped(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps({"name": "esc-run", "steps": [
        {"id": "review", "type": "approval", "config": {"prompt": "Ship {{ trigger.what }}?"}}]}))
    hostile = "\x1b[2J\x1b]0;pwned\x07\x9b31m"
    assert main(["run", str(wf), "--input", json.dumps({"what": hostile}), "--approve", "--json"]) == 0
    out = capsys.readouterr()
    assert not RAW_CONTROL.search(out.out + out.err)
    assert "Ship \\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m?" in out.err
    assert json.loads(out.out)["output"]["review"]["output"]["approved"] is True   # --json stays JSON
