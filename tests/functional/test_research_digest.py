"""examples/research-digest.yaml end to end with `boternity run`: HTTP, a WASM skill, an agent over
the real Anthropic SDK, a prompt skill, an approval and a sub-workflow, against local stubs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES
from tests.support.anthropic_stub import AnthropicStub
from tests.support.http_target import HttpTarget


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "boternity.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, cwd=EXAMPLES.parent)


@pytest.fixture
def stubs():
    with AnthropicStub() as llm, HttpTarget() as web:
        yield llm, web


@pytest.mark.parametrize("decision", ["--approve", "--reject"])
def test_research_digest_runs_end_to_end(stubs, tmp_path, decision):
    llm, web = stubs
    llm.reply_text("Three papers study LLM agents, evals and retrieval.")
    payload = {"source_url": f"{web.url}/echo?topic=llm", "publish_url": f"{web.url}/echo"}
    env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": llm.base_url,
           "BOTERNITY_BLOB_DIR": str(tmp_path / "blobs")}
    proc = run_cli("run", "examples/research-digest.yaml", "--input", json.dumps(payload), "--json", decision,
                   env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    out = report["output"]
    assert report["run"]["status"] == "SUCCEEDED"
    assert out["fetch"]["output"]["status"] == 200
    assert out["wrap"]["output"]["output"]["skill"] == "wrap"                      # ran in wasmtime
    assert out["summarize"]["output"]["response"].startswith("Three papers")        # via the SDK
    assert llm.requests[0].json["system"].startswith("You are a careful research assistant")
    assert "Summarise these items" in llm.requests[0].json["messages"][0]["content"]
    assert out["format"]["output"]["output"].startswith("# Research digest")        # prompt skill
    assert out["review"]["output"]["approved"] is (decision == "--approve")
    posts = [r for r in web.requests if r.method == "POST"]
    if decision == "--approve":
        assert out["publish"]["status"] == "completed"
        assert out["publish"]["output"]["post"]["output"]["status"] == 200          # the child workflow
        assert "Three papers" in json.loads(posts[0].body)["text"]
    else:
        assert out["publish"]["status"] == "skipped"
        assert posts == []
    steps = {s["step_id"]: s for s in report["steps"]}
    assert steps["summarize"]["status"] == "completed" and steps["summarize"]["attempts"] == 1


def test_an_invalid_workflow_exits_2_with_the_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - {id: a, type: wait, depends_on: [ghost], config: {seconds: 1}}\n")
    proc = run_cli("run", str(bad), env={})
    assert proc.returncode == 2
    assert "step 'a'" in proc.stderr and "ghost" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_input_json_exits_2(tmp_path):
    proc = run_cli("run", "examples/n-shape.yaml", "--input", "{not json", env={})
    assert proc.returncode == 2
    assert "--input is not valid JSON" in proc.stderr
