"""The agent step end to end: the real ``anthropic`` SDK over real HTTP to a stub Messages API on loopback.

Nothing between the SDK and the socket is mocked, so these tests prove what is actually sent (body and
headers), how each API failure surfaces as StepFailed / StepRetryable, and that the SDK never retries
on its own (one HTTP request per call: Step Functions owns retries).
"""

from __future__ import annotations

import inspect
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import httpx2
import pytest
from moto import mock_aws

from boternity.errors import StepError, StepFailed, StepRetryable
from boternity.executors import agent
from boternity.executors.agent import make_client, request_correction, resolve_api_key, run_agent
from boternity.executors.bots import Bot
from tests.support.anthropic_stub import AnthropicStub

API_KEY = "sk-ant-test-0123456789abcdef"

WRITER = Bot(
    slug="writer",
    display_name="Writer",
    model="claude-haiku-4-5",
    temperature=0.4,
    max_tokens=1500,
    system_prompt="You write crisp prose.",
)
GHOST = Bot("ghost", found=False)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The developer's own key or endpoint must never leak into (or out through) a test.
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_SECRET_NAME",
                 "ANTHROPIC_PROFILE", "ANTHROPIC_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    agent._clients.clear()
    yield
    agent._clients.clear()


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as running:
        yield running


@pytest.fixture
def client(stub: AnthropicStub) -> anthropic.Anthropic:
    return make_client(api_key=API_KEY, base_url=stub.base_url, timeout=5.0)


def sent(stub: AnthropicStub, index: int = -1) -> dict[str, Any]:
    return stub.requests[index].json


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- success


def test_success_sends_the_bots_settings_and_returns_the_reply(stub: AnthropicStub,
                                                               client: anthropic.Anthropic) -> None:
    stub.reply_text("Step Functions, in short.", input_tokens=31, output_tokens=9)

    out = run_agent({"bot": "writer", "prompt": "Explain Step Functions."}, bot=WRITER, client=client)

    assert out == {
        "response": "Step Functions, in short.",
        "model": "claude-haiku-4-5",
        "bot": "writer",
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 31, "output_tokens": 9},
    }
    assert len(stub.requests) == 1
    request = stub.requests[0]
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.json == {
        "model": "claude-haiku-4-5",
        "max_tokens": 1500,
        "temperature": 0.4,
        "system": "You write crisp prose.",
        "messages": [{"role": "user", "content": "Explain Step Functions."}],
    }
    assert request.api_key == API_KEY
    assert request.headers["anthropic-version"]
    assert request.headers["x-stainless-retry-count"] == "0"


