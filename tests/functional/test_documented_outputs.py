"""docs/step-outputs.md tells the truth: every step type's real output has exactly the keys the
page's example shows (a run of tests/fixtures/outputs/all-types.yaml, with `boternity run`, against
local stubs for the Anthropic API and an HTTP target)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.support.anthropic_stub import AnthropicStub
from tests.support.http_target import HttpTarget

DOC = ROOT / "docs" / "step-outputs.md"
FIXTURE = ROOT / "tests" / "fixtures" / "outputs" / "all-types.yaml"

# The documented example -> the step of the fixture that shows it.
STEP_OF = {"agent": "summarize", "agent-json": "score", "skill-prompt": "format", "skill-wasm": "wrap",
           "code": "calc", "http": "fetch", "wait": "pause", "approval": "review", "sub_workflow": "publish",
           "for_each": "each", "conditional": "route", "loop": "again"}


def documented() -> dict[str, Any]:
    blocks = re.findall(r"<!-- output: ([\w-]+) -->\s*```json\n(.*?)```", DOC.read_text(), flags=re.S)
    return {name: json.loads(text) for name, text in blocks}


@pytest.fixture(scope="module")
def outputs() -> dict[str, Any]:
    with AnthropicStub() as llm, HttpTarget() as web:
        llm.reply_text("Three papers.")
        llm.reply_text('{"score": 3}')
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": llm.base_url}
        proc = subprocess.run(
            [sys.executable, "-m", "boternity.cli.main", "run", str(FIXTURE), "--json", "--approve",
             "--bots", str(EXAMPLES / "bots"), "--skills", str(EXAMPLES / "skills"),
             "--input", json.dumps({"url": f"{web.url}/echo", "items": [1, 2]})],
            capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {k: v["output"] for k, v in json.loads(proc.stdout)["output"].items()}


def test_every_step_type_is_documented_once():
    assert set(documented()) == set(STEP_OF)


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted(value)
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("example", sorted(STEP_OF))
def test_the_real_output_has_the_documented_keys(outputs, example):
    doc, real = documented()[example], outputs[STEP_OF[example]]
    assert shape(real) == shape(doc)
    if example == "sub_workflow":
        # The child's records: {status, output}, the output being the child step's own.
        assert shape(real["post"]) == shape(doc["post"]) == ["output", "status"]
        assert shape(real["post"]["output"]) == shape(doc["post"]["output"])
