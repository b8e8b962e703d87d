"""Hold one Anthropic API call to a wall-clock budget and a reply size, whatever the server does.

The SDK's ``timeout`` is httpx's: it bounds each socket operation, not the call. A server (or a proxy
in between) that trickles a byte before each read times out, or streams an endless body, held an agent
step for ever and read the whole body into memory: 1.3 GB in 1.4 s here before the process ran out of
address space. :func:`guard_client` fixes both for a client's whole connection pool:

* every socket the client connects is watched by the :class:`ReplyGuard` of the call using it (the
  same :class:`sockwatch.Watchdog` the http step uses), which shuts it down when the call's budget runs
  out, so a blocked read ends at once;
* every byte read is counted against the call's cap, and the read past it fails.

The SDK then raises its own connection error; the caller asks the guard which limit ended the call
(:attr:`ReplyGuard.timed_out`, :attr:`ReplyGuard.too_large`) to say so in the step's error.

The guard of a call is per thread (the SDK's sync client runs a call on the caller's thread), so
concurrent ``for_each`` items sharing one client each keep their own budget; a pooled connection is
watched by whichever call uses it, at its first read or write in that call.

Imports: httpx2 and httpcore2 (the SDK's transport, already loaded by it) and sockwatch.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpcore2
import httpx2
from httpcore2 import NetworkBackend, NetworkStream

from boternity.executors import sockwatch

if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Iterable, Iterator

__all__ = ["ReplyGuard", "guard_client", "guarded_call"]

_current = threading.local()


class ReplyGuard:
    """The limits of one call: a deadline (``time.monotonic()``) and a number of bytes read."""

    def __init__(self, deadline: float, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes_read = 0
        self._watchdog = sockwatch.Watchdog(deadline)

    @property
    def timed_out(self) -> bool:
        return self._watchdog.fired

    @property
    def too_large(self) -> bool:
        return self.bytes_read > self.max_bytes

    def watch(self, sock: socket.socket) -> None:
        self._watchdog.watch(sock)

    def count(self, received: int) -> None:
        self.bytes_read += received
        if self.too_large:
            # httpcore's own error type, so httpx and the SDK treat it as a broken connection.
            raise httpcore2.ReadError(f"reply over {self.max_bytes} bytes")

    def close(self) -> None:
        self._watchdog.close()


@contextmanager
def guarded_call(budget_secs: float, max_bytes: int) -> Iterator[ReplyGuard]:
    """Run the block's API call (on this thread) within ``budget_secs`` and ``max_bytes`` read."""
    guard = ReplyGuard(time.monotonic() + budget_secs, max_bytes)
    previous = getattr(_current, "guard", None)
    _current.guard = guard
    try:
        yield guard
    finally:
        _current.guard = previous
        guard.close()


class _GuardedStream(NetworkStream):
    """A connection that reports to the guard of the call using it."""

    def __init__(self, inner: NetworkStream, raw: socket.socket) -> None:
        self._inner = inner
        # The TCP socket under any TLS layer: an SSLSocket cannot be duplicated, and shutting the
        # TCP connection down ends the TLS reads on top of it as well.
        self._raw = raw
        self._watched_by: ReplyGuard | None = None

    def _guard(self) -> ReplyGuard | None:
        guard: ReplyGuard | None = getattr(_current, "guard", None)
        if guard is not None and self._watched_by is not guard:
            self._watched_by = guard
            guard.watch(self._raw)
        return guard

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        guard = self._guard()
        data = self._inner.read(max_bytes, timeout)
        if guard is not None:
            guard.count(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._guard()
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> NetworkStream:
        self._guard()  # a server can stall the handshake too
        return _GuardedStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._raw)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(NetworkBackend):
    def __init__(self, inner: NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        raw = stream.get_extra_info("socket")
        if raw is None:
            raise RuntimeError("the Anthropic client's connection has no socket to hold to its budget")
        return _GuardedStream(stream, raw)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> NetworkStream:
        stream = self._inner.connect_unix_socket(path, timeout, socket_options)
        return _GuardedStream(stream, stream.get_extra_info("socket"))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def guard_client(http_client: Any) -> None:
    """Route every connection of an ``httpx2.Client`` (its transport and proxy mounts) through the guard.

    httpx2 offers no public hook for the network backend, so this reaches its transports' connection
    pools; if that shape changes, it fails here, loudly, rather than leaving calls unbounded. A
    transport that is not httpx2's network transport (a test's ``MockTransport``) opens no sockets
    and is left as it is.
    """
    transports = [http_client._transport, *(t for t in http_client._mounts.values() if t is not None)]
    for transport in transports:
        if not isinstance(transport, httpx2.HTTPTransport):
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            raise RuntimeError(
                f"cannot hold the Anthropic client to its budget: {type(transport).__name__} has no "
                "connection pool with a network backend (httpx2 changed?)"
            )
        if not isinstance(backend, _GuardedBackend):
            pool._network_backend = _GuardedBackend(backend)
