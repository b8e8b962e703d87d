"""What the CLI prints never drives the terminal.

Step ids, step outputs, error messages and API answers come from workflow authors, callers and
target servers; printed raw, ``\\x1b[2J`` clears the screen, OSC 52 writes the clipboard, a
carriage return or U+202E (right-to-left override) makes a line read differently from what it
holds. So every C0/C1 control character except newline and tab, DEL, and the bidirectional
overrides are written as visible escapes (``\\u001b``, ``\\u009b``, ``\\u202e``). JSON output stays valid JSON:
json.dumps already escapes C0 characters, and ``\\uXXXX`` is how JSON spells the rest.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_char(m: re.Match[str]) -> str:
    # The \uXXXX form for every character: it is also how JSON spells it, so printed JSON stays valid.
    return f"\\u{ord(m.group()):04x}"


def escape_controls(text: str) -> str:
    """``text`` with every terminal-controlling character written as a visible escape."""
    return _UNSAFE.sub(_escape_char, text)


class EscapingStream:
    """A text stream that escapes control characters in everything written to it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape_controls(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:   # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)
