"""The limits `boternity serve` holds every connection to, each with an environment variable.

The defaults follow API Gateway REST APIs, so a request the embedded server accepts is one the
cloud accepts too: a 10 MB payload, 10 KB of request line and headers, and throttling answered
429 (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html).
The handlers behind the server keep their own, smaller limits (256 KiB workflows and payloads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from boternity.errors import BoternityError

ENV_PREFIX = "BOTERNITY_SERVE_"


@dataclass(frozen=True)
class ServeLimits:
    # API Gateway REST: "Payload size: 10 MB" (not adjustable).
    max_body_bytes: int = 10 * 1024 * 1024
    # API Gateway REST: "Total combined size of request line and header values: 10240 bytes".
    max_header_bytes: int = 10 * 1024
    # From a connection's first byte (or the end of the previous response) to the blank line
    # after the headers: a slowloris client holds a thread for at most this long.
    header_timeout_secs: float = 10.0
    # The whole body, however slowly it trickles; API Gateway gives the integration 29 s.
    body_timeout_secs: float = 30.0
    # A client that stops reading its response is dropped after this long.
    write_timeout_secs: float = 30.0
    # Connections served at once (one thread each); more are answered 429 at once, as API
    # Gateway throttles, rather than growing threads without bound.
    max_connections: int = 256
    # The listen backlog: connections the kernel queues while every thread is busy accepting
    # (socketserver's default of 5 reset a burst of 20).
    backlog: int = 128

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeLimits:
        """The defaults, each replaced by ``BOTERNITY_SERVE_<NAME>`` when set (e.g.
        ``BOTERNITY_SERVE_MAX_BODY_BYTES``).

        Raises
        ------
        BoternityError
            A variable that is not a positive number, named.
        """
        env = os.environ if environ is None else environ
        values: dict[str, int | float] = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            raw = env.get(var)
            if raw is None or not raw.strip():
                continue
            kind = int if f.type == "int" else float
            try:
                value = kind(raw.strip())
            except ValueError:
                raise BoternityError(f"{var}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
            if not value > 0 or value != value or value == float("inf"):
                raise BoternityError(f"{var}={raw!r} must be a positive, finite number")
            values[f.name] = value
        return cls(**values)  # type: ignore[arg-type]

    @staticmethod
    def env_names() -> dict[str, str]:
        """Each limit's environment variable, for docs and error messages."""
        return {f.name: ENV_PREFIX + f.name.upper() for f in fields(ServeLimits)}
