"""The attacker's second pass over the run-time side: different files, the same classes as the first.

Each finding of the second pass (docs/second-pass-runtime.md) has a test here that failed before its
fix, and so does each case that held, so the corpus keeps both:

* secrets: names the first pass's checks let through, and secret values leaking into records in a
  form the masking did not recognise (percent-encoded in the http step's ``url``);
* the agent step against a hostile Anthropic endpoint (loopback stub): a trickled reply and an
  endless body are bounded by the client's timeout and a size cap, with the step's own error.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from boternity.cli.main import main
from boternity.executors.http import run_http
from boternity.expressions.templates import render_value
from boternity.runtime.context import Secrets
from boternity.runtime.secrets import lookup_secret, secret_name_problem
from tests.support.http_target import HttpTarget

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


# ---------------------------------------------------------------------------- secret names


@pytest.mark.parametrize("name", [
    pytest.param("TOKEN\n", id="trailing-newline"),
    pytest.param("AWS\n", id="reserved-with-trailing-newline"),
    pytest.param("PREFIX\n", id="the-prefix-setting-with-trailing-newline"),
    pytest.param("TOKEN\r", id="trailing-carriage-return"),
    pytest.param("TOKEN ", id="trailing-space"),
    pytest.param("TOKEN\u200b", id="trailing-zero-width-space"),
    pytest.param("TOKEŃ", id="non-ascii-letter"),
    pytest.param("ＴＯＫＥＮ", id="fullwidth-letters"),
    pytest.param("TOKEN.value", id="dot"),
    pytest.param("workflows/../api", id="dot-dot-into-another-path"),
])
def test_a_name_with_anything_after_its_last_valid_character_is_no_secret_name(name: str) -> None:
    assert secret_name_problem(name) is not None
    assert lookup_secret(name) is None


def test_validate_refuses_a_secret_name_ending_in_a_newline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {
        "name": "newline",
        "triggers": [{"type": "webhook", "path": "/in", "auth": {"type": "bearer_token", "secret_name": "TOKEN\n"}}],
        "steps": [{"id": "call", "type": "http",
                   "config": {"url": "https://example.com/", "headers": {"X": "{{ secrets['TOKEN\\n'] }}"}}}],
    }
    path = tmp_path / "newline.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))

    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "2 errors" in err, err
    assert "field 'triggers[0].auth.secret_name': 'TOKEN\\n' is not a secret name" in err, err
    assert "step 'call': field 'config.headers': '{{ secrets['TOKEN\\n'] }}': 'TOKEN\\n' is not a secret name" in err, err


def test_secrets_set_refuses_a_name_ending_in_a_newline(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", None)   # had it read the value, this would fail differently
    assert main(["secrets", "set", "TOKEN\n", "--api", "http://127.0.0.1:9"]) == 2
    assert "'TOKEN\\n' is not a secret name" in capsys.readouterr().err


# ---------------------------------------------------------------------------- masking


# A realistic token (base64 with "+", "/" and "=") and one with every character a URL or a JSON
# string writes differently.
TOKENS = ["ab+cd/ef==", 'p@ss/w+rd=1&x y"\\é']


def _masked_strings(config: dict[str, Any], value: str) -> list[str]:
    """Every string (keys too) of the http step's output as the run records keep it: rendered, sent, masked."""
    secrets = Secrets(lambda name: value)
    output = secrets.mask(run_http(render_value(config, {"secrets": secrets}), allow_private_network=True))
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                found.append(str(key))
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            found.append(node)

    walk(output)
    return found


def _forms(value: str) -> list[str]:
    from urllib.parse import quote, quote_plus

    return [value, quote(value, safe=""), quote_plus(value, safe=""), quote(value, safe="!#$%&'()*+,/:;=?@[]~"),
            json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]]


@pytest.mark.parametrize("value", TOKENS, ids=["base64-token", "every-special-character"])
@pytest.mark.parametrize("config", [
    pytest.param({"query": {"key": "{{ secrets.T }}"}}, id="query-field"),
    pytest.param({"url_suffix": "?key={{ secrets.T }}"}, id="query-in-the-url"),
    pytest.param({"url_suffix": "/{{ secrets.T }}"}, id="path-of-the-url"),
    pytest.param({"headers": {"Authorization": "Bearer {{ secrets.T }}"}}, id="header-echoed-in-the-body"),
    pytest.param({"method": "POST", "body": {"key": "{{ secrets.T }}"}}, id="json-body-echoed-as-text"),
])
def test_a_secret_reaches_no_record_in_any_encoding_the_step_itself_produced(
        target: HttpTarget, config: dict[str, Any], value: str) -> None:
    config = dict(config)
    config["url"] = target.url + "/echo" + config.pop("url_suffix", "")
    strings = _masked_strings(config, value)

    leaked = sorted({form for form in _forms(value) for text in strings if form in text})
    assert leaked == [], strings
    assert any("***" in text for text in strings)


def test_a_secret_the_target_sends_back_as_a_json_key_is_masked(target: HttpTarget) -> None:
    from urllib.parse import quote

    value = TOKENS[0]
    body = quote(json.dumps({value: {"nested " + value: [value]}}), safe="")
    strings = _masked_strings({"url": f"{target.url}/text?type=application/json&body={body}",
                               "headers": {"Authorization": "Bearer {{ secrets.T }}"}}, value)

    assert [text for text in strings if value in text] == []
    assert strings.count("***") >= 1 and "nested ***" in strings
