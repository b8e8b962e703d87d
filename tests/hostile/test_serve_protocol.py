"""Hostile clients against a real `boternity serve` (a child process on 127.0.0.1), over raw sockets:
every malformed, oversized, slow or unsupported request gets the API's JSON error with a 4xx, on a
connection that answers before it closes (no reset, no HTML page, no 5xx), and other clients are
served meanwhile. The limits come from `boternity.local.serve_limits` (docs/reliability.md)."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks.served import served
from boternity.local.http_server import BoundedHTTPServer, make_handler
from boternity.local.serve_limits import ServeLimits

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
MAX_BODY = 1024 * 1024
SERVE_ENV = {
    "BOTERNITY_SERVE_HEADER_TIMEOUT_SECS": str(HEADER_TIMEOUT),
    "BOTERNITY_SERVE_BODY_TIMEOUT_SECS": str(BODY_TIMEOUT),
    "BOTERNITY_SERVE_MAX_BODY_BYTES": str(MAX_BODY),
}
WORKFLOW = (b"name: proto\nsteps:\n  - {id: hello, type: skill, config: {skill: echo-prompt, "
            b"input: \"hi {{ trigger.who | default('nobody') }}\"}}\n")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/json", self.headers
        return json.loads(self.body)["error"]


def _read_answer(sock: socket.socket, method: str) -> Answer:
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    body = resp.read()
    return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)


def exchange(port: int, data: bytes, *, timeout: float = 15.0) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return _read_answer(sock, data.split(b" ", 1)[0].decode("latin-1"))


@pytest.fixture(scope="module")
def port() -> Any:
    with served(env=SERVE_ENV) as base:
        p = int(base.rsplit(":", 1)[1])
        deployed = exchange(p, b"PUT /workflows/proto HTTP/1.1\r\nContent-Type: application/yaml\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(WORKFLOW), WORKFLOW))
        assert deployed.status == 201, deployed.body
        yield p


def run_count(port: int) -> int:
    answer = exchange(port, b"GET /workflows/proto/runs HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.status == 200, answer.body
    return len(json.loads(answer.body)["runs"])


# (id, raw request, status, error code, part of the message, header that must be present)
REFUSED = [
    ("patch-on-workflow", b"PATCH /workflows/proto HTTP/1.1\r\n\r\n", 405, "method_not_allowed",
     "PATCH is not allowed", ("allow", "DELETE, GET, PUT")),
    ("put-on-read-only-list", b"PUT /workflows HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "method_not_allowed",
     "allowed: GET", ("allow", "GET")),
    ("put-on-run", b"PUT /runs/abc HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "method_not_allowed",
     "allowed: GET", ("allow", "GET")),
    ("delete-openapi", b"DELETE /openapi.json HTTP/1.1\r\n\r\n", 405, "method_not_allowed", "allowed: GET",
     ("allow", "GET")),
    ("trace", b"TRACE /workflows HTTP/1.1\r\nX-Secret: echo-me\r\n\r\n", 405, "method_not_allowed",
     "TRACE is not allowed", ("allow", "GET")),
    ("options", b"OPTIONS /workflows/proto/runs HTTP/1.1\r\n\r\n", 405, "method_not_allowed", "allowed: GET, POST",
     ("allow", "GET, POST")),
    ("garbage-method", b"FROB /runs/abc/cancel HTTP/1.1\r\n\r\n", 405, "method_not_allowed", "FROB is not allowed",
     ("allow", "POST")),
    ("get-on-webhook", b"GET /hooks/some/path HTTP/1.1\r\n\r\n", 405, "method_not_allowed", "webhooks take POST",
     ("allow", "POST")),
    ("method-not-a-token", b"G{T /workflows HTTP/1.1\r\n\r\n", 400, "bad_request", "not a valid HTTP token", None),
    ("http-0.9", b"GET /workflows\r\n", 400, "bad_request", "HTTP/0.9", None),
    ("request-line-one-word", b"GET\r\n\r\n", 400, "bad_request", "Bad request syntax", None),
    ("request-line-four-words", b"GET / HTTP/1.1 extra\r\n\r\n", 400, "bad_request", "Bad request version", None),
    ("version-not-http", b"GET /workflows FTP/1.1\r\n\r\n", 400, "bad_request", "Bad request version", None),
    ("version-2", b"GET /workflows HTTP/2.0\r\n\r\n", 400, "bad_request", "Invalid HTTP version", None),
    ("request-line-over-limit", b"GET /" + b"a" * 11000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long",
     "request line is longer than 10240 bytes", None),
    ("one-huge-header", b"GET /workflows HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, "headers_too_large",
     "exceed 10240 bytes", None),
    ("headers-over-budget-together", b"GET /workflows HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 300)
                                                                               for i in range(50))
     + b"\r\n", 431, "headers_too_large", "exceed 10240 bytes", None),
    ("over-100-headers", b"GET /workflows HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(120))
     + b"\r\n", 431, "headers_too_large", "Too many headers", None),
    ("content-length-over-limit-no-body-sent", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: 99999999\r\n"
     b"\r\n", 413, "payload_too_large", "at most 1048576 are accepted", None),
    ("content-length-not-a-number", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n{}",
     400, "bad_request", "invalid Content-Length", None),
    ("content-length-negative", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400,
     "bad_request", "invalid Content-Length", None),
    ("content-length-huge-digits", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: " + b"9" * 5000
     + b"\r\n\r\n", 400, "bad_request", "invalid Content-Length", None),
    ("two-content-lengths", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
     400, "bad_request", "invalid Content-Length", None),
    ("smuggling-cl-and-te", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n0\r\n\r\n", 400, "bad_request", "not both", None),
    ("transfer-encoding-gzip", b"POST /workflows/proto/runs HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     b"0\r\n\r\n", 400, "bad_request", "only chunked is accepted", None),
    ("chunk-size-not-hex", b"POST /workflows/proto/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n"
     b"\r\n", 400, "bad_request", "chunk size line is invalid", None),
    ("chunk-longer-than-size", b"POST /workflows/proto/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX\r\n"
     b"0\r\n\r\n", 400, "bad_request", "unterminated", None),
    ("chunks-over-limit", b"POST /workflows/proto/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"%x\r\n" % (MAX_BODY + 1), 413, "payload_too_large", "exceeds 1048576 bytes", None),
    ("expect-100-over-limit", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: 50000000\r\n"
     b"Expect: 100-continue\r\n\r\n", 413, "payload_too_large", "at most 1048576", None),
    ("non-utf8-yaml-workflow", b"PUT /workflows/proto HTTP/1.1\r\nContent-Type: application/yaml\r\nContent-Length: 4\r\n"
     b"\r\n\xff\xfe\xfd\xfc", 400, "invalid_encoding", "not UTF-8", None),
    ("non-utf8-json-payload", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Type: application/json\r\n"
     b"Content-Length: 4\r\n\r\n\xff\xfe\xfd\xfc", 400, "invalid_encoding", "not UTF-8", None),
    ("non-utf8-text-payload", b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Type: text/plain; charset=utf-8\r\n"
     b"Content-Length: 3\r\n\r\n\xc3\x28\xa0", 415, "unsupported_media_type", "must be application/json", None),
    ("no-such-route", b"GET /etc/passwd HTTP/1.1\r\n\r\n", 404, "not_found", "no route GET /etc/passwd", None),
]


@pytest.mark.parametrize(("request_bytes", "status", "code", "message", "header"),
                         [pytest.param(*case[1:], id=case[0]) for case in REFUSED])
def test_a_bad_request_gets_a_json_4xx_and_starts_nothing(port, request_bytes, status, code, message, header):
    before = run_count(port)
    answer = exchange(port, request_bytes)
    assert answer.status == status, answer.body
    error = answer.error()
    assert error["code"] == code
    assert message in error["message"]
    if header:
        assert answer.headers.get(header[0]) == header[1]
    assert b"echo-me" not in answer.body
    assert run_count(port) == before


def test_head_is_refused_without_a_body(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"HEAD /workflows HTTP/1.1\r\n\r\nGET /workflows HTTP/1.1\r\n\r\n")
        head = _read_answer(sock, "HEAD")
        after = _read_answer(sock, "GET")
    assert (head.status, head.headers["allow"], head.body) == (405, "GET", b"")
    assert after.status == 200, "the next request on the connection was not mistaken for a body"


def test_a_chunked_body_within_the_limit_reaches_the_api(port):
    before = run_count(port)
    answer = exchange(port, b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Type: application/json\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n6\r\n{\"who\"\r\n8\r\n: \"ada\"}\r\n0\r\n\r\n")
    assert answer.status == 202, answer.body
    assert run_count(port) == before + 1


def test_an_oversized_body_being_streamed_is_answered_not_reset(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (8 * MAX_BODY))
        for _ in range(8):   # the client keeps sending after the server has refused
            try:
                sock.sendall(b"x" * 65536)
            except OSError:
                break
        answer = _read_answer(sock, "POST")
    assert answer.status == 413 and answer.error()["code"] == "payload_too_large"


def test_pipelined_requests_on_one_connection_are_answered_in_order(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET /workflows/proto HTTP/1.1\r\n\r\nGET /runs/nope HTTP/1.1\r\n\r\n")
        first, second = _read_answer(sock, "GET"), _read_answer(sock, "GET")
    assert (first.status, second.status) == (200, 404)


def test_a_burst_of_50_connections_is_served_without_resets(port):
    barrier = threading.Barrier(50)

    def one(_: int) -> int:
        barrier.wait(30)
        return exchange(port, b"GET /workflows HTTP/1.1\r\nConnection: close\r\n\r\n", timeout=60).status

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, range(50)))
    assert statuses == [200] * 50


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the listen backlog")
def test_the_listen_backlog_absorbs_a_burst(port):
    # Loopback hides a short backlog (the kernel retries a dropped SYN a second later), so the
    # burst above passes either way; the backlog itself is what a burst from remote clients meets.
    listing = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=30,
                             check=True).stdout.split()
    assert listing[0] == "LISTEN" and int(listing[2]) == 128, listing


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_slow_client_is_cut_off_and_does_not_hold_up_others(port, phase):
    """Slowloris: one byte a second. The trickler gets 408 within its budget; another client
    meanwhile gets its answer."""
    if phase == "headers":
        opening, trickle = b"GET /workflows HTTP/1.1\r\n", b"X-Slow: " + b"a" * 60
        budget = HEADER_TIMEOUT
    else:
        opening, trickle = b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Length: 60\r\n\r\n", b"{" + b" " * 59
        budget = BODY_TIMEOUT
    with socket.create_connection(("127.0.0.1", port), timeout=20) as slow:
        slow.sendall(opening)
        t0 = time.monotonic()
        other = exchange(port, b"GET /workflows HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert other.status == 200
        sent = 0
        try:
            for byte in trickle:
                slow.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.5)
                if time.monotonic() - t0 > budget + 1:
                    break
        except OSError:
            pass
        answer = _read_answer(slow, opening.split(b" ", 1)[0].decode())
        elapsed = time.monotonic() - t0
    assert answer.status == 408 and answer.error()["code"] == "request_timeout"
    assert sent < len(trickle), "the whole slow request was accepted"
    assert elapsed < budget + 10


def test_control_characters_in_a_request_are_escaped_in_the_log(capsys):
    limits = ServeLimits()
    server = BoundedHTTPServer(("127.0.0.1", 0), make_handler(lambda *_: (200, {}, b"{}"), limits), limits)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        answer = exchange(server.server_address[1], b"GET /x%1b[2J\x1b]0;pwned\x07 HTTP/1.1\r\n\r\n")
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status == 200
    printed = capsys.readouterr()
    assert "\x1b" not in printed.out + printed.err and "\\x1b]0;pwned\\x07" in printed.out


def test_connections_over_the_cap_get_429_at_once():
    limits = ServeLimits(max_connections=3, header_timeout_secs=20)
    server = BoundedHTTPServer(("127.0.0.1", 0), make_handler(lambda *_: (200, {}, b"{}"), limits, quiet=True), limits)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    idle = [socket.create_connection(server.server_address, timeout=20) for _ in range(3)]
    try:
        time.sleep(0.3)   # let the three be accepted and hold their slots
        answer = exchange(server.server_address[1], b"GET / HTTP/1.1\r\n\r\n")
        assert answer.status == 429 and answer.headers["retry-after"] == "1"
        assert answer.error()["code"] == "too_many_requests"
        for s in idle:
            s.close()
        time.sleep(0.3)
        assert exchange(server.server_address[1], b"GET / HTTP/1.1\r\n\r\n").status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_default_limits_are_api_gateways_and_each_has_a_variable():
    limits = ServeLimits.from_env({})
    assert (limits.max_body_bytes, limits.max_header_bytes, limits.backlog) == (10 * 1024 * 1024, 10240, 128)
    assert ServeLimits.from_env({"BOTERNITY_SERVE_MAX_BODY_BYTES": "2048"}).max_body_bytes == 2048
    assert set(ServeLimits.env_names().values()) >= {"BOTERNITY_SERVE_HEADER_TIMEOUT_SECS",
                                                     "BOTERNITY_SERVE_MAX_CONNECTIONS"}


@pytest.mark.parametrize("value", ["ten", "-1", "0", "nan", "inf"])
def test_a_bad_limit_variable_is_named_in_the_error(value):
    from boternity.errors import BoternityError

    with pytest.raises(BoternityError, match="BOTERNITY_SERVE_BACKLOG"):
        ServeLimits.from_env({"BOTERNITY_SERVE_BACKLOG": value})


def test_concurrent_triggers_each_start_a_run_with_their_own_payload(port):
    """The api's resolver keeps the current request on a module global; the server must not let
    two requests share it (before the fix, runs started with another request's payload)."""
    def trigger(seq: int) -> str:
        body = json.dumps({"who": f"caller-{seq}"}).encode()
        answer = exchange(port, b"POST /workflows/proto/runs HTTP/1.1\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert answer.status == 202, answer.body
        return json.loads(answer.body)["run_id"]

    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(trigger, range(16)))
    for seq, run_id in enumerate(run_ids):
        deadline = time.monotonic() + 120
        while True:
            run = json.loads(exchange(port, b"GET /runs/%s HTTP/1.1\r\nConnection: close\r\n\r\n"
                                      % run_id.encode()).body)
            if run["run"]["status"] not in ("RUNNING", "QUEUED") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert run["run"]["status"] == "SUCCEEDED"
        echo = next(s for s in run["steps"] if s["step_id"] == "hello")
        assert echo["output"]["output"] == f"Handled: hi caller-{seq}\n"


def test_serve_with_a_bad_limit_variable_exits_with_the_variable_named(tmp_path):
    import os
    import sys

    proc = subprocess.run([sys.executable, "-m", "boternity.cli.main", "serve", "--port", "0", "--dir", str(tmp_path)],
                          env={**os.environ, "BOTERNITY_SERVE_MAX_BODY_BYTES": "10MB"}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("error: BOTERNITY_SERVE_MAX_BODY_BYTES='10MB' is not an integer")
    assert "Traceback" not in proc.stderr
