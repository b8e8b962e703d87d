"""HTTP/1.1 for `boternity serve`, bounded like API Gateway: every request is read within a size and
time budget before anything runs, and every answer the protocol layer gives is the API's JSON
error (``{"error": {"code", "message", "details"}}``), never the standard library's HTML page, a
5xx for bad input, or a reset.

What it guarantees, per connection: the request line and headers within ``max_header_bytes``
(431; a request line alone over it: 414) and ``header_timeout_secs`` (408); a ``Content-Length``
checked before one body byte is read (413) and the body read within ``body_timeout_secs`` (408);
chunked bodies decoded under the same size bound; a request with both framings refused (400,
the request-smuggling shape); HTTP/0.9 and malformed request lines answered 400; at most
``max_connections`` at once (more get 429 with Retry-After). The application sees only whole
requests: ``dispatch(method, target, headers, body) -> (status, headers, body)``.
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from boternity.local.serve_limits import ServeLimits

    Dispatch = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]

# RFC 9110 5.6.2: a method is a token.
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CHUNK_LINE_MAX = 1024          # "<hex size>[;extensions]\r\n": anything longer is not a chunk header
_TRAILER_LINES_MAX = 32
_LINGER_SECS = 2.0              # reading what a refused client still sends, so it sees the answer, not a reset
_LINGER_BYTES = 1024 * 1024
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
# Headers with one value (RFC 9110 5.3) that the handlers act on: the body's type, the caller, the
# run a retry names, a webhook's signature and delivery id. Content-Length has its own check.
_SINGLETONS = ("Content-Type", "Host", "Authorization", "Idempotency-Key", "X-Hub-Signature-256",
               "X-GitHub-Delivery", "webhook-id", "webhook-timestamp", "webhook-signature")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")   # RFC 9110 5.5: controls other than HTAB

# The error codes of the statuses the protocol layer answers itself.
_CODES = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
    411: "length_required", 413: "payload_too_large", 414: "uri_too_long", 417: "expectation_failed",
    429: "too_many_requests", 431: "headers_too_large",
}


class _HeadersTooLarge(Exception):
    pass


class _DeadlineSocketIO(io.RawIOBase):
    """The connection's read side, where every read waits at most until the handler's deadline:
    a per-read timeout alone lets a client sending one byte a second hold a thread forever."""

    def __init__(self, sock: socket.socket, handler: BoundedRequestHandler) -> None:
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("read deadline passed")
        self._sock.settimeout(remaining)
        n = self._sock.recv_into(buffer)
        self._handler.bytes_seen += n
        return n


class _BudgetReader:
    """``readline`` over the request line and headers with one byte budget for them all (the
    standard library bounds each line at 64 KiB and the count at 100, i.e. 6.4 MB)."""

    def __init__(self, rfile: io.BufferedReader, budget: int) -> None:
        self._rfile = rfile
        self.budget = budget

    def readline(self, limit: int = -1) -> bytes:
        want = self.budget + 1 if limit is None or limit < 0 else min(limit, self.budget + 1)
        line = self._rfile.readline(want)
        self.budget -= len(line)
        if self.budget < 0:
            raise _HeadersTooLarge
        return line


def _header_problem(headers: Any) -> str | None:
    """Why the header block is malformed, or None. The standard library's parser stops at a line
    that is not ``name: value`` (no colon, a space in the name) and takes the rest, Content-Length
    included, for the body of the header block: the request's real body was then read as the next
    request. RFC 9112 5.2 lets a server refuse obs-fold (a continuation line), and 5.5 forbids
    CR, LF and NUL in a value; both are refused (400) rather than handed on."""
    if headers.defects:
        return "malformed header line: every header must be 'Name: value' with no space in the name"
    for name, value in headers.items():
        if _BAD_VALUE.search(value):
            return f"the value of header {printable(name)[:64]!r} holds a line break or a control character"
    for name in _SINGLETONS:
        values = headers.get_all(name) or []
        if len(set(values)) > 1:
            # Sent twice (in any letter case) with different values, each layer could read another one.
            return f"the header {name!r} is sent {len(values)} times with different values: send it once"
    return None


def error_json(status: int, message: str, details: Any = None) -> bytes:
    return json.dumps({"error": {"code": _CODES.get(status, "error"), "message": message, "details": details}},
                      separators=(",", ":")).encode()


def printable(text: str) -> str:
    """Text from a client made safe for a terminal: control characters escaped."""
    return text.translate(_CONTROL)


class BoundedRequestHandler(BaseHTTPRequestHandler):
    """One connection. Subclassed by :func:`make_handler` with the dispatch and the limits."""

    protocol_version = "HTTP/1.1"
    # Errors found before the version is known still get a status line and headers.
    default_request_version = "HTTP/1.0"
    error_content_type = "application/json"
    server_version = "boternity-serve"
    dispatch: Dispatch
    limits: ServeLimits
    quiet: bool = False

    deadline: float
    bytes_seen: int

    def setup(self) -> None:
        super().setup()
        self.deadline = time.monotonic() + self.limits.header_timeout_secs
        self.bytes_seen = 0
        self._linger = False
        self.rfile = io.BufferedReader(_DeadlineSocketIO(self.connection, self))

    # ------------------------------------------------------------------ one request
    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.limits.header_timeout_secs
        seen_before = self.bytes_seen
        # What the error paths below read, before parse_request has set them.
        self.command, self.path, self.request_version = "", "", self.default_request_version
        real = self.rfile
        budget = _BudgetReader(real, self.limits.max_header_bytes)
        self.rfile = budget  # type: ignore[assignment]
        try:
            try:
                self.raw_requestline = budget.readline()
            except _HeadersTooLarge:
                self._refuse(414, f"the request line is longer than {self.limits.max_header_bytes} bytes")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline.split()) == 2:
                # HTTP/0.9 ("GET /path") has no headers and no status line; nothing here speaks it.
                self._refuse(400, "HTTP/0.9 requests are not supported: send HTTP/1.1")
                return
            if not self.parse_request():
                return
            problem = _header_problem(self.headers)
            if problem is not None:
                self._refuse(400, problem)
                return
        except _HeadersTooLarge:
            self._refuse(431, f"the request line and headers exceed {self.limits.max_header_bytes} bytes")
            return
        except TimeoutError:
            if self.bytes_seen > seen_before:
                self._refuse(408, f"the request headers did not arrive within {self.limits.header_timeout_secs:g} s")
            self.close_connection = True
            return
        finally:
            self.rfile = real
        try:
            self._serve()
        except TimeoutError:
            self._refuse(408, f"the request body did not arrive within {self.limits.body_timeout_secs:g} s")
        except (ConnectionError, OSError):
            self.close_connection = True

    def _serve(self) -> None:
        if not _TOKEN.match(self.command.encode("latin-1", "replace")):
            self._refuse(400, "the request method is not a valid HTTP token")
            return
        body = self._read_body()
        if body is None:
            return
        try:
            status, headers, data = self.dispatch(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # noqa: BLE001 - a handler bug still answers, as API Gateway's 502 does
            print(f"  handler failed: {type(exc).__name__}: {printable(str(exc))[:200]}", file=sys.stderr)
            status, headers = 502, {}
            data = json.dumps({"error": {"code": "internal", "message": "internal error", "details": None}},
                              separators=(",", ":")).encode()
        self._respond(status, headers, data)

    # ------------------------------------------------------------------ the body
    def _read_body(self) -> bytes | None:
        """The whole body within the limits, or None when an error has been answered."""
        te = [t.strip().lower() for v in self.headers.get_all("Transfer-Encoding") or [] for t in v.split(",")]
        lengths = [v.strip() for v in self.headers.get_all("Content-Length") or []]
        if te and lengths:
            self._refuse(400, "send either Content-Length or Transfer-Encoding, not both")
            return None
        self.deadline = time.monotonic() + self.limits.body_timeout_secs
        if te:
            if te != ["chunked"]:
                self._refuse(400, f"unsupported Transfer-Encoding {', '.join(te)!r}: only chunked is accepted")
                return None
            return self._read_chunked()
        if not lengths:
            return b""
        length = self._content_length(lengths)
        if length is None:
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return None   # the client hung up mid-body: nobody is left to answer
        return body

    def _content_length(self, values: list[str]) -> int | None:
        if len(set(values)) != 1 or not values[0].isdigit() or not values[0].isascii() or len(values[0]) > 18:
            self._refuse(400, f"invalid Content-Length {', '.join(values)[:40]!r}")
            return None
        length = int(values[0])
        if length > self.limits.max_body_bytes:
            self._refuse(413, f"the body is {length} bytes; at most {self.limits.max_body_bytes} are accepted",
                         details={"limit_bytes": self.limits.max_body_bytes})
            return None
        return length

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_CHUNK_LINE_MAX + 1)
            size_text = line.split(b";", 1)[0].strip()
            if len(line) > _CHUNK_LINE_MAX or not line.endswith(b"\n") or not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                self._refuse(400, "malformed chunked body: a chunk size line is invalid")
                return None
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > self.limits.max_body_bytes:
                self._refuse(413, f"the chunked body exceeds {self.limits.max_body_bytes} bytes",
                             details={"limit_bytes": self.limits.max_body_bytes})
                return None
            data = self.rfile.read(size)
            if len(data) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                self._refuse(400, "malformed chunked body: a chunk is shorter than its size or unterminated")
                return None
            chunks.append(data)
        for _ in range(_TRAILER_LINES_MAX):
            line = self.rfile.readline(_CHUNK_LINE_MAX + 1)
            if line in (b"\r\n", b"\n", b""):
                return b"".join(chunks)
        self._refuse(400, "malformed chunked body: too many trailer lines")
        return None

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before inviting the client to send it.
        lengths = [v.strip() for v in self.headers.get_all("Content-Length") or []]
        if lengths and self._content_length(lengths) is None:
            return False
        return super().handle_expect_100()

    # ------------------------------------------------------------------ answers
    def _respond(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.connection.settimeout(self.limits.write_timeout_secs)
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _refuse(self, status: int, message: str, details: Any = None) -> None:
        """Answer a request the protocol layer refuses, and close: its unread rest would otherwise
        be read as the next request."""
        self.close_connection = True
        self._linger = True
        try:
            self._respond(status, {"Content-Type": "application/json"}, error_json(status, message, details))
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Called by parse_request for a malformed request line or headers, bad versions, etc.
        status = int(code)
        if status >= 500:
            # 505 HTTP Version Not Supported: the client's fault, and bad input never gets a 5xx here.
            status = 400
        text = message or explain or HTTPStatus(status).phrase
        self._refuse(status, text)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._linger:
                self._drain()

    def _drain(self) -> None:
        """Read and drop what the client is still sending, briefly, before closing: closing with
        unread data makes the kernel send a reset that can destroy the answer in flight."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            end = time.monotonic() + _LINGER_SECS
            seen = 0
            while seen < _LINGER_BYTES and (left := end - time.monotonic()) > 0:
                self.connection.settimeout(left)
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                seen += len(chunk)
        except OSError:
            pass

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.quiet:
            print(printable("  " + (format % args)), file=sys.stderr)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.quiet:
            print(printable(f"  {getattr(self, 'command', '')} {getattr(self, 'path', '')} -> {int(code)}"))


def make_handler(dispatch: Dispatch, limits: ServeLimits, *, quiet: bool = False) -> type[BoundedRequestHandler]:
    return type("Handler", (BoundedRequestHandler,), {"dispatch": staticmethod(dispatch), "limits": limits,
                                                       "quiet": quiet})


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them, with a deep listen backlog."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BoundedRequestHandler], limits: ServeLimits) -> None:
        self.request_queue_size = limits.backlog    # read by server_activate's listen()
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._throttle(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _throttle(self, request: socket.socket) -> None:
        body = error_json(429, "too many connections at once; retry shortly")
        head = (f"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        try:
            request.settimeout(1.0)
            request.sendall(head + body)
        except OSError:
            pass
        self.shutdown_request(request)
