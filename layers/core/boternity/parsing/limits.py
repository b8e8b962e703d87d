"""The limits every outside text is parsed under, and the one error a parser raises.

Each limit is read from its environment variable when a parse starts (so ``boternity serve``,
the Lambda functions and tests pick up a change without a restart of anything else); a value
that is not a positive integer is ignored with a warning rather than silently disabling a limit.
docs/limits.md lists them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from typing import Any

from boternity.errors import BoternityError

_log = logging.getLogger("boternity")


@dataclass(frozen=True)
class Limits:
    """How much of an outside text is parsed before giving up. Field metadata names the variable."""

    # Bytes of text. The API's own body limits (256 KiB) apply first; this bounds files and --input.
    max_bytes: int = 1024 * 1024
    # Nested mappings/sequences (objects/arrays). Workflows need about 8; Python's recursion limit
    # (about 1,000) is what 3,000 levels used to hit.
    max_depth: int = 64
    # Nodes (scalars, mappings, sequences) once every alias is replaced by what it names.
    max_nodes: int = 100_000
    # Characters of scalars once aliases are expanded: 100 aliases of one 1 MiB string are 100 MiB.
    max_scalar_chars: int = 4 * 1024 * 1024
    # Alias (*name) occurrences in one YAML document.
    max_aliases: int = 100
    # Characters of one number. Python refuses to turn more than 4,300 decimal digits into an int
    # (ValueError), and serialising a huge int back is just as slow.
    max_number_digits: int = 100
    # Characters of text one render of a step's templates may produce. A template is small, but
    # each ``{{ }}`` copies what it names: 10,000 references to a 100 KB output made 1 GB, in the
    # process that runs every step locally. Room for the largest value a step can hold (an http
    # body is cut at 10 MiB) three times over.
    max_rendered_chars: int = 32 * 1024 * 1024
    # Values one condition's comparisons ('==', '!=', 'in', contains) may visit: two lists of five
    # million numbers (a 10 MB http body) took 2 s to compare, and a condition may compare a
    # hundred times. Ten times the node limit: any two values a workflow or payload can hold.
    max_compared_values: int = 1_000_000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Limits:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_VARS[f.name])
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value <= 0:
                _log.warning("ignoring %s=%r: not a positive integer, using %s", ENV_VARS[f.name], raw, f.default)
                continue
            values[f.name] = value
        return cls(**values)


ENV_VARS: dict[str, str] = {
    "max_bytes": "BOTERNITY_MAX_INPUT_BYTES",
    "max_depth": "BOTERNITY_MAX_DEPTH",
    "max_nodes": "BOTERNITY_MAX_NODES",
    "max_scalar_chars": "BOTERNITY_MAX_SCALAR_CHARS",
    "max_aliases": "BOTERNITY_MAX_ALIASES",
    "max_number_digits": "BOTERNITY_MAX_NUMBER_DIGITS",
    "max_rendered_chars": "BOTERNITY_MAX_RENDERED_CHARS",
    "max_compared_values": "BOTERNITY_MAX_COMPARED_VALUES",
}


class ParseError(BoternityError):
    """Outside text that cannot become data: malformed, not UTF-8, or beyond a limit.

    ``code`` is stable (``too_large``, ``too_deep``, ``too_many_nodes``, ``too_large_expanded``,
    ``too_many_aliases``, ``duplicate_key``,
    ``recursive_alias``, ``number_too_long``, ``invalid_number``, ``invalid_encoding``,
    ``invalid_json``, ``yaml_syntax``, ``invalid_value``); ``limit`` names the environment
    variable that raises the limit hit, if one was.
    """

    def __init__(self, message: str, *, code: str, line: int | None = None, column: int | None = None,
                 path: str | None = None, limit: str | None = None) -> None:
        self.message = message
        self.code = code
        self.line = line
        self.column = column
        self.path = path
        self.limit = limit
        super().__init__(message)

    def location(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}" + (f", column {self.column}" if self.column is not None else ""))
        if self.path:
            parts.append(f"field '{self.path}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{self.message} (at {where})" if where else self.message

    def details(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line, "column": self.column,
                "path": self.path, "limit": self.limit}


def over_limit(limits: Limits, name: str) -> str:
    """The end of a message about limit ``name``: its value and how to change it."""
    return f"(limit {getattr(limits, name):,}, {ENV_VARS[name]})"
