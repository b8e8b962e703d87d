"""A target server cannot hold an http step past its ``timeout_secs``, nor fill the function's memory.

The budget covers connect, headers and body together. Each server below would hold a client that only
sets a socket timeout for (almost) as long as it likes: it sends a byte before every timeout runs out.
The servers give up after ``SERVER_GIVES_UP`` seconds, so without the budget a case ends late, not never.
Everything is on 127.0.0.1, exempted from the SSRF guard by ``allowed_hosts`` for exactly its port.
"""

from __future__ import annotations

import gzip
import socket
import socketserver
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest

from boternity.errors import StepFailed, StepRetryable
from boternity.executors.http import run_http
from tests.support.http_target import HttpTarget

BUDGET = 2.0
# Generous on purpose (a loaded CI machine), yet far below what an unbounded read would take.
MARGIN = 3.0
SERVER_GIVES_UP = 20.0
TICK = 0.25

Behaviour = Callable[[socket.socket, threading.Event], None]


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def _drip(conn: socket.socket, stop: threading.Event, piece: bytes) -> None:
    """Send ``piece`` every TICK until the client hangs up, the test ends, or the server gives up."""
    ends = time.monotonic() + SERVER_GIVES_UP
    while not stop.wait(TICK) and time.monotonic() < ends:
        conn.sendall(piece)


