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
import os
import socket
import subprocess
import sys
import threading
import time
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



# ---------------------------------------------------------------------------- a hostile Anthropic endpoint


MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
           "content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 1, "output_tokens": 1}}


class HostileEndpoint:
    """A raw-socket server on 127.0.0.1 answering every request the way ``behaviour`` says.

    ``behaviour(conn)`` gets the connection after the request has been read; it may write anything,
    as slowly as it likes. Whatever it is doing stops when the test ends (the sockets are closed).
    """

    def __init__(self, behaviour: Any) -> None:
        self._behaviour = behaviour
        self._server = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.requests = 0
        self._stopped = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            self._behaviour(conn)
        except OSError:
            pass  # the client went away: what the limits are for

    def close(self) -> None:
        self._stopped.set()
        self._server.close()
        for conn in self._conns:
            conn.close()


def _reply(status: int, content_type: str, body: bytes) -> Any:
    def behaviour(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % (status, content_type.encode(), len(body)) + body)
    return behaviour


def _trickle_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    while True:
        conn.sendall(b" ")
        time.sleep(0.2)


def _trickle_headers(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while True:
        conn.sendall(b"X-A: b\r\n")
        time.sleep(0.2)


def _endless_event_stream(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
    while True:
        conn.sendall(b"event: ping\ndata: {}\n\n")
        time.sleep(0.05)


def _endless_chunked(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
    chunk = b"1," * 32768
    while True:
        conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")


@pytest.fixture
def endpoint() -> Iterator[Any]:
    opened: list[HostileEndpoint] = []

    def open_endpoint(behaviour: Any) -> HostileEndpoint:
        opened.append(HostileEndpoint(behaviour))
        return opened[-1]

    yield open_endpoint
    for server in opened:
        server.close()


def _agent_error(base_url: str, *, timeout: float = 1.5, **kwargs: Any) -> tuple[Any, float]:
    from boternity.errors import StepError
    from boternity.executors.agent import make_client, run_agent
    from boternity.executors.bots import Bot

    client = make_client(api_key="sk-test-second-pass", base_url=base_url, timeout=timeout)
    started = time.monotonic()
    with pytest.raises(StepError) as caught:
        run_agent({"prompt": "hi"}, bot=Bot(slug="b"), client=client, **kwargs)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("behaviour", [
    pytest.param(_trickle_body, id="body-a-byte-every-200ms"),
    pytest.param(_trickle_headers, id="headers-a-line-every-200ms"),
    pytest.param(_endless_event_stream, id="endless-event-stream-without-length"),
])
def test_an_endpoint_that_never_finishes_its_reply_ends_the_step_at_its_timeout(endpoint: Any, behaviour: Any) -> None:
    server = endpoint(behaviour)
    error, elapsed = _agent_error(server.base_url, timeout=1.5)

    assert (type(error).__name__, error.code) == ("StepRetryable", "agent.timeout")
    assert error.message == ("Anthropic API request for model claude-sonnet-4-6 timed out after 1.5s "
                             "(no complete reply within the client timeout)")
    assert server.requests == 1
    assert elapsed < 15   # a bound, not a benchmark: before the fix these ran until the server stopped


def test_an_endless_body_is_cut_at_the_reply_cap(endpoint: Any) -> None:
    server = endpoint(_endless_chunked)
    error, _ = _agent_error(server.base_url, timeout=30, max_reply_bytes=1024 * 1024)

    assert (type(error).__name__, error.code) == ("StepFailed", "agent.reply_too_large")
    assert error.message == ("Anthropic API reply for model claude-sonnet-4-6 is over 1048576 bytes; "
                             "stopped reading")


ENDLESS_BODY_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from tests.hostile.test_second_pass_runtime import HostileEndpoint, _endless_chunked
from boternity.errors import StepError
from boternity.executors.agent import make_client, run_agent
from boternity.executors.bots import Bot
server = HostileEndpoint(_endless_chunked)
try:
    run_agent({"prompt": "hi"}, bot=Bot(slug="b"), client=make_client(api_key="k", base_url=server.base_url, timeout=30))
except StepError as exc:
    print(exc.code)
"""


def test_an_endless_body_with_the_default_cap_stays_within_a_memory_limit() -> None:
    # In a child limited to 1.5 GB of address space: before the fix the reply filled it in 1.4 s.
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    done = subprocess.run([sys.executable, "-c", ENDLESS_BODY_CHILD, os.getcwd()], capture_output=True, text=True,
                          timeout=120, preexec_fn=limit, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "agent.reply_too_large"), done.stderr[-2000:]


DEEP = ("[" * 5000 + "]" * 5000).encode()


@pytest.mark.parametrize(("content_type", "body", "cause"), [
    pytest.param("text/plain", b"hello", "TypeError", id="text-not-json"),
    pytest.param("application/json", b'{"oops', "JSONDecodeError", id="truncated-json"),
    pytest.param("application/json", b"{}", "TypeError", id="empty-object"),
    pytest.param("application/json", b"[]", "TypeError", id="a-list"),
    pytest.param("application/json", b"null", "TypeError", id="null"),
    pytest.param("application/json", json.dumps({k: v for k, v in MESSAGE.items() if k != "usage"}).encode(),
                 "AttributeError", id="no-usage"),
    pytest.param("application/json", DEEP, "RecursionError", id="5000-levels-deep"),
])
def test_a_malformed_200_reply_fails_the_step_as_an_invalid_response(endpoint: Any, content_type: str, body: bytes,
                                                                      cause: str) -> None:
    server = endpoint(_reply(200, content_type, body))
    error, _ = _agent_error(server.base_url)

    assert (type(error).__name__, error.code) == ("StepFailed", "agent.invalid_response")
    assert error.message == ("Anthropic API reply for model claude-sonnet-4-6 is not a Messages API response "
                             f"({cause})")


def test_a_tool_use_reply_is_one_call_with_an_empty_response_not_a_loop(endpoint: Any) -> None:
    from boternity.executors.agent import make_client, run_agent
    from boternity.executors.bots import Bot

    reply = {**MESSAGE, "stop_reason": "tool_use",
             "content": [{"type": "tool_use", "id": "t1", "name": "exfiltrate", "input": {"what": "env"}}]}
    server = endpoint(_reply(200, "application/json", json.dumps(reply).encode()))
    client = make_client(api_key="k", base_url=server.base_url, timeout=5)
    out = run_agent({"prompt": "hi"}, bot=Bot(slug="b"), client=client)

    assert (out["response"], out["stop_reason"], server.requests) == ("", "tool_use", 1)


# ---------------------------------------------------------------------------- JavaScript sandbox


def _js(source: str, payload: Any = None) -> dict[str, Any]:
    from boternity.executors.code import run_code

    return run_code({"language": "javascript", "source": source, "input": payload}, base_dir=None)


@pytest.mark.parametrize(("source", "output"), [
    pytest.param('JSON.stringify = () => "not json"; 1', 1, id="stringify-returns-text"),
    pytest.param('JSON.stringify = () => "{}"; 1', 1, id="stringify-returns-an-empty-envelope"),
    pytest.param("JSON.stringify = () => 5; [1, 2]", [1, 2], id="stringify-returns-a-number"),
    pytest.param("JSON = null; ({a: 1})", {"a": 1}, id="json-gone"),
    pytest.param('JSON.stringify = () => \'{"error": 5}\'; "fine"', "fine", id="stringify-forges-an-error"),
    pytest.param("String.prototype.startsWith = () => true; 1", 1, id="string-methods-replaced"),
])
def test_a_script_that_replaces_the_harness_tools_still_gets_its_own_output(source: str, output: Any) -> None:
    assert _js(source)["output"] == output


def test_a_script_cannot_take_the_name_the_harness_reports_through() -> None:
    from boternity.errors import StepFailed

    with pytest.raises(StepFailed) as caught:
        _js('Object.defineProperty(globalThis, "__boternityState", {value: () => "ok:1"}); 2')
    assert caught.value.code == "code.error"
    assert "TypeError: Cannot redefine property: __boternityState" in caught.value.message


@pytest.mark.parametrize(("source", "payload", "output"), [
    pytest.param("({[Symbol('k')]: 1, f() {}, s: Symbol('v'), u: undefined, n: 1})", None, {"n": 1},
                 id="symbols-functions-undefined-dropped"),
    pytest.param("[({}).polluted === undefined, Object.keys(input), Object.getPrototypeOf(input) === Object.prototype]",
                 {"__proto__": {"polluted": True}}, [True, ["__proto__"], True], id="input-proto-key-is-no-pollution"),
    pytest.param("[typeof Intl, typeof Temporal, typeof SharedArrayBuffer, typeof Atomics]", None,
                 ["undefined", "undefined", "undefined", "undefined"], id="off-heap-globals-gone"),
    pytest.param("[(1234.5).toLocaleString('de', {style: 'currency', currency: 'EUR'}), 'a'.localeCompare('b', 'sv'),"
                 " new Date(0).toLocaleDateString('ja', {timeZone: 'Asia/Tokyo'})]", None,
                 ["1,234.5", -1, "1/1/1970"], id="locale-methods-use-the-default-locale"),
])
def test_what_a_script_can_hand_back(source: str, payload: Any, output: Any) -> None:
    assert _js(source, payload)["output"] == output


@pytest.mark.parametrize(("source", "message"), [
    pytest.param("__timer_manager.setTimeout(() => { while (true) {} }, 0); 1",
                 "ReferenceError: SharedArrayBuffer is not defined", id="mini-racers-timer-manager"),
    pytest.param("new Intl.DateTimeFormat('en')", "ReferenceError: Intl is not defined", id="intl"),
    pytest.param("Temporal.Now.instant()", "ReferenceError: Temporal is not defined", id="temporal"),
    pytest.param("throw {toString() { throw 1 }}", "<string conversion failed>", id="unprintable-throw"),
    pytest.param("Promise.reject({toString() { throw 1 }})", "(an error that cannot be shown)",
                 id="unprintable-rejection"),
])
def test_a_script_reaching_for_what_was_removed_fails_with_a_javascript_error(source: str, message: str) -> None:
    from boternity.errors import StepFailed

    with pytest.raises(StepFailed) as caught:
        _js(source)
    assert caught.value.code == "code.error"
    assert message in caught.value.message


# Run in a child that kills itself past 1.5 GB resident, so a regression cannot take the machine down.
OFF_HEAP_CHILD = r"""
import json, os, sys, threading, time
sys.path.insert(0, sys.argv[1])

def status(field):
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith(field)))

def watch():
    while True:
        if status("VmRSS:") > 1_500_000:
            print(json.dumps({"code": "killed", "peak_mib": status("VmHWM:") // 1024}), flush=True)
            os._exit(0)
        time.sleep(0.01)

threading.Thread(target=watch, daemon=True).start()
from boternity.errors import StepFailed
from boternity.executors.code import run_code
try:
    out = run_code({"language": "javascript", "source": sys.stdin.read(), "input": None}, base_dir=None)["output"]
    code = None
except StepFailed as exc:
    out, code = None, exc.code
print(json.dumps({"code": code, "output": out, "peak_mib": status("VmHWM:") // 1024}))
"""


@pytest.mark.parametrize(("source", "code", "output"), [
    pytest.param("const a = []; for (let i = 0; i < 2e5; i++) a.push(new Intl.DateTimeFormat('en', {timeZone: 'UTC'}));"
                 " a.length", "code.error", None, id="intl-formatters-kept"),
    pytest.param("const Z = ['UTC', 'America/New_York', 'Asia/Tokyo']; const a = []; for (let i = 0; i < 2e5; i++) "
                 "a.push(new Date(i * 1e7).toLocaleString('en', {timeZone: Z[i % 3], hour12: i % 2 == 0})); a.length",
                 None, 200000, id="to-locale-string-with-changing-options"),
    pytest.param("const L = ['de', 'fr', 'ja', 'sv', 'tr', 'ar', 'zh', 'ko']; let n = 0; for (let i = 0; i < 2e5; i++) "
                 "n += new Date(i * 1e7).toLocaleTimeString(L[i % 8]).length > 0; n", None, 200000,
                 id="to-locale-time-string-with-changing-locales"),
    pytest.param("const a = []; for (let i = 0; i < 2e5; i++) a.push(Temporal.Now.zonedDateTimeISO('Asia/Tokyo')); 1",
                 "code.error", None, id="temporal-objects-kept"),
])
def test_off_heap_allocations_stay_within_the_memory_budget(source: str, code: str | None, output: Any) -> None:
    done = subprocess.run([sys.executable, "-c", OFF_HEAP_CHILD, os.getcwd()], input=source, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert (result["code"], result["output"]) == (code, output), result
    # Interpreter and V8 take ~100 MiB before a script runs; before the fix these went past 1 GB.
    assert result["peak_mib"] < 300, result


# ---------------------------------------------------------------------------- SSRF (held)


@pytest.fixture(scope="module")
def victim() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


def _http_error(config: dict[str, Any], **kwargs: Any) -> Any:
    from boternity.errors import StepError

    with pytest.raises(StepError) as caught:
        run_http({"timeout_secs": 5, **config}, **kwargs)
    return caught.value


def _hosts_file_loopback_alias() -> str | None:
    """A name /etc/hosts maps to a loopback address, other than localhost (e.g. the machine's name)."""
    try:
        lines = open("/etc/hosts", encoding="utf-8").read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0].startswith("127."):
            aliases = [name for name in fields[1:] if name.lower() != "localhost"]
            if aliases:
                return aliases[0]
    return None


@pytest.mark.parametrize("host", [
    pytest.param("LOCALHOST", id="upper-case-localhost"),
    pytest.param("[::1%25lo]", id="ipv6-loopback-with-zone-id"),
    pytest.param("[::ffff:127.0.0.1%25lo]", id="mapped-loopback-with-zone-id"),
    pytest.param("127.0.0.1.", id="trailing-dot"),
    pytest.param("localhost.", id="localhost-trailing-dot"),
    pytest.param("0x7f.0.0.1", id="hex-first-octet"),
    pytest.param("hosts-file-alias", id="hosts-file-alias"),
])
def test_another_loopback_spelling_never_reaches_the_server(victim: HttpTarget, host: str) -> None:
    if host == "hosts-file-alias":
        host = _hosts_file_loopback_alias() or pytest.skip("no loopback alias in /etc/hosts")
    before = len(victim.requests)
    error = _http_error({"url": f"http://{host}:{victim.port}/"})

    # Refused as loopback, or (where the resolver does not know the spelling) not resolvable at all.
    assert error.code in ("http.blocked_address", "http.connect"), error.message
    if error.code == "http.connect":
        assert error.message.startswith("cannot resolve"), error.message
    else:
        assert "loopback" in error.message, error.message
    assert len(victim.requests) == before


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"])
def test_a_proxy_in_the_environment_is_never_used(target: HttpTarget, victim: HttpTarget,
                                                  monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    # The victim plays the proxy: a proxy would resolve the name itself, after the guard's check.
    monkeypatch.setenv(variable, victim.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    before_proxy, before_target = len(victim.requests), len(target.requests)

    out = run_http({"url": f"{target.url}/echo"}, allowed_hosts=[("127.0.0.1", target.port)])

    assert out["status"] == 200
    assert (len(victim.requests) - before_proxy, len(target.requests) - before_target) == (0, 1)


@pytest.mark.parametrize("name", ["Host", "HOST", "host"])
def test_a_host_header_in_the_step_is_replaced_by_the_urls_host(target: HttpTarget, name: str) -> None:
    out = run_http({"url": f"{target.url}/echo", "headers": {name: "169.254.169.254"}}, allow_private_network=True)

    assert out["body"]["headers"]["host"] == f"127.0.0.1:{target.port}"


@pytest.mark.parametrize("status", [307, 308])
def test_a_body_redirected_to_loopback_is_not_sent(target: HttpTarget, victim: HttpTarget, status: int) -> None:
    from urllib.parse import quote

    before = len(victim.requests)
    location = quote(f"http://127.0.0.1:{victim.port}/steal", safe="")
    error = _http_error({"method": "POST", "url": f"{target.url}/redirect?status={status}&to={location}",
                         "body": {"token": "t0ps3cret"}}, allowed_hosts=[("127.0.0.1", target.port)])

    assert error.code == "http.blocked_address"
    assert error.message == (f"refusing to connect for POST http://127.0.0.1:{victim.port}/steal: 127.0.0.1, "
                             "which is loopback")
    assert len(victim.requests) == before


# ---------------------------------------------------------------------------- wait until a hostile time


WAITER = "name: waiter\nsteps:\n  - id: hold\n    type: wait\n    config: {until: \"{{ trigger.when }}\"}\n"


@pytest.mark.parametrize(("when", "status", "error"), [
    pytest.param("0001-01-01T00:00:00+01:00", "failed",
                 "StepFailed: [wait] step 'hold', field 'config.until': '0001-01-01T00:00:00+01:00' is out of range (before year 1 "
                 "or after year 9999 in UTC)", id="before-year-one-in-utc"),
    pytest.param("9999-12-31T23:59:59-01:00", "failed",
                 "StepFailed: [wait] step 'hold', field 'config.until': '9999-12-31T23:59:59-01:00' is out of range (before year 1 "
                 "or after year 9999 in UTC)", id="after-year-9999-in-utc"),
    pytest.param("0001-01-02T00:00:00Z", "completed", None, id="year-one-is-in-the-past"),
    pytest.param("x" * 5000, "failed",
                 "StepFailed: [wait] step 'hold', field 'config.until': '" + "x" * 100 + "…' is not an ISO-8601 timestamp",
                 id="five-thousand-characters"),
])
def test_a_wait_until_a_hostile_timestamp_ends_with_the_steps_own_error(tmp_path: Path, when: str, status: str,
                                                                        error: str | None) -> None:
    (tmp_path / "waiter.yaml").write_text(WAITER)
    done = subprocess.run([sys.executable, "-m", "boternity.cli.main", "run", "waiter.yaml", "--json",
                           "--input", json.dumps({"when": when})], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, check=False)
    record = json.loads(done.stdout)
    (step,) = record["steps"]

    assert (done.returncode, step["status"], step.get("error")) == (0 if status == "completed" else 1, status, error)


# ---------------------------------------------------------------------------- WebAssembly sandbox (held)


_WASI = 'wasi_snapshot_preview1'
WASM_CASES = [
    pytest.param('(module (memory (export "memory") 1) (table $t 1 funcref) (func (export "_start") '
                 '(loop $l (drop (table.grow $t (ref.null func) (i32.const 100000))) (br $l))))',
                 "wasm.timeout", "WebAssembly program exceeded the 1 s time limit", id="table-grow-loop"),
    pytest.param('(module (memory (export "memory") 1 1 shared) (func (export "_start")))',
                 "wasm.invalid_module", "shared memory support is disabled", id="shared-memory-threads"),
    pytest.param(f'(module (import "{_WASI}" "random_get" (func $r (param i32 i32) (result i32))) '
                 '(memory (export "memory") 1) (func (export "_start") '
                 '(loop $l (drop (call $r (i32.const 0) (i32.const 65536))) (br $l))))',
                 "wasm.timeout", "WebAssembly program exceeded the 1 s time limit", id="random-get-flood"),
    pytest.param('(module (memory (export "memory") 1) (data (i32.const 65530) "0123456789") (func (export "_start")))',
                 "wasm.trap", "out of bounds memory access", id="data-segment-past-memory"),
    pytest.param('(module (memory (export "memory") 1) (func $f (return_call $f)) (func (export "_start") (call $f)))',
                 "wasm.timeout", "WebAssembly program exceeded the 1 s time limit", id="endless-tail-calls"),
    pytest.param(f'(module (import "{_WASI}" "path_open" (func $o (param i32 i32 i32 i32 i32 i64 i64 i32 i32) '
                 f'(result i32))) (import "{_WASI}" "proc_exit" (func $exit (param i32))) (memory (export "memory") 1) '
                 '(data (i32.const 100) "/etc/passwd") (func (export "_start") (call $exit (call $o (i32.const 3) '
                 '(i32.const 0) (i32.const 100) (i32.const 11) (i32.const 0) (i64.const 2) (i64.const 2) '
                 '(i32.const 0) (i32.const 200)))))',
                 "wasm.exit", "WebAssembly program exited with status 8", id="open-a-host-file"),
    pytest.param(f'(module (import "{_WASI}" "environ_sizes_get" (func $e (param i32 i32) (result i32))) '
                 f'(import "{_WASI}" "proc_exit" (func $exit (param i32))) (memory (export "memory") 1) '
                 '(func (export "_start") (drop (call $e (i32.const 0) (i32.const 4))) '
                 '(call $exit (i32.add (i32.const 100) (i32.load (i32.const 0))))))',
                 "wasm.exit", "WebAssembly program exited with status 100", id="count-environment-variables"),
]


@pytest.mark.parametrize(("source", "code", "message"), WASM_CASES)
def test_a_hostile_module_is_held_by_the_sandbox(source: str, code: str, message: str) -> None:
    from boternity.errors import StepFailed
    from boternity.executors.code import run_code
    from boternity.executors.wasm import tier_limits

    with pytest.raises(StepFailed) as caught:
        run_code({"language": "wasm", "source": source, "input": None}, base_dir=None,
                 limits=tier_limits("untrusted").override(timeout_secs=1))
    assert (caught.value.code, message in caught.value.message) == (code, True), caught.value.message


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_the_anthropic_endpoint_is_not_followed(endpoint: Any, victim: HttpTarget, status: int) -> None:
    # The Messages API never redirects; following one sent the prompt (or a GET) wherever it said,
    # the instance metadata service included, with the reply's excerpt in the step's error.
    def redirect(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 %d Moved\r\nLocation: %s/steal\r\nContent-Length: 0\r\n\r\n"
                     % (status, victim.url.encode()))

    before = len(victim.requests)
    error, _ = _agent_error(endpoint(redirect).base_url)

    assert (type(error).__name__, error.code) == ("StepFailed", "agent.api_error")
    assert error.message.startswith(f"Anthropic API error ({status}) for model claude-sonnet-4-6")
    assert len(victim.requests) == before


# ---------------------------------------------------------------------------- data that looks like a claim check


REF_LOOKALIKES = {
    "json_schema": {"$ref": "#/definitions/a", "definitions": {"a": {"type": "string"}}},
    "openapi": {"schema": {"$ref": "#/components/schemas/Pet"}},
    "old_uri_without_hash": {"$ref": "file:///etc/passwd", "size": 10},
    "bucket_key_without_hash": {"$ref": "s3://some-bucket/bots/writer/IDENTITY.md", "size": 10},
    "traversal": {"$ref": "blob:../../../../etc/passwd", "size": 10},
    "extra_keys": {"$ref": "blob:" + "0" * 64, "size": 10, "note": "mine"},
}


def test_a_payload_with_ref_keys_is_data_not_a_claim_check(tmp_path: Path) -> None:
    # A JSON Schema or OpenAPI document in a trigger payload (or any response) has "$ref" keys:
    # the step read them as claim checks and failed ("not a local blob: #/definitions/a").
    (tmp_path / "refs.yaml").write_text(
        "name: refs\nsteps:\n  - id: show\n    type: code\n"
        "    config: {language: javascript, source: input, input: \"{{ trigger.doc }}\"}\n")
    done = subprocess.run([sys.executable, "-m", "boternity.cli.main", "run", "refs.yaml", "--json",
                           "--input", json.dumps({"doc": REF_LOOKALIKES})], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, check=False)
    record = json.loads(done.stdout)
    (step,) = record["steps"]

    assert (done.returncode, step["status"], step.get("error")) == (0, "completed", None)
    assert step["output"]["output"] == REF_LOOKALIKES


def test_a_client_on_a_transport_without_sockets_is_left_as_it_is() -> None:
    import anthropic
    import httpx2

    from boternity.executors.agent import run_agent
    from boternity.executors.bots import Bot

    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=MESSAGE))
    client = anthropic.Anthropic(api_key="k", base_url="http://api.invalid", max_retries=0,
                                 http_client=httpx2.Client(transport=transport))

    assert run_agent({"prompt": "hi"}, bot=Bot(slug="b"), client=client)["response"] == "hi"


@pytest.mark.parametrize("timeout", [901, 1e10, 2**63, 1e308])
def test_an_http_timeout_past_the_longest_step_is_a_config_error(target: HttpTarget, timeout: float) -> None:
    # The workflow model caps timeout_secs at 900; the executor is also called with a deployment's
    # BOTERNITY_HTTP_TIMEOUT_SECS and by approval notifications. Past time_t, the watchdog's timer
    # thread died with an OverflowError (no deadline at all) and the step failed with a Python error.
    error = _http_error({"url": f"{target.url}/text", "timeout_secs": timeout}, allow_private_network=True)

    assert (type(error).__name__, error.code) == ("StepFailed", "http.invalid_config")
    assert error.message == f"timeout_secs must be a positive number of seconds up to 900, got {timeout!r}"


# ---------------------------------------------------------------------------- asset names ending in a newline


def test_validate_refuses_bot_and_skill_names_ending_in_a_newline(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Python's "$" also matches before a final "\n": "writer\n" passed as a bot folder name, found
    # no folder, and the agent ran with no bot at all (no system prompt) instead of failing.
    doc = {"name": "newline-assets", "steps": [
        {"id": "ask", "type": "agent", "config": {"bot": "writer\n", "prompt": "hi"}},
        {"id": "sum", "type": "skill", "config": {"skill": "summarize\n"}}]}
    path = tmp_path / "assets.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))

    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "2 errors" in err, err
    assert ("step 'ask': field 'config.bot': bot name 'writer\\n' is not a valid bot folder name (letters, digits, "
            "'.', '_', '-'; starting with a letter or digit)") in err, err
    assert ("step 'sum': field 'config.skill': 'summarize\\n' is not a skill name (lowercase letters, digits and "
            "'-', at most 64 characters)") in err, err


@pytest.mark.parametrize(("kind", "name"), [("bots", "writer\n"), ("skills", "summarize\n")])
def test_an_asset_name_ending_in_a_newline_never_names_a_folder(kind: str, name: str) -> None:
    from boternity.errors import StepFailed
    from boternity.runtime.assets import asset_dir

    with pytest.raises(StepFailed) as caught:
        asset_dir(kind, name)
    assert caught.value.message == f"{kind[:-1]} name {name!r} is not a plain folder name"


@pytest.mark.parametrize("version", ["1.2.0\n", "1.2.0\n\n"])
def test_a_skill_version_ending_in_a_newline_is_no_semantic_version(tmp_path: Path, version: str) -> None:
    from boternity.errors import StepFailed
    from boternity.executors.skill import load_skill

    folder = tmp_path / "echo"
    folder.mkdir()
    (folder / "SKILL.md").write_text("---\n" + yaml.safe_dump({
        "name": "echo", "description": "echo", "metadata": {"skill-type": "prompt", "version": version}})
        + "---\nHandled: {{ input }}\n")

    with pytest.raises(StepFailed) as caught:
        load_skill(tmp_path, "echo")
    assert f"{version!r} is not a semantic version" in caught.value.message


def test_a_webhook_path_ending_in_a_newline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Held: pydantic's patterns are Rust regexes, where "$" is the end of the text.
    doc = {"name": "newline-path", "triggers": [{"type": "webhook", "path": "/in\n", "auth": {"type": "none"}}],
           "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}
    path = tmp_path / "path.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))

    assert main(["validate", str(path)]) == 1
    assert "field 'triggers.0.path': String should match pattern" in capsys.readouterr().err
