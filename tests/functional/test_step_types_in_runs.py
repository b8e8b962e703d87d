"""Agent and HTTP steps inside real runs: Step Functions' Retry sees the executors' error names,
self-correction feeds the previous error back to the model, secrets never reach records."""

from __future__ import annotations

import json

import pytest

from boternity.model import parse_workflow
from boternity.validate import check_workflow
from tests.support.anthropic_stub import AnthropicStub
from tests.support.http_target import HttpTarget


def wf(doc):
    w = parse_workflow(doc)
    check_workflow(w)
    return w


@pytest.fixture
def llm(monkeypatch):
    with AnthropicStub() as stub:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
        yield stub


def agent_step(**extra):
    return {"id": "ask", "type": "agent", "config": {"bot": "researcher", "prompt": "Hi {{ trigger.name }}",
                                                      **extra.pop("config", {})}, **extra}


def test_rate_limit_is_retried_by_step_functions_then_succeeds(engine, llm):
    llm.rate_limited(retry_after=1)
    llm.reply_text("hello")
    result = engine.run(wf({"name": "ask", "steps": [agent_step()]}), {"name": "Ada"}, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["ask"]["output"]["response"] == "hello"
    assert len(llm.requests) == 2, "one request per attempt: the SDK itself must not retry"
    assert {s["step_id"]: s["attempts"] for s in result.steps}["ask"] == 2


def test_bad_request_is_not_retried(engine, llm):
    llm.error(400, "messages: bad")
    result = engine.run(wf({"name": "ask", "steps": [agent_step(retry={"max_attempts": 3})]}), {"name": "A"},
                        timeout=30)
    assert result.status == "FAILED"
    assert len(llm.requests) == 1
    assert "agent.bad_request" in result.cause


def test_llm_self_correct_asks_for_a_correction_and_retries_with_it(engine, llm):
    llm.reply_text("Sure! Here you go: not json at all")
    llm.reply_text("Reply with a bare JSON object and nothing else.")
    llm.reply_json({"ok": True})
    step = agent_step(retry={"max_attempts": 2, "strategy": "llm_self_correct"}, config={"output": "json"})
    result = engine.run(wf({"name": "ask", "steps": [step]}), {"name": "A"}, timeout=30)
    assert result.status == "SUCCEEDED", result.cause
    out = result.output["ask"]["output"]
    assert out["response"] == {"ok": True} and out["attempt"] == 2
    assert out["correction"] == "Reply with a bare JSON object and nothing else."
    analysis = llm.requests[1].json["messages"][0]["content"]
    assert "## Workflow Step Self-Correction Analysis" in analysis and "agent.invalid_json" in analysis
    assert "Reply with a bare JSON object" in llm.requests[2].json["messages"][0]["content"]


def test_secrets_are_sent_but_never_stored(engine, monkeypatch):
    monkeypatch.setenv("BOTERNITY_SECRET_PARTNER_TOKEN", "s3cr3t-value-123")
    with HttpTarget() as web:
        w = wf({"name": "call", "allow_private_network": True, "steps": [
            {"id": "call", "type": "http",
             "config": {"url": f"{web.url}/echo", "headers": {"Authorization": "Bearer {{ secrets.PARTNER_TOKEN }}"}}}]})
        result = engine.run(w, timeout=30)
        assert web.requests[0].headers["authorization"] == "Bearer s3cr3t-value-123"
    assert result.status == "SUCCEEDED", result.cause
    everything = json.dumps([result.output, result.steps, result.record])
    assert "s3cr3t-value-123" not in everything
    assert "***" in json.dumps(result.output["call"]["output"]["body"])


def test_http_server_error_is_retried_and_the_final_error_names_the_status(engine):
    with HttpTarget() as web:
        w = wf({"name": "call", "allow_private_network": True, "steps": [
            {"id": "call", "type": "http", "retry": {"max_attempts": 2}, "config": {"url": f"{web.url}/status/503"}}]})
        result = engine.run(w, timeout=30)
        assert len(web.requests) == 2
    assert result.status == "FAILED"
    assert "HTTP 503" in result.cause and result.cause.startswith("step call failed (StepRetryable)")
