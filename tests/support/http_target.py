"""A real HTTP server on loopback for tests that make HTTP calls: no mocks between client and socket.

    with HttpTarget() as target:
        run_http({"url": target.url + "/echo"}, allow_private_network=True)
        target.requests[-1].headers["user-agent"]

Routes (every method; HEAD gets the headers only):

- ``/echo[/anything]``      200 JSON: method, path, query (``{name: value}``, a list when repeated),
                            headers (lower-cased names), body (text), json (parsed body or null)
- ``/status/<N>``           status N; JSON ``{"status": N, "reason": ...}``, or ``?body=`` as text/plain
- ``/redirect?to=<url>``    302 (or ``&status=301|303|307|308``) with ``Location: <url>``
- ``/loop``                 302 to itself, forever
- ``/slow?secs=<s>``        waits s seconds before answering 200 JSON (cut short when the server stops)
- ``/bytes/<N>``            N bytes of ``x`` (``?json=1``: a JSON string literal N bytes long)
- ``/gzip/<N>``             N bytes of ``x``, gzip-compressed on the wire (``Content-Encoding: gzip``)
- ``/text``                 200 ``hello, world``; ``?body=`` and ``?type=`` replace body and content type

Every request is recorded in :attr:`HttpTarget.requests`. Pass ``host="::1"`` for IPv6 and an
``ssl_context`` (server side) for HTTPS.

:class:`StaticResolver` stands in for DNS (``resolver=`` of ``run_http`` and ``netguard``), so a test can
give a name any address without a lookup leaving the machine.
"""

from __future__ import annotations

import contextlib
import gzip
import http
import json
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

__all__ = ["HttpTarget", "RecordedRequest", "StaticResolver", "unused_port"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, Any]
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping in /slow must not hold up the test run

    def __init__(self, host: str, ssl_context: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.ssl_context = ssl_context
        self.recorded: list[RecordedRequest] = []
        self.record_lock = threading.Lock()
        self.stopping = threading.Event()
        super().__init__((host, 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the request's own thread, so a client that never
        # completes it cannot stall the accept loop.
        if self.ssl_context is not None:
            request = self.ssl_context.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out, hang up or reject our certificate are what several tests do on purpose.
        if isinstance(sys.exception(), OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {
            k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query, keep_blank_values=True).items()
        }
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.record_lock:
            self.server.recorded.append(
                RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
        segments = parts.path.strip("/").split("/")
        route = segments[0]
        if route == "echo":
            try:
                parsed: Any = json.loads(body) if body else None
            except ValueError:
                parsed = None
            self._send_json(
                200,
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", errors="replace"),
                    "json": parsed,
                },
            )
        elif route == "status" and len(segments) == 2 and segments[1].isdigit():
            status = int(segments[1])
            if "body" in query:
                self._send(status, str(query["body"]).encode(), "text/plain; charset=utf-8")
            else:
                reason = (
                    http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
                )
                self._send_json(status, {"status": status, "reason": reason})
        elif route == "redirect":
            status = int(query.get("status", 302))
            self._send(status, b"", "text/plain", extra={"Location": str(query.get("to", "/"))})
        elif route == "loop":
            self._send(302, b"", "text/plain", extra={"Location": "/loop"})
        elif route == "slow":
            self.server.stopping.wait(float(query.get("secs", 1)))
            self._send_json(200, {"slept": float(query.get("secs", 1))})
        elif route == "bytes" and len(segments) == 2 and segments[1].isdigit():
            size = int(segments[1])
            if query.get("json"):
                self._send(200, b'"' + b"x" * max(size - 2, 0) + b'"', "application/json")
            else:
                self._send(200, b"x" * size, "application/octet-stream")
        elif route == "gzip" and len(segments) == 2 and segments[1].isdigit():
            packed = gzip.compress(b"x" * int(segments[1]))
            self._send(200, packed, "text/plain", extra={"Content-Encoding": "gzip"})
        elif route == "text":
            text = str(query.get("body", "hello, world"))
            self._send(200, text.encode(), str(query.get("type", "text/plain; charset=utf-8")))
        else:
            self._send(404, b"no such route", "text/plain")

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class HttpTarget:
    """The server. ``url`` is its base (``http://127.0.0.1:PORT``, no trailing slash)."""

    def __init__(self, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self._ssl_context = ssl_context
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("HttpTarget is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        if self._server is None:
            return []
        with self._server.record_lock:
            return list(self._server.recorded)

    def start(self) -> HttpTarget:
        self._server = _Server(self.host, self._ssl_context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="http-target", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HttpTarget:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def unused_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then released), so connecting to it is refused."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class StaticResolver:
    """A ``resolver(host, port)`` answering from a fixed table; records every question in ``calls``."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])
