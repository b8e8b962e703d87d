"""Hold one HTTP exchange to a wall-clock budget, whatever the server does.

A socket timeout bounds one ``recv``, not an exchange: a server that sends one byte a second (in its
headers, or in an endless body) resets it with every byte and holds the caller for as long as it likes.
Checking a deadline between body chunks misses the headers and any read that blocks inside urllib3.

So a :class:`Watchdog` keeps a duplicate of every socket the exchange opens and, when the budget runs
out, shuts them down (``shutdown(SHUT_RDWR)`` acts on the connection, not on one descriptor). Whatever
read is blocked then returns end-of-file or fails at once; the caller asks :attr:`Watchdog.fired` to
tell that apart from a server hanging up. The duplicates are closed by :meth:`Watchdog.close`, never
while the watchdog could still use them, so a shutdown can never reach a descriptor number the process
has since reused for something else.

:class:`WatchedPoolManager` is the urllib3 plumbing: its pools make connections that register their
socket with the watchdog the moment it is connected (before any TLS handshake, which a server can
stall too).

Imports: urllib3 (requests' transport) only.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection

__all__ = ["Watchdog", "WatchedPoolManager"]


class Watchdog:
    """Shuts down every watched socket at ``deadline`` (a ``time.monotonic()`` value)."""

    def __init__(self, deadline: float) -> None:
        self._lock = threading.Lock()
        self._duplicates: list[socket.socket] = []
        self._fired = False
        self._closed = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.name = "boternity-http-deadline"
        self._timer.daemon = True
        self._timer.start()

    @property
    def fired(self) -> bool:
        """True once the budget ran out and the sockets were shut down."""
        return self._fired

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once, if it has passed)."""
        duplicate = sock.dup()
        with self._lock:
            if not self._fired and not self._closed:
                self._duplicates.append(duplicate)
                return
        _shutdown(duplicate)
        duplicate.close()

    def close(self) -> None:
        """Stop the timer and release the duplicates. Call once the exchange is over."""
        self._timer.cancel()
        with self._lock:
            self._closed = True
            duplicates, self._duplicates = self._duplicates, []
        for duplicate in duplicates:
            duplicate.close()

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._fired = True
            for duplicate in self._duplicates:
                _shutdown(duplicate)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already disconnected: nothing left to stop


class _WatchedHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, watchdog: Watchdog, **kwargs: Any) -> None:
        self._watchdog = watchdog
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._watchdog.watch(sock)
        return sock


class _WatchedHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, watchdog: Watchdog, **kwargs: Any) -> None:
        self._watchdog = watchdog
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._watchdog.watch(sock)
        return sock


class WatchedPoolManager(PoolManager):
    """A PoolManager whose connections are all held to one :class:`Watchdog`."""

    def __init__(self, watchdog: Watchdog, **kwargs: Any) -> None:
        self._watchdog = watchdog
        super().__init__(**kwargs)

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        # Per pool instance, so the urllib3 classes and every other pool keep their defaults.
        pool.ConnectionCls = (  # type: ignore[misc]
            _WatchedHTTPSConnection if isinstance(pool, HTTPSConnectionPool) else _WatchedHTTPConnection
        )
        pool.conn_kw = {**pool.conn_kw, "watchdog": self._watchdog}
        return pool
