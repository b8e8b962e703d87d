"""`boternity console --api <ApiUrl>`: the web console (``boternity.console``) on 127.0.0.1 for a
deployed stack, its API calls signed with the user's AWS credentials (``boternity.console.remote``).

Here in the CLI because it joins the console to the bounded HTTP server of ``boternity.local``,
which itself mounts the console under `boternity serve`.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any
from urllib.parse import urlsplit

from boternity.cli.client import DEFAULT_API
from boternity.console.app import ConsoleApp
from boternity.console.remote import SignedApi
from boternity.errors import BoternityError
from boternity.local.http_server import BoundedHTTPServer, error_json, make_handler
from boternity.local.serve_limits import ServeLimits
from boternity.store.blobs import S3BlobStore

DEFAULT_PORT = 8010


def console_server(app: ConsoleApp, *, port: int = DEFAULT_PORT, quiet: bool = False) -> BoundedHTTPServer:
    """An HTTP server on 127.0.0.1 that answers the console and nothing else (not yet serving)."""
    def dispatch(method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        path = urlsplit(target).path
        if path == "/" or path == "/console" or path.startswith("/console/"):
            return app.handle(method, target, headers, body)
        return 404, {"Content-Type": "application/json"}, error_json(404, "only the console is served here: /console/")

    limits = ServeLimits.from_env()
    return BoundedHTTPServer(("127.0.0.1", port), make_handler(dispatch, limits, quiet=quiet), limits)


def add_console_command(sub: Any) -> None:
    """Register `boternity console` among the CLI's subcommands."""
    co = sub.add_parser("console", help="serve the web console on 127.0.0.1 for a deployed API (calls signed with "
                        "your AWS credentials); `boternity serve` has it at /console/")
    co.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"local port (default {DEFAULT_PORT}; 0 picks one)")
    co.add_argument("--bucket", help="the stack's BucketName output: lets the console read claim-checked outputs")
    co.add_argument("--api", help=f"the API base URL (default $BOTERNITY_API or {DEFAULT_API})")
    co.add_argument("--api-key", help="send an API key instead of signing with AWS credentials")
    co.set_defaults(fn=cmd_console)


def cmd_console(args: Any) -> int:
    """Serve the console for the API at ``--api`` until Ctrl-C."""
    # As every API command: --api, else $BOTERNITY_API, else a local `boternity serve`.
    base = args.api or os.environ.get("BOTERNITY_API") or DEFAULT_API
    upstream = SignedApi(base, api_key=args.api_key or os.environ.get("BOTERNITY_API_KEY"))
    # One S3 client for the console's life, made when the first claim-checked output is opened.
    blobs = functools.cache(lambda: S3BlobStore(str(args.bucket))) if args.bucket else None
    app = ConsoleApp(upstream, api_label=upstream.base, blobs=blobs)
    try:
        server = console_server(app, port=args.port)
    except OSError as exc:
        raise BoternityError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    port = server.server_address[1]
    print(f"Boternity console on http://127.0.0.1:{port}/console/ for {upstream.base} (Ctrl-C stops)", file=sys.stderr)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
