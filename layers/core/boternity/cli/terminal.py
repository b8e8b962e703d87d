"""Terminal-safe output for the ``boternity`` command.

Step ids, prompts, error causes and run records come from workflow files, trigger payloads and
servers the user does not control. Printed raw, an escape sequence in any of them can clear the
screen, rewrite earlier lines, retitle the window or (in some terminals) inject input. Every
control character except newline and tab is shown as a ``\\uXXXX`` escape instead, which also
keeps ``--json`` output valid JSON (json.dumps already escapes C0 inside strings; this adds
DEL and the C1 range, which ``ensure_ascii=False`` passes through).
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeStream:
    """A text stream that writes :func:`printable` text to the stream it wraps."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def safe_output() -> Iterator[None]:
    """stdout and stderr show control characters as escapes while the block runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(saved[0]), SafeStream(saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