def never_answers(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    stop.wait(SERVER_GIVES_UP)


def trickles_the_status_line(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK")
    _drip(conn, stop, b" ")


def trickles_headers(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    _drip(conn, stop, b"a")


def trickles_a_body_with_a_length(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n")
    _drip(conn, stop, b"x")


def trickles_a_body_without_a_length(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    _drip(conn, stop, b"x")


def trickles_chunks(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
    _drip(conn, stop, b"1\r\nx\r\n")


def sends_an_endless_body_slowly(conn: socket.socket, stop: threading.Event) -> None:
    # Fast enough to look alive, far too slow to reach the body cap within the budget.
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    _drip(conn, stop, b"x" * 1024)


def trickles_the_tls_handshake(conn: socket.socket, stop: threading.Event) -> None:
    # A TLS record header announcing a 16 KB handshake record, whose bytes then come one at a time.
    conn.recv(4096)
    conn.sendall(b"\x16\x03\x03\x40\x00")
    _drip(conn, stop, b"\x00")


def redirects_slowly_forever(conn: socket.socket, stop: threading.Event) -> None:
    # Each hop is answered within the socket timeout; only the overall budget stops the chain.
    _read_request(conn)
    if not stop.wait(BUDGET / 3):
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            self.server.behaviour(self.request, self.server.stop)
        except OSError:
            pass  # the client hung up, which is what the budget is for


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], int]]:
    servers: list[_Server] = []

    def start(behaviour: Behaviour) -> int:
        server = _Server(behaviour)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


def _call(url: str, port: int, **kwargs: object) -> tuple[BaseException | dict, float]:
    started = time.monotonic()
    try:
        outcome: BaseException | dict = run_http(
            {"url": url, "timeout_secs": BUDGET}, allowed_hosts=[("127.0.0.1", port)], **kwargs
        )
    except (StepFailed, StepRetryable) as exc:
        outcome = exc
    return outcome, time.monotonic() - started


STALLING = [
    pytest.param(never_answers, "http", "/", id="never-answers"),
    pytest.param(trickles_the_status_line, "http", "/", id="trickled-status-line"),
    pytest.param(trickles_headers, "http", "/", id="trickled-headers"),
    pytest.param(trickles_a_body_with_a_length, "http", "/", id="trickled-body-content-length"),
    pytest.param(trickles_a_body_without_a_length, "http", "/", id="trickled-body-until-close"),
    pytest.param(trickles_chunks, "http", "/", id="trickled-chunked-body"),
    pytest.param(sends_an_endless_body_slowly, "http", "/", id="endless-slow-body"),
    pytest.param(trickles_the_tls_handshake, "https", "/", id="trickled-tls-handshake"),
    # The message names the hop that was cut off.
    pytest.param(redirects_slowly_forever, "http", "/again", id="slow-redirect-chain"),
]


@pytest.mark.parametrize(("behaviour", "scheme", "path"), STALLING)
def test_a_stalling_target_ends_the_step_at_its_budget(
    serve: Callable[[Behaviour], int], behaviour: Behaviour, scheme: str, path: str
) -> None:
    port = serve(behaviour)
    outcome, elapsed = _call(f"{scheme}://127.0.0.1:{port}/", port)

    assert isinstance(outcome, StepRetryable), outcome
    assert outcome.code == "http.timeout"
    assert outcome.message == f"GET {scheme}://127.0.0.1:{port}{path} timed out after {BUDGET:g}s"
    assert BUDGET - 0.1 <= elapsed < BUDGET + MARGIN, f"took {elapsed:.1f}s for a {BUDGET:g}s budget"


# --- bodies too big to keep -------------------------------------------------------------------------

CAP = 256 * 1024


def endless_fast_body(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    block = b"x" * 65536
    ends = time.monotonic() + SERVER_GIVES_UP
    while not stop.is_set() and time.monotonic() < ends:
        conn.sendall(block)


def announces_ten_gigabytes(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n")
    block = b"x" * 65536
    while not stop.is_set():
        conn.sendall(block)


def gzip_bomb(conn: socket.socket, stop: threading.Event) -> None:
    # 256 gzip members of 1 MiB of zeros each (a valid gzip stream): 256 MiB from about 260 KB.
    bomb = gzip.compress(b"\0" * (1024 * 1024), compresslevel=9) * 256
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
                 + f"Content-Length: {len(bomb)}\r\n\r\n".encode() + bomb)


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(endless_fast_body, id="endless-fast-body"),
        pytest.param(announces_ten_gigabytes, id="ten-gigabyte-content-length"),
        pytest.param(gzip_bomb, id="gzip-bomb-256MiB"),
    ],
)
def test_a_body_past_the_cap_is_cut_there_without_holding_it_in_memory(
    serve: Callable[[Behaviour], int], behaviour: Behaviour
) -> None:
    port = serve(behaviour)
    tracemalloc.start()
    try:
        outcome, elapsed = _call(f"http://127.0.0.1:{port}/", port, max_body_bytes=CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert isinstance(outcome, dict), outcome
    assert (outcome["status"], outcome["truncated"], len(outcome["body"])) == (200, True, CAP)
    assert peak < 8 * CAP, f"peak Python memory {peak} bytes for a {CAP}-byte cap"
    assert elapsed < BUDGET + MARGIN


def test_a_failure_status_keeps_only_an_excerpt_of_an_endless_body(serve: Callable[[Behaviour], int]) -> None:
    def endless_error(conn: socket.socket, stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b"e" * 65536)

    port = serve(endless_error)
    outcome, elapsed = _call(f"http://127.0.0.1:{port}/", port)

    assert isinstance(outcome, StepRetryable) and outcome.code == "http.status"
    assert outcome.message == f"HTTP 500 from GET http://127.0.0.1:{port}/: {'e' * 500}…"
    assert elapsed < BUDGET + MARGIN


def test_headers_without_end_are_refused_not_buffered(serve: Callable[[Behaviour], int]) -> None:
    def endless_headers(conn: socket.socket, stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            conn.sendall(b"X-More: " + b"h" * 1000 + b"\r\n")

    port = serve(endless_headers)
    outcome, elapsed = _call(f"http://127.0.0.1:{port}/", port)

    assert isinstance(outcome, StepRetryable) and outcome.code == "http.connect"
    assert outcome.message == (
        f"connection failed for GET http://127.0.0.1:{port}/: invalid response (got more than 100 headers)")
    assert elapsed < BUDGET + MARGIN



# --- bodies that would crash a JSON parser --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 5000 + "]" * 5000, id="nested-5000-deep"),
        pytest.param('{"a":' * 3000 + "1" + "}" * 3000, id="objects-nested-3000-deep"),
        pytest.param("[NaN, Infinity]", id="nan-and-infinity"),
        pytest.param("9" * 5000, id="integer-of-5000-digits"),
    ],
)
def test_a_json_body_the_parser_cannot_take_is_kept_as_text(body: str) -> None:
    with HttpTarget() as target:
        out = run_http(
            {"url": f"{target.url}/text?type=application/json&body={quote(body)}", "timeout_secs": BUDGET},
            allowed_hosts=[("127.0.0.1", target.port)],
        )

    assert (out["status"], out["body"], out["truncated"]) == (200, body, False)


# --- the deployment's limits ------------------------------------------------------------------------------


class _StepContext:
    """What the http handler reads from a step context: the config, rendered, and the workflow flags."""

    def __init__(self, config: dict) -> None:
        self.spec = {"config": config}
        self.ctx = {"workflow": {}}

    def render(self, value: dict, **_: object) -> dict:
        return value


def test_the_body_cap_and_default_budget_come_from_the_environment(
    serve: Callable[[Behaviour], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from boternity.handlers import http as handler

    port = serve(endless_fast_body)
    monkeypatch.setenv("BOTERNITY_HTTP_MAX_BODY_BYTES", "1000")
    monkeypatch.setattr(handler, "run_http", lambda cfg, **kw: run_http(cfg, **kw, allowed_hosts=[("127.0.0.1", port)]))
    out = handler.execute(_StepContext({"url": f"http://127.0.0.1:{port}/"}))
    assert (out["truncated"], len(out["body"])) == (True, 1000)

    slow = serve(trickles_headers)
    monkeypatch.setenv("BOTERNITY_HTTP_TIMEOUT_SECS", "1")
    monkeypatch.setattr(handler, "run_http", lambda cfg, **kw: run_http(cfg, **kw, allowed_hosts=[("127.0.0.1", slow)]))
    started = time.monotonic()
    with pytest.raises(StepRetryable) as caught:
        handler.execute(_StepContext({"url": f"http://127.0.0.1:{slow}/"}))
    assert caught.value.message == f"GET http://127.0.0.1:{slow}/ timed out after 1s"
    assert time.monotonic() - started < 1 + MARGIN


@pytest.mark.parametrize("value", ["0", "-5", "ten", "nan", "inf"])
@pytest.mark.parametrize("name", ["BOTERNITY_HTTP_MAX_BODY_BYTES", "BOTERNITY_HTTP_TIMEOUT_SECS"])
def test_a_bad_limit_in_the_environment_fails_the_step_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    from boternity.handlers import http as handler

    monkeypatch.setenv(name, value)
    with pytest.raises(StepFailed) as caught:
        handler.execute(_StepContext({"url": "http://127.0.0.1:9/"}))

    assert caught.value.code == "http.invalid_config"
    upto = " up to 900" if name == "BOTERNITY_HTTP_TIMEOUT_SECS" else ""
    assert caught.value.message == f"environment variable {name} must be a positive number{upto}, got {value!r}"


def test_a_default_timeout_past_the_longest_allowed_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """It blamed the step's timeout_secs, which the workflow never set."""
    from boternity.handlers import http as handler

    monkeypatch.setenv("BOTERNITY_HTTP_TIMEOUT_SECS", "5000")
    with pytest.raises(StepFailed) as caught:
        handler.execute(_StepContext({"url": "http://127.0.0.1:9/"}))
    assert caught.value.code == "http.invalid_config"
    assert caught.value.message == ("environment variable BOTERNITY_HTTP_TIMEOUT_SECS must be a positive number "
                                    "up to 900, got '5000'")
