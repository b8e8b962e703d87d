"""A stand-in for the Anthropic Messages API on loopback, for tests that run the real SDK over real HTTP.

    with AnthropicStub() as stub:
        stub.reply_text("Hello!")
        stub.rate_limited(retry_after=7)
        client = anthropic.Anthropic(api_key="test-key", base_url=stub.base_url, max_retries=0)
        ...
        stub.requests[0].json["model"], stub.requests[0].headers["x-api-key"]

``POST /v1/messages`` answers with the next scripted reply, first in first out. When nothing is
scripted it answers 500 with a message saying so (and counts it in :attr:`AnthropicStub.unscripted`),
so a test that makes one call more than it meant to fails loudly instead of hanging. Any other
path gets a 404 ``not_found_error``.

Every request is recorded (method, path, lower-cased headers, body, parsed JSON) in
:attr:`AnthropicStub.requests`, in arrival order. Successful replies echo the request's ``model``
unless the script names another.
"""

from __future__ import annotations

import collections
import itertools
import json
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["AnthropicStub", "ScriptedReply", "StubRequest"]

# The "type" the real API puts in an error body, per status (used when a test does not choose one).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def api_key(self) -> str | None:
        """The credential sent: ``x-api-key``, or a bearer token (how SDK 2.x sends an API key)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


@dataclass
class ScriptedReply:
    """One scripted answer. ``body`` None on a 200 means "a message echoing the request's model"."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping in a slow reply must not hold up the test run

    def __init__(self, stub: AnthropicStub) -> None:
        self.stub = stub
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The timeout tests hang up on purpose; writing the late reply then fails. That is expected.
        if isinstance(sys.exception(), OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        stub = self.server.stub
        request = StubRequest(
            method=self.command,
            path=self.path.split("?", 1)[0],
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        reply = stub._take(request)
        if reply.delay:
            # Cut short when the stub stops, so a test's teardown never waits for a sleeping handler.
            stub._stopping.wait(reply.delay)
        payload = reply.body
        if reply.status == 200 and payload is None:
            payload = stub._message("ok", model=None, request=request)
        elif callable(payload):
            payload = payload(request)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_stub_{next(stub._ids)}")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST


class AnthropicStub:
    """A threaded HTTP server on 127.0.0.1 (a free port) speaking enough of the Messages API."""

    def __init__(self) -> None:
        self.requests: list[StubRequest] = []
        self.unscripted = 0
        self._script: collections.deque[ScriptedReply] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> AnthropicStub:
        self._server = _Server(self)
        # A short poll interval: shutdown() waits up to one interval, and every test stops a stub.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="anthropic-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> AnthropicStub:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the stub first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ scripting

    def add(self, reply: ScriptedReply) -> AnthropicStub:
        with self._lock:
            self._script.append(reply)
        return self

    def reply_text(self, text: str, *, model: str | None = None, stop_reason: str = "end_turn",
                   input_tokens: int = 12, output_tokens: int = 7, delay: float = 0.0) -> AnthropicStub:
        """A successful message whose content is one text block."""
        return self.add(ScriptedReply(
            body=lambda request: self._message(text, model=model, request=request, stop_reason=stop_reason,
                                               input_tokens=input_tokens, output_tokens=output_tokens),
            delay=delay,
        ))

    def reply_blocks(self, blocks: list[dict[str, Any]], *, model: str | None = None) -> AnthropicStub:
        """A successful message with these content blocks (thinking, several text blocks...)."""
        return self.add(ScriptedReply(body=lambda request: self._message(blocks, model=model, request=request)))

    def reply_json(self, value: Any, *, fenced: bool = False) -> AnthropicStub:
        """A text reply holding ``value`` as JSON, optionally in a ```json fence as models often do."""
        text = json.dumps(value, indent=2)
        return self.reply_text(f"Here you go:\n```json\n{text}\n```\n" if fenced else text)

    def error(self, status: int, message: str = "stub error", *, error_type: str | None = None,
              headers: dict[str, str] | None = None, error_code: str | None = None) -> AnthropicStub:
        """An error reply shaped like the real API's: ``{"type": "error", "error": {...}}``."""
        error: dict[str, Any] = {
            "type": error_type or ERROR_TYPES.get(status, "api_error"),
            "message": message,
        }
        if error_code:
            error["details"] = {"error_code": error_code}
        return self.add(ScriptedReply(status=status, body={"type": "error", "error": error},
                                      headers=dict(headers or {})))

    def rate_limited(self, *, retry_after: int | None = None, message: str = "Number of request tokens has "
                     "exceeded your per-minute rate limit") -> AnthropicStub:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return self.error(429, message, headers=headers)

    def overloaded(self) -> AnthropicStub:
        return self.error(529, "Overloaded")

    def slow(self, seconds: float, text: str = "too late") -> AnthropicStub:
        """A success that arrives after ``seconds``: longer than the client's timeout, it is a timeout."""
        return self.reply_text(text, delay=seconds)

    # ------------------------------------------------------------------ internals

    def _take(self, request: StubRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            if request.method != "POST" or request.path != "/v1/messages":
                return ScriptedReply(404, {"type": "error", "error": {
                    "type": "not_found_error", "message": f"stub: no route {request.method} {request.path}"}})
            if self._script:
                return self._script.popleft()
            self.unscripted += 1
        return ScriptedReply(500, {"type": "error", "error": {
            "type": "api_error", "message": "anthropic stub: no reply scripted for this request"}})

    def _message(self, content: str | list[dict[str, Any]], *, model: str | None, request: StubRequest,
                 stop_reason: str = "end_turn", input_tokens: int = 12, output_tokens: int = 7) -> dict[str, Any]:
        sent = request.json if request.body else {}
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        return {
            "id": f"msg_stub_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": model or (sent or {}).get("model") or "claude-stub",
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