def test_step_config_overrides_the_bot(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.reply_text("ok", model="claude-opus-4-1-20250805")
    config = {"bot": "writer", "prompt": "Hi", "model": "claude-opus-4-1", "system": "Be terse.",
              "max_tokens": 64, "temperature": 0}

    out = run_agent(config, bot=WRITER, client=client, default_model="claude-default")

    assert sent(stub) == {
        "model": "claude-opus-4-1",
        "max_tokens": 64,
        "temperature": 0.0,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    # The reply's model is reported (the API resolves aliases to dated versions).
    assert out["model"] == "claude-opus-4-1-20250805"


def test_missing_bot_uses_the_defaults_and_sends_no_system_or_temperature(stub: AnthropicStub,
                                                                         client: anthropic.Anthropic) -> None:
    stub.reply_text("hello")

    out = run_agent({"bot": "ghost", "prompt": "Hi"}, bot=GHOST, client=client, default_model="claude-default")

    assert sent(stub) == {
        "model": "claude-default",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert out["bot"] == "ghost"


def test_default_model_is_claude_sonnet_4_6_unless_the_environment_says_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTERNITY_DEFAULT_MODEL", raising=False)
    assert agent.default_model_from_env() == "claude-sonnet-4-6"

    monkeypatch.setenv("BOTERNITY_DEFAULT_MODEL", "claude-haiku-4-5")
    assert agent.default_model_from_env() == "claude-haiku-4-5"


def test_only_text_blocks_make_the_response(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.reply_blocks([
        {"type": "thinking", "thinking": "let me think", "signature": "sig"},
        {"type": "text", "text": "Part one. "},
        {"type": "text", "text": "Part two."},
    ])

    assert run_agent({"bot": "w", "prompt": "Hi"}, bot=WRITER, client=client)["response"] == "Part one. Part two."


def test_correction_is_appended_to_the_prompt(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.reply_text('{"ok": true}')

    run_agent({"bot": "w", "prompt": "Return the items as JSON."}, bot=WRITER, client=client,
              correction="  Reply with only a JSON object, no prose.  ")

    assert sent(stub)["messages"] == [{
        "role": "user",
        "content": "Return the items as JSON.\n\nA previous attempt failed. Follow this corrected approach:\n"
                   "Reply with only a JSON object, no prose.",
    }]


def test_a_prompt_rendered_to_a_json_value_is_sent_as_json_text(stub: AnthropicStub,
                                                                client: anthropic.Anthropic) -> None:
    stub.reply_text("ok")

    run_agent({"bot": "w", "prompt": {"items": [1, 2]}}, bot=WRITER, client=client)

    assert json.loads(sent(stub)["messages"][0]["content"]) == {"items": [1, 2]}


def test_numbers_rendered_as_strings_are_accepted(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.reply_text("ok")

    run_agent({"bot": "w", "prompt": "Hi", "max_tokens": "256", "temperature": "0.2"}, bot=WRITER, client=client)

    assert (sent(stub)["max_tokens"], sent(stub)["temperature"]) == (256, 0.2)


def test_request_correction_asks_once_and_returns_the_text(stub: AnthropicStub,
                                                           client: anthropic.Anthropic) -> None:
    stub.reply_text("  Ask for a JSON object only.\n")

    text = request_correction(client, model="claude-haiku-4-5", prompt="## Workflow Step Self-Correction ...")

    assert text == "Ask for a JSON object only."
    assert sent(stub) == {
        "model": "claude-haiku-4-5",
        "max_tokens": agent.CORRECTION_MAX_TOKENS,
        "messages": [{"role": "user", "content": "## Workflow Step Self-Correction ..."}],
    }


# --------------------------------------------------------------------------- output: json


@pytest.mark.parametrize("fenced", [False, True], ids=["plain", "fenced"])
def test_json_output_is_parsed_into_response(stub: AnthropicStub, client: anthropic.Anthropic,
                                             fenced: bool) -> None:
    stub.reply_json({"title": "Hi", "tags": ["a", "b"]}, fenced=fenced)

    out = run_agent({"bot": "w", "prompt": "JSON please", "output": "json"}, bot=WRITER, client=client)

    assert out["response"] == {"title": "Hi", "tags": ["a", "b"]}
    assert '"title": "Hi"' in out["text"]


def test_a_reply_that_is_not_json_fails_with_an_excerpt(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.reply_text("Sure! Here is what you asked for: " + "blah " * 100)

    with pytest.raises(StepFailed) as caught:
        run_agent({"bot": "w", "prompt": "JSON please", "output": "json"}, bot=WRITER, client=client)

    err = caught.value
    assert err.code == "agent.invalid_json"
    assert err.details["excerpt"].startswith("Sure! Here is what you asked for: blah")
    assert len(err.details["excerpt"]) == 200 + len("...")
    assert len(stub.requests) == 1


def test_json_cut_off_at_max_tokens_says_so(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.reply_text('{"items": [1, 2, 3', stop_reason="max_tokens")

    with pytest.raises(StepFailed, match="cut off at max_tokens"):
        run_agent({"bot": "w", "prompt": "JSON please", "output": "json"}, bot=WRITER, client=client)


# --------------------------------------------------------------------------- API errors


def test_rate_limit_is_retryable_and_the_sdk_does_not_retry_by_itself(stub: AnthropicStub,
                                                                      client: anthropic.Anthropic) -> None:
    stub.rate_limited(retry_after=7, message="Number of request tokens has exceeded your per-minute rate limit")
    stub.reply_text("second time lucky")
    config = {"bot": "writer", "prompt": "Hi"}

    with pytest.raises(StepRetryable) as caught:
        run_agent(config, bot=WRITER, client=client)

    err = caught.value
    assert err.code == "agent.rate_limited"
    assert err.message.startswith("Anthropic API rate limit (429) for model claude-haiku-4-5: Number of request "
                                  "tokens has exceeded your per-minute rate limit")
    assert err.details["retry_after"] == 7
    assert err.details["request_id"].startswith("req_stub_")
    assert len(stub.requests) == 1  # the SDK gave up at once: Step Functions' Retry decides what's next

    assert run_agent(config, bot=WRITER, client=client)["response"] == "second time lucky"
    assert len(stub.requests) == 2


def test_a_callers_client_with_retries_still_makes_one_request(stub: AnthropicStub) -> None:
    eager = anthropic.Anthropic(api_key=API_KEY, base_url=stub.base_url, max_retries=3, timeout=5.0)
    stub.error(500, "Internal server error")
    stub.error(500, "Internal server error")

    with pytest.raises(StepRetryable):
        run_agent({"bot": "w", "prompt": "Hi"}, bot=WRITER, client=eager)

    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_code", "expected_class", "code", "what"),
    [
        (400, None, StepFailed, "agent.bad_request", "bad request (400)"),
        (401, None, StepFailed, "agent.auth", "authentication failure (401)"),
        (403, None, StepFailed, "agent.auth", "permission denied (403)"),
        (404, None, StepFailed, "agent.not_found", "not found (404)"),
        (413, None, StepFailed, "agent.request_too_large", "request too large (413)"),
        (418, None, StepFailed, "agent.api_error", "error (418)"),
        (429, "contract_spend_limit_reached", StepFailed, "agent.billing", "contract spend limit reached (429)"),
        (500, None, StepRetryable, "agent.server_error", "server error (500)"),
        (502, None, StepRetryable, "agent.server_error", "server error (502)"),
        (503, None, StepRetryable, "agent.server_error", "service unavailable (503)"),
        (529, None, StepRetryable, "agent.overloaded", "overloaded (529)"),
    ],
)
def test_api_errors_are_classified_and_never_retried_by_the_sdk(
    stub: AnthropicStub, client: anthropic.Anthropic, status: int, error_code: str | None,
    expected_class: type[StepError], code: str, what: str,
) -> None:
    stub.error(status, "what the API said", error_code=error_code)

    with pytest.raises(StepError) as caught:
        run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER, client=client)

    err = caught.value
    assert type(err) is expected_class
    assert err.code == code
    assert f"Anthropic API {what} for model claude-haiku-4-5: what the API said" in err.message
    assert err.details["status"] == status
    assert isinstance(err.__cause__, anthropic.APIStatusError)
    assert len(stub.requests) == 1


def test_the_api_key_never_appears_in_an_error_message(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    # Some proxies echo what they rejected; the message must still not carry the key.
    stub.error(401, f"invalid x-api-key: {API_KEY}")

    with pytest.raises(StepFailed) as caught:
        run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER, client=client)

    assert caught.value.code == "agent.auth"
    assert API_KEY not in str(caught.value)
    assert "invalid x-api-key: ***" in caught.value.message
    assert "ANTHROPIC_API_KEY" in caught.value.message  # says what to check


def test_a_reply_slower_than_the_client_timeout_is_a_retryable_timeout(stub: AnthropicStub) -> None:
    impatient = make_client(api_key=API_KEY, base_url=stub.base_url, timeout=0.5)
    stub.slow(3.0)

    started = time.monotonic()
    with pytest.raises(StepRetryable) as caught:
        run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER, client=impatient)
    elapsed = time.monotonic() - started

    assert caught.value.code == "agent.timeout"
    assert "timed out after 0.5s" in caught.value.message
    assert isinstance(caught.value.__cause__, anthropic.APITimeoutError)
    assert elapsed < 2.5
    assert len(stub.requests) == 1


def test_nobody_listening_is_a_retryable_connection_error() -> None:
    port = closed_port()
    unreachable = make_client(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", timeout=2.0)

    with pytest.raises(StepRetryable) as caught:
        run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER, client=unreachable)

    assert caught.value.code == "agent.connection"
    assert "Could not reach the Anthropic API (127.0.0.1)" in caught.value.message


def test_every_exception_class_the_sdk_exports_has_a_deliberate_rule() -> None:
    exported = {
        obj for name in anthropic.__all__
        if inspect.isclass(obj := getattr(anthropic, name, None)) and issubclass(obj, anthropic.APIError)
    }
    assert anthropic.RateLimitError in exported  # the walk sees the SDK's classes at all

    unmapped = sorted(cls.__name__ for cls in exported if cls not in agent.ERROR_RULES)

    assert not unmapped, f"decide retryable or not for: {unmapped} (add them to agent.ERROR_RULES)"


def test_every_status_error_class_classifies_by_its_rule() -> None:
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    for cls, rule in agent.ERROR_RULES.items():
        status = getattr(cls, "status_code", None)
        if not (isinstance(status, int) and issubclass(cls, anthropic.APIStatusError)):
            continue
        response = httpx2.Response(status, request=request, json={"error": {"message": "m"}})
        err = agent.classify_error(cls("m", response=response, body={"error": {"message": "m"}}), model="x")
        assert (err.code, err.retryable) == (rule.code, rule.retryable), cls.__name__
        # Retrying is only ever the answer to throttling, time-outs and the server's own trouble.
        assert not err.retryable or status in (408, 429, 499) or status >= 500, cls.__name__


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"bot": "w", "prompt": ""}, "prompt"),
        ({"bot": "w"}, "prompt"),
        ({"bot": "w", "prompt": "Hi", "output": "yaml"}, "output"),
        ({"bot": "w", "prompt": "Hi", "max_tokens": "lots"}, "max_tokens"),
        ({"bot": "w", "prompt": "Hi", "max_tokens": 0}, "max_tokens"),
        ({"bot": "w", "prompt": "Hi", "temperature": "warm"}, "temperature"),
        ({"bot": "w", "prompt": "Hi", "model": 4}, "model"),
    ],
)
def test_bad_rendered_config_fails_before_any_request(stub: AnthropicStub, client: anthropic.Anthropic,
                                                      config: dict[str, Any], field: str) -> None:
    with pytest.raises(StepFailed) as caught:
        run_agent(config, bot=WRITER, client=client)

    assert caught.value.code == "agent.invalid_config"
    assert caught.value.details["field"] == field
    assert stub.requests == []


def test_a_bot_for_another_provider_is_refused(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    gpt = Bot("gpt", model="gpt-4o", provider="openai")

    with pytest.raises(StepFailed) as caught:
        run_agent({"bot": "gpt", "prompt": "Hi"}, bot=gpt, client=client)

    assert caught.value.code == "agent.unsupported_provider"
    assert stub.requests == []


# --------------------------------------------------------------------------- API key


def test_no_key_anywhere_fails_saying_how_to_set_one(stub: AnthropicStub) -> None:
    with pytest.raises(StepFailed) as caught:
        run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER)

    assert caught.value.code == "agent.no_api_key"
    assert "ANTHROPIC_API_KEY" in caught.value.message and "ANTHROPIC_SECRET_NAME" in caught.value.message


def test_key_and_base_url_come_from_the_environment(stub: AnthropicStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
    stub.reply_text("one").reply_text("two")

    run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER)
    run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER)

    assert [r.api_key for r in stub.requests] == ["sk-ant-from-env", "sk-ant-from-env"]
    assert make_client() is make_client()  # one client (and connection pool) per process
    assert make_client().max_retries == 0


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Powertools keeps its provider (and a 300 s value cache) per process: start each test clean.
    parameters.clear_caches()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")
    parameters.clear_caches()


