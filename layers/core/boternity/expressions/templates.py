"""String templates: ``{{ steps.fetch.output.items[0].title | default('none') }}``.

The grammar is deliberately tiny (a reference and an optional ``default(<literal>)``), so that every
template can be checked when a workflow is loaded: unknown roots and bad syntax are found by
``template_references`` at validation time, never first in the middle of a run.

Parsing is a single left-to-right pass over the string that always advances, so no input can make
it loop (the reference implementation hung on unresolvable input). Parsed templates are cached,
because a ``for_each`` step renders the same template once per item.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from boternity.errors import ExpressionError
from boternity.expressions.paths import (
    MISSING,
    Ref,
    Resolver,
    deep_resolve,
    format_path,
    get_item,
    is_name_char,
    read_string,
    to_text,
    type_name,
)
from boternity.parsing.limits import Limits, over_limit

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "TEMPLATE_ROOTS",
    "has_templates",
    "render",
    "render_value",
    "substitute_input",
    "template_references",
    "value_references",
]

#: The names a template may start with. Anything else is a syntax error, found at load time.
TEMPLATE_ROOTS = frozenset(
    {"steps", "trigger", "variables", "workflow", "run", "item", "index", "secrets", "loop"}
)

_OPEN = "{{"
_CLOSE = "}}"
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_WORD_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


class _Tag:
    """One ``{{ ... }}`` in a parsed template; ``default`` is MISSING when none was given."""

    __slots__ = ("default", "ref")

    def __init__(self, ref: Ref, default: Any) -> None:
        self.ref = ref
        self.default = default

    def __repr__(self) -> str:
        return f"_Tag({self.ref.text!r})"


_Parsed = tuple["str | _Tag", ...]


def _skip_ws(src: str, i: int) -> int:
    n = len(src)
    while i < n and src[i].isspace():
        i += 1
    return i


def _fail(message: str, src: str, offset: int) -> ExpressionError:
    return ExpressionError(message, expression=src, offset=offset)


def _char_at(src: str, i: int) -> str:
    return repr(src[i]) if i < len(src) else "end of text"


def _read_name(src: str, i: int) -> int:
    """Offset just past the name starting at ``i`` (``i`` itself when there is none)."""
    n = len(src)
    while i < n and is_name_char(src[i]):
        i += 1
    return i


def _read_literal(src: str, i: int) -> tuple[Any, int]:
    """The literal inside ``default(...)``: a quoted string, a number, true, false or null."""
    if i < len(src) and src[i] in "'\"":
        return read_string(src, i)
    m = _NUMBER.match(src, i)
    if m:
        text = m.group(0)
        try:
            value: Any = float(text) if (m.group(1) or m.group(2)) else int(text)
        except ValueError:  # an integer longer than Python will convert
            raise _fail("number too long", src, i) from None
        if isinstance(value, float) and math.isinf(value):
            # 1e999 would be Infinity: not a JSON number, so no step could be given it.
            raise _fail("number out of range (beyond a double)", src, i)
        return value, m.end()
    j = _read_name(src, i)
    word = src[i:j]
    if word in _WORD_LITERALS:
        return _WORD_LITERALS[word], j
    raise _fail("default(...) takes a literal: a quoted string, a number, true, false or null", src, i)


def _parse_tag(src: str, start: int) -> tuple[_Tag, int]:
    """Parse the tag whose ``{{`` is at ``start``; return it and the offset just past its ``}}``."""
    if src.find(_CLOSE, start + 2) < 0:
        raise _fail("'{{' without a matching '}}'", src, start)
    n = len(src)
    i = _skip_ws(src, start + 2)
    j = _read_name(src, i)
    if j == i:
        if src.startswith(_CLOSE, i):
            raise _fail("empty reference in '{{ }}'", src, start)
        raise _fail(f"unexpected {_char_at(src, i)}: expected a reference such as steps.<id>.output", src, i)
    root = src[i:j]
    if root not in TEMPLATE_ROOTS:
        raise _fail(f"unknown name '{root}' (use one of: {', '.join(sorted(TEMPLATE_ROOTS))})", src, i)
    path: list[str | int] = []
    i = j
    while i < n:
        c = src[i]
        if c == ".":
            j = _read_name(src, i + 1)
            if j == i + 1:
                raise _fail("expected a name after '.'", src, i + 1)
            path.append(src[i + 1 : j])
            i = j
        elif c == "[":
            k = _skip_ws(src, i + 1)
            if k < n and src[k] in "'\"":
                key, k = read_string(src, k)
                path.append(key)
            elif k < n and src[k] in "0123456789":
                j = k
                while j < n and src[j] in "0123456789":
                    j += 1
                try:
                    path.append(int(src[k:j]))
                except ValueError:
                    raise _fail("index too long", src, k) from None
                k = j
            else:
                raise _fail("expected a non-negative index or a quoted key after '['", src, k)
            k = _skip_ws(src, k)
            if not src.startswith("]", k):
                raise _fail(f"expected ']' but found {_char_at(src, k)}", src, k)
            i = k + 1
        else:
            break
    ref_end = i
    i = _skip_ws(src, i)
    default: Any = MISSING
    if src.startswith("|", i):
        k = _skip_ws(src, i + 1)
        j = _read_name(src, k)
        name = src[k:j]
        if name != "default":
            shown = f"'{name}'" if name else _char_at(src, k)
            raise _fail(f"unknown filter {shown} (a template only takes '| default(<literal>)')", src, k)
        k = _skip_ws(src, j)
        if not src.startswith("(", k):
            raise _fail("expected '(' after default", src, k)
        default, k = _read_literal(src, _skip_ws(src, k + 1))
        k = _skip_ws(src, k)
        if not src.startswith(")", k):
            raise _fail(f"expected ')' but found {_char_at(src, k)}", src, k)
        i = _skip_ws(src, k + 1)
    if not src.startswith(_CLOSE, i):
        if i >= n:
            raise _fail("'{{' without a matching '}}'", src, start)
        raise _fail(f"unexpected {_char_at(src, i)} after the reference {src[start + 2:ref_end].strip()!r}",
                    src, i)
    end = i + 2
    ref = Ref(root=root, path=tuple(path), text=src[start:end], has_default=default is not MISSING,
              offset=start)
    return _Tag(ref, default), end


#: Templates up to this long are cached once parsed; longer ones are parsed each time (linear), so
#: the cache cannot keep megabytes of hostile templates alive (as jexl.CACHED_MAX_CHARS).
CACHED_MAX_CHARS = 1024


def _parse(template: str) -> _Parsed:
    """Split a template into literal text and tags, in order; raise ExpressionError on bad syntax."""
    if len(template) > CACHED_MAX_CHARS:
        return _split(template)
    return _parse_cached(template)


@lru_cache(maxsize=1024)
def _parse_cached(template: str) -> _Parsed:
    return _split(template)


def _split(template: str) -> _Parsed:
    parts: list[str | _Tag] = []
    pos = 0
    while True:
        start = template.find(_OPEN, pos)
        if start < 0:
            if pos < len(template):
                parts.append(template[pos:])
            return tuple(parts)
        if start > pos:
            parts.append(template[pos:start])
        tag, pos = _parse_tag(template, start)
        parts.append(tag)


def _missing(ref: Ref, walked: int, container: Any, segment: str | int) -> str:
    """Why ``segment`` could not be read from ``container`` (the value at ``ref.path[:walked]``)."""
    where = format_path(ref.root, ref.path[:walked])
    if isinstance(container, Mapping):
        return f"{segment!r} is not in {where}" if isinstance(segment, str) else f"[{segment}] is not in {where}"
    if isinstance(container, (list, tuple)):
        if isinstance(segment, int) or (segment.isascii() and segment.isdigit()):
            return f"index {segment} is out of range for {where} (length {len(container)})"
        return f"{where} is a list, so it has no {segment!r}"
    shown = f"[{segment}]" if isinstance(segment, int) else repr(segment)
    return f"{where} is {type_name(container)}, so it has no {shown}"


def _lookup(tag: _Tag, template: str, context: Mapping[str, Any], resolve: Resolver) -> Any:
    """The value a tag names (claims resolved all the way down), or its default when missing."""
    ref = tag.ref
    try:
        value = context[ref.root]
    except KeyError:
        if tag.default is not MISSING:
            return tag.default
        raise _fail(f"{ref.text}: '{ref.root}' is not available here", template, ref.offset) from None
    value = resolve(value)
    for walked, segment in enumerate(ref.path):
        nxt = get_item(value, segment)
        if nxt is MISSING:
            if tag.default is not MISSING:
                return tag.default
            raise _fail(f"{ref.text}: {_missing(ref, walked, value, segment)}", template, ref.offset)
        value = resolve(nxt)
    return deep_resolve(value, resolve)


def _as_text(tag: _Tag, template: str, context: Mapping[str, Any], resolve: Resolver) -> str:
    value = _lookup(tag, template, context, resolve)
    try:
        return to_text(value)
    except ExpressionError as exc:
        raise _fail(f"{tag.ref.text}: {exc.message}", template, tag.ref.offset) from None


class _Budget:
    """Characters one render call may still produce (``BOTERNITY_MAX_RENDERED_CHARS``): checked
    before the pieces are joined, so the oversized string is never built."""

    __slots__ = ("left", "limits")

    def __init__(self) -> None:
        self.limits = Limits.from_env()
        self.left = self.limits.max_rendered_chars

    def spend(self, n: int, template: str) -> None:
        self.left -= n
        if self.left < 0:
            raise _fail(f"the templates render to more than {self.limits.max_rendered_chars:,} characters "
                        f"{over_limit(self.limits, 'max_rendered_chars')}", template, 0)


def _render(template: str, context: Mapping[str, Any], resolve: Resolver, budget: _Budget) -> str:
    if _OPEN not in template:
        return template
    pieces: list[str] = []
    for part in _parse(template):
        piece = part if isinstance(part, str) else _as_text(part, template, context, resolve)
        budget.spend(len(piece), template)
        pieces.append(piece)
    return "".join(pieces)


def render(template: str, context: Mapping[str, Any], *,
           resolver: Callable[[dict[str, Any]], Any] | None = None) -> str:
    """Fill every ``{{ ... }}`` in ``template``: strings raw, anything else as compact JSON.

    Raises ExpressionError for bad syntax, for a missing value without a default (the message
    starts with the tag as written, e.g. ``{{ trigger.topic }}: 'topic' is not in trigger``) and
    for a result over ``BOTERNITY_MAX_RENDERED_CHARS``.
    A present ``null`` renders as ``null`` (``default`` is only for values that are not there).
    """
    return _render(template, context, Resolver(resolver), _Budget())


def _single_tag(parts: _Parsed) -> _Tag | None:
    """The tag, when a template is one tag and nothing else but whitespace."""
    tag: _Tag | None = None
    for part in parts:
        if isinstance(part, str):
            if part.strip():
                return None
        elif tag is None:
            tag = part
        else:
            return None
    return tag


def _render_any(value: Any, context: Mapping[str, Any], resolve: Resolver, budget: _Budget) -> Any:
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        tag = _single_tag(_parse(value))
        if tag is not None:
            # The value itself, shared rather than copied: it costs no new text.
            return _lookup(tag, value, context, resolve)
        return _render(value, context, resolve, budget)
    if isinstance(value, dict):
        return {k: _render_any(v, context, resolve, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_render_any(v, context, resolve, budget) for v in value]
    return value


def render_value(value: Any, context: Mapping[str, Any], *,
                 resolver: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """Render every string inside ``value`` (dicts and lists, recursively; dict keys are left alone).

    A string that is exactly one tag (whitespace around it allowed) becomes the referenced value
    itself, not its JSON text: ``"{{ steps.fetch.output.items }}"`` gives a list, so a step's
    structured input keeps its types. Everything else renders like ``render``. Claims are resolved
    once per call, however many strings read them.
    """
    return _render_any(value, context, Resolver(resolver), _Budget())


def template_references(template: str) -> list[Ref]:
    """Every reference in ``template``, in order; raises ExpressionError on bad syntax."""
    if _OPEN not in template:
        return []
    return [part.ref for part in _parse(template) if isinstance(part, _Tag)]


def value_references(value: Any) -> list[Ref]:
    """Every reference in every string inside ``value`` (dicts and lists, recursively)."""
    refs: list[Ref] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            refs.extend(template_references(v))
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
    return refs


def has_templates(s: Any) -> bool:
    """Whether ``s`` is a string that must go through ``render`` (it contains ``{{``).

    A lone ``{{`` counts: rendering such a string reports the syntax error rather than silently
    passing it through.
    """
    return isinstance(s, str) and _OPEN in s


_INPUT = re.compile(r"\{\{ input \}\}|\{\{input\}\}")


def substitute_input(body: str, input_text: str) -> str:
    """Put a skill's input into its prompt body, at ``{{ input }}`` and ``{{input}}`` only.

    Skill bodies are free text that may contain other ``{{ ... }}`` (examples, other template
    languages): those are left exactly as written. One pass, so ``{{input}}`` inside the input
    text itself is not substituted again.
    """
    return _INPUT.sub(lambda _m: input_text, body)
