"""What templates and conditions share: the ``Ref`` type, walking a path, claim checks, rendering.

Both languages read the same run context (``steps``, ``trigger``, ``variables``...) and must agree on
what ``a[0]`` or ``a.b`` means on a dict, a list or anything else, on how a claim-checked value
(``{"$ref": "blob:<sha256>", ...}``) is swapped for its content, and on how a non-string is written into
a string. Keeping those rules here means a condition and a template never disagree about a value.

Only the standard library is imported: this module is loaded by every Lambda.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boternity.errors import ExpressionError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MISSING",
    "Ref",
    "Resolver",
    "deep_resolve",
    "format_path",
    "get_item",
    "is_claim",
    "is_name_char",
    "read_string",
    "to_text",
    "type_name",
]


@dataclass(frozen=True)
class Ref:
    """One reference into the run context, as found in a template or a condition.

    ``text`` is exactly what the author wrote (for templates the whole ``{{ ... }}`` tag), and
    ``offset`` is where it starts, so ``source[offset:offset + len(text)] == text``: error messages
    can quote the author's own spelling instead of a normalised one.
    """

    root: str
    path: tuple[str | int, ...]
    text: str
    has_default: bool = False
    offset: int = 0

    def dotted(self) -> str:
        """The path in canonical template spelling (``steps.gather-news.output``), for messages."""
        return format_path(self.root, self.path)


class _Missing:
    """The one value that means "not there", distinct from a present ``None`` (JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def is_claim(value: Any) -> bool:
    """A claim-checked value: a dict standing for content stored elsewhere (S3), keyed ``$ref``."""
    return isinstance(value, dict) and "$ref" in value


class Resolver:
    """Swaps claim checks for their content, at most once per claim during one render or evaluation.

    A prompt that reads ``steps.a.output.title`` and ``steps.a.output.body`` touches the same
    claim twice; memoising by identity (the claim dicts live in the context for the whole call, so
    their ids are stable) keeps that to one S3 read. With no resolver function, values pass through
    untouched. Errors raised by the resolver function (S3 down, throttling) propagate as they are,
    so the step's retry policy can see them.
    """

    __slots__ = ("_fn", "_memo")

    def __init__(self, fn: Callable[[dict[str, Any]], Any] | None) -> None:
        self._fn = fn
        self._memo: dict[int, tuple[Any, Any]] = {}

    @property
    def active(self) -> bool:
        return self._fn is not None

    def __call__(self, value: Any) -> Any:
        """Resolve ``value`` if it is a claim; the result is not resolved again (no chains, no loops)."""
        if self._fn is None or not is_claim(value):
            return value
        hit = self._memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        resolved = self._fn(value)
        # Keep the claim alive next to its id so the id cannot be reused by another object.
        self._memo[id(value)] = (value, resolved)
        return resolved


def deep_resolve(value: Any, resolve: Resolver) -> Any:
    """``value`` with every claim inside it (at any depth of dicts and lists) resolved.

    Containers are rebuilt only on the way back from a claim, so a value without claims is
    returned as the very same object. Only ``dict``/``list``/``tuple`` are walked: other mappings
    (a lazy secrets mapping) are never iterated.
    """
    if not resolve.active:
        return value
    return _deep(resolve(value), resolve)


def _deep(value: Any, resolve: Resolver) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            nv = _deep(resolve(v), resolve)
            if nv is not v and out is None:
                out = dict(value)
            if out is not None:
                out[k] = nv
        return value if out is None else out
    if isinstance(value, (list, tuple)):
        items: list[Any] | None = None
        for i, v in enumerate(value):
            nv = _deep(resolve(v), resolve)
            if nv is not v and items is None:
                items = list(value)
            if items is not None:
                items[i] = nv
        return value if items is None else items
    return value


def _as_index(key: Any) -> int | None:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    return None


def get_item(container: Any, key: Any) -> Any:
    """One step of a path, or ``MISSING``; never raises for a key that is simply not there.

    Like JavaScript, where every property name is a string: an integer key on a mapping looks up
    its decimal string (``a[0]`` finds ``{"0": ...}``), and a digit-only name on a list is an index
    (``items.0`` is ``items[0]``). Negative indexes are out of range, as in JavaScript, rather than
    counting from the end. Strings, numbers, booleans and null have no members.
    """
    if isinstance(container, Mapping):
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        elif not isinstance(key, str):
            return MISSING
        try:
            return container[key]
        except KeyError:
            return MISSING
    if isinstance(container, (list, tuple)):
        index = _as_index(key)
        if index is None or not 0 <= index < len(container):
            return MISSING
        return container[index]
    return MISSING


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages written for workflow authors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def is_name_char(c: str) -> bool:
    """A character allowed in a template path name: letters, digits, ``_`` and ``-`` (step ids)."""
    return c.isalnum() or c == "_" or c == "-"


def _is_name(segment: str) -> bool:
    return bool(segment) and all(is_name_char(c) for c in segment)


def format_path(root: str, path: tuple[str | int, ...]) -> str:
    """Canonical spelling of a path: dots where a name allows it, brackets otherwise."""
    parts = [root]
    for seg in path:
        if isinstance(seg, int):
            parts.append(f"[{seg}]")
        elif _is_name(seg):
            parts.append(f".{seg}")
        else:
            parts.append(f"[{seg!r}]")
    return "".join(parts)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def to_text(value: Any) -> str:
    """How a value is written into a string: strings raw, everything else as compact JSON.

    Raises ExpressionError (not TypeError) for a value JSON cannot hold, e.g. a lazy mapping.
    """
    if isinstance(value, str):
        return value
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ExpressionError(f"cannot write a {type_name(value)} value as text ({exc})") from None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def read_string(src: str, start: int) -> tuple[str, int]:
    """Read the quoted string literal starting at ``src[start]`` (a ``'`` or ``"``).

    Returns the value and the offset just past the closing quote. Escapes follow JavaScript:
    ``\\n \\t \\r \\b \\f \\v \\0 \\uXXXX``, and a backslash before any other character stands for
    that character (so ``\\'``, ``\\"`` and ``\\\\`` work in either kind of quote).
    """
    quote = src[start]
    out: list[str] = []
    i = start + 1
    n = len(src)
    while i < n:
        c = src[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= n:
                break
            e = src[i + 1]
            if e == "u":
                digits = src[i + 2 : i + 6]
                if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise ExpressionError("bad \\u escape (needs 4 hex digits)", expression=src, offset=i)
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(e, e))
            i += 2
            continue
        out.append(c)
        i += 1
    raise ExpressionError("unterminated string", expression=src, offset=start)