@pytest.mark.parametrize("secret_string", ["sk-ant-from-secret\n", '{"api_key": "sk-ant-from-secret"}'],
                         ids=["plain", "json"])
def test_key_from_secrets_manager(secrets_manager: Any, monkeypatch: pytest.MonkeyPatch,
                                  secret_string: str) -> None:
    secrets_manager.create_secret(Name="boternity/anthropic", SecretString=secret_string)
    monkeypatch.setenv("ANTHROPIC_SECRET_NAME", "boternity/anthropic")

    assert resolve_api_key() == "sk-ant-from-secret"


def test_an_agent_step_in_the_cloud_sends_the_secrets_key(secrets_manager: Any, stub: AnthropicStub,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    secrets_manager.create_secret(Name="boternity/anthropic", SecretString='{"api_key": "sk-ant-cloud"}')
    monkeypatch.setenv("ANTHROPIC_SECRET_NAME", "boternity/anthropic")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
    stub.reply_text("hello from the cloud")

    out = run_agent({"bot": "writer", "prompt": "Hi"}, bot=WRITER)

    assert out["response"] == "hello from the cloud"
    assert stub.requests[0].api_key == "sk-ant-cloud"


def test_the_env_key_wins_over_the_secret(secrets_manager: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets_manager.create_secret(Name="boternity/anthropic", SecretString="sk-ant-from-secret")
    monkeypatch.setenv("ANTHROPIC_SECRET_NAME", "boternity/anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-local")

    assert resolve_api_key() == "sk-ant-local"


def test_a_missing_secret_is_no_api_key(secrets_manager: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_SECRET_NAME", "boternity/nope")

    with pytest.raises(StepFailed) as caught:
        resolve_api_key()

    assert caught.value.code == "agent.no_api_key"
    assert "boternity/nope" in caught.value.message and "ResourceNotFoundException" in caught.value.message


def test_a_json_secret_without_api_key_fails_without_echoing_it(secrets_manager: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    secrets_manager.create_secret(Name="boternity/anthropic", SecretString='{"key": "sk-ant-misnamed"}')
    monkeypatch.setenv("ANTHROPIC_SECRET_NAME", "boternity/anthropic")

    with pytest.raises(StepFailed) as caught:
        resolve_api_key()

    assert caught.value.code == "agent.no_api_key"
    assert '"api_key"' in caught.value.message
    assert "sk-ant-misnamed" not in str(caught.value)


def test_an_unreachable_secrets_manager_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities import parameters

    port = closed_port()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ANTHROPIC_SECRET_NAME", "boternity/anthropic")
    parameters.clear_caches()
    try:
        with pytest.raises(StepRetryable) as caught:
            resolve_api_key()
    finally:
        parameters.clear_caches()

    assert caught.value.code == "agent.secret_unavailable"
    assert "boternity/anthropic" in caught.value.message
