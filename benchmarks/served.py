"""A real `boternity serve` in a child process on 127.0.0.1, for the load benchmark and the
hostile-input tests that must see the server exactly as users start it (threads, sockets, limits).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
_READY = re.compile(r"Boternity API on (http://127\.0\.0\.1:\d+)")


@contextlib.contextmanager
def served(*, env: dict[str, str] | None = None, project_dir: Path | None = None,
           startup_timeout: float = 90.0) -> Iterator[str]:
    """Start `boternity serve --port 0`, yield its base URL once it answers, stop it after.

    ``env`` adds to this process's environment (e.g. ``BOTERNITY_SERVE_*`` limits)."""
    cmd = [sys.executable, "-m", "boternity.cli.main", "serve", "--port", "0",
           "--dir", str(project_dir or ROOT / "examples")]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    base: list[str] = []
    ready = threading.Event()
    stderr_tail: list[str] = []

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_tail.append(line)
            del stderr_tail[:-50]
            if not base and (m := _READY.search(line)):
                base.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        if not ready.wait(startup_timeout) or not base:
            raise RuntimeError("boternity serve did not start:\n" + "".join(stderr_tail))
        _wait_answering(base[0], startup_timeout)
        yield base[0]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


def _wait_answering(base: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/openapi.json", timeout=10) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > end:
                raise
        time.sleep(0.2)
