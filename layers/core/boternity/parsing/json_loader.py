"""JSON from outside (request bodies, trigger payloads, JSON workflows, ``--input``), bounded.

``json.loads`` recurses once per nesting level in C and raises RecursionError near 1,000 levels;
it turns any digit string into an int (ValueError past 4,300 digits) and accepts NaN and
Infinity, which are not JSON and cannot be stored or sent on. So one linear regex pass over the
tokens checks depth, number length and those constants first, with a line and column for each;
only text that passes it reaches ``json.loads``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

from boternity.parsing.limits import Limits, ParseError, over_limit

# A whole string (so brackets and digits inside strings are skipped), a bracket, a number, or a
# constant json.loads would accept. The string alternative is the unrolled-loop form: linear, no
# backtracking on long strings.
_TOKENS = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*"'
    r"|(?P<open>[\[{])|(?P<close>[\]}])"
    r"|(?P<number>-?\d+(?P<fraction>(?:\.\d+)?(?:[eE][+-]?\d+)?))"
    r"|(?P<constant>-?Infinity|NaN)",
    re.ASCII | re.DOTALL,
)
_FRACTION = "fraction"   # a number with one becomes a float in json.loads; only floats overflow


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def decode_utf8(raw: bytes, *, limits: Limits | None = None, what: str = "the body") -> str:
    """Bytes → text, refusing oversized and non-UTF-8 input with the offending byte's position."""
    limits = limits or Limits.from_env()
    if len(raw) > limits.max_bytes:
        raise ParseError(f"{what} is larger than allowed {over_limit(limits, 'max_bytes')}",
                         code="too_large", limit="BOTERNITY_MAX_INPUT_BYTES")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ParseError(f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                         code="invalid_encoding", line=line) from None


def _prescan(text: str, limits: Limits, what: str) -> None:
    depth = 0
    for m in _TOKENS.finditer(text):
        kind = m.lastgroup
        if kind is None:        # a string
            continue
        if kind == "open":
            depth += 1
            if depth > limits.max_depth:
                line, col = _line_col(text, m.start())
                raise ParseError(f"{what} is nested deeper than {limits.max_depth} levels "
                                 f"{over_limit(limits, 'max_depth')}", code="too_deep", line=line, column=col,
                                 limit="BOTERNITY_MAX_DEPTH")
        elif kind == "close":
            depth -= 1
        elif kind == "number":
            digits = len(m.group()) - m.group().startswith("-")
            if digits > limits.max_number_digits:
                line, col = _line_col(text, m.start())
                raise ParseError(f"{what} holds a number of {digits:,} characters, longer than allowed "
                                 f"{over_limit(limits, 'max_number_digits')}", code="number_too_long",
                                 line=line, column=col, limit="BOTERNITY_MAX_NUMBER_DIGITS")
            if m.group(_FRACTION) and math.isinf(float(m.group())):
                # 1e999 is three digits long, but json.loads makes it Infinity: NaN by another spelling.
                line, col = _line_col(text, m.start())
                raise ParseError(f"{what} holds {m.group()}, a number beyond a double's range (it would be "
                                 "Infinity, which is not a JSON number)", code="invalid_number", line=line,
                                 column=col)
        else:
            line, col = _line_col(text, m.start())
            raise ParseError(f"{what} holds {m.group()}, which is not a JSON number", code="invalid_number",
                             line=line, column=col)


def _refuse_constant(name: str) -> Any:
    # Reached only where the pre-scan's tokenisation differs from json's; still never a float('nan').
    raise ParseError(f"{name} is not a JSON number", code="invalid_number")


def _unique_keys(what: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise ParseError(f"{what} has the key '{key}' twice in one object", code="duplicate_key")
                seen.add(key)
        return out

    return hook


def loads_json(text: str | bytes, *, limits: Limits | None = None, what: str = "the body",
               unique_keys: bool = False) -> Any:
    """Parse JSON text within ``limits``; raises :class:`ParseError` (never RecursionError/ValueError).

    ``unique_keys`` refuses an object with a repeated key (json.loads keeps the last one silently):
    for workflows, where the two readings of a definition must not differ.
    """
    limits = limits or Limits.from_env()
    if isinstance(text, bytes | bytearray):
        text = decode_utf8(bytes(text), limits=limits, what=what)
    elif len(text) > limits.max_bytes:
        raise ParseError(f"{what} is larger than allowed {over_limit(limits, 'max_bytes')}",
                         code="too_large", limit="BOTERNITY_MAX_INPUT_BYTES")
    text = text.removeprefix("\ufeff")
    _prescan(text, limits, what)
    try:
        return json.loads(text, parse_constant=_refuse_constant,
                          object_pairs_hook=_unique_keys(what) if unique_keys else None)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{what} is not valid JSON: {exc.msg}", code="invalid_json", line=exc.lineno,
                         column=exc.colno) from None
    except (RecursionError, ValueError) as exc:   # the pre-scan should make these unreachable
        raise ParseError(f"{what} is not valid JSON: {exc}", code="invalid_json") from None


def json_or(text: str, default: Any, *, what: str = "the text") -> Any:
    """``text`` parsed as JSON within the depth and number limits, else ``default``.

    For what a step receives (an HTTP response, a program's stdout, a model's reply): the caller
    has already bounded its size, so only the size limit is lifted; JSON nested too deep for
    ``json.loads`` (RecursionError) is treated like any other text that is not usable JSON.
    """
    limits = replace(Limits.from_env(), max_bytes=max(len(text), 1))
    try:
        return loads_json(text, limits=limits, what=what)
    except ParseError:
        return default
