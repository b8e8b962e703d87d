"""YAML from outside (workflow files and bodies, bot and skill front matter), bounded.

PyYAML composes a node graph first (an alias is the *same* node object, so composing costs what
the text costs) and only then constructs Python objects; everything that walks the result
afterwards (source marks, pydantic, the compiler, ``json.dumps``) pays for every alias again, which
is how 474 bytes of nested aliases became gigabytes. So the checks run inside composition, on the
graph, before anything is expanded:

* depth: refused when a mapping or sequence would open past ``max_depth``, so the composer's
  recursion (one Python frame per level) stays shallow whatever the text holds;
* expanded size: each finished collection's size *with aliases expanded* is memoised, so an alias
  adds its target's size in O(1); the running total is checked at every node and alias;
* aliases: their number, and an alias to a collection still being composed (a cycle, which
  would make every later walk loop or recurse forever);
* integers: an int scalar longer than ``max_number_digits`` (``int()`` fails past 4,300 digits).

Otherwise this is ``yaml.SafeLoader``: same tags, same node marks (model/loader.py uses them).
"""

from __future__ import annotations

from typing import Any

import yaml

from boternity.parsing.limits import Limits, ParseError, over_limit

_INT_TAG = "tag:yaml.org,2002:int"


def _path_text(path: list[str | int]) -> str | None:
    parts = [str(p) for p in path]
    if len(parts) > 8:   # a path 64 levels deep would bury the message
        return ".".join(parts[:4]) + f".<{len(parts) - 7} more>." + ".".join(parts[-3:])
    return ".".join(parts) or None


class _BoundedLoader(yaml.SafeLoader):
    # Tags and implicit types of its own, as PyYAML's safe loader defines them: a library that
    # adds to ``yaml.SafeLoader`` at run time (samtranslator's ``yaml_parse`` makes every ``!Tag``
    # a CloudFormation intrinsic) changes every subclass that shares its tables, and then a
    # workflow's ``!Ref`` would load instead of being refused.
    yaml_constructors = dict(yaml.constructor.SafeConstructor.yaml_constructors)
    yaml_multi_constructors = dict(yaml.constructor.SafeConstructor.yaml_multi_constructors)
    yaml_implicit_resolvers = {k: list(v) for k, v in yaml.resolver.Resolver.yaml_implicit_resolvers.items()}

    def __init__(self, text: str, limits: Limits) -> None:
        super().__init__(text)
        self.limits = limits
        # The collections being composed, outermost first, each with the key/index of the child
        # being composed: the depth, the field path for messages, and the cycle check.
        self._open: list[tuple[yaml.Node, str | int | None]] = []
        self._weight: dict[int, tuple[int, int]] = {}   # id(node) -> (nodes, scalar chars), expanded
        self._nodes = 0
        self._chars = 0
        self._aliases = 0

    # -- where we are

    def _path(self) -> list[str | int]:
        return [i for _, i in self._open if i is not None]

    def _fail(self, message: str, code: str, mark: Any, limit: str | None = None) -> ParseError:
        return ParseError(message, code=code, line=mark.line + 1 if mark else None,
                          column=mark.column + 1 if mark else None, path=_path_text(self._path()), limit=limit)

    def _count(self, nodes: int, chars: int, mark: Any) -> None:
        self._nodes += nodes
        self._chars += chars
        if self._nodes > self.limits.max_nodes:
            raise self._fail(f"the document expands to more than {self.limits.max_nodes:,} nodes "
                             f"{over_limit(self.limits, 'max_nodes')}", "too_many_nodes", mark, "BOTERNITY_MAX_NODES")
        if self._chars > self.limits.max_scalar_chars:
            raise self._fail(f"the document's values expand to more than {self.limits.max_scalar_chars:,} "
                             f"characters {over_limit(self.limits, 'max_scalar_chars')}", "too_large_expanded", mark,
                             "BOTERNITY_MAX_SCALAR_CHARS")

    # -- composer hooks

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if parent is not None:
            if not self._open or self._open[-1][0] is not parent:
                self._open.append((parent, None))
            if isinstance(index, yaml.ScalarNode):
                self._open[-1] = (parent, index.value)
            elif isinstance(index, int):
                self._open[-1] = (parent, index)
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)   # None: PyYAML reports the undefined alias
            if target is not None:
                self._alias(target, event)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent) \
                and len(self._open) >= self.limits.max_depth:
            raise self._fail(f"nested deeper than {self.limits.max_depth} levels "
                             f"{over_limit(self.limits, 'max_depth')}", "too_deep", event.start_mark,
                             "BOTERNITY_MAX_DEPTH")
        return super().compose_node(parent, index)

    def _alias(self, target: yaml.Node, event: yaml.AliasEvent) -> None:
        self._aliases += 1
        if self._aliases > self.limits.max_aliases:
            raise self._fail(f"more than {self.limits.max_aliases} aliases {over_limit(self.limits, 'max_aliases')}",
                             "too_many_aliases", event.start_mark, "BOTERNITY_MAX_ALIASES")
        if any(node is target for node, _ in self._open):
            raise self._fail(f"alias *{event.anchor} refers to a value that contains it", "recursive_alias",
                             event.start_mark)
        nodes, chars = self._weight.get(id(target), (1, len(target.value) if isinstance(target.value, str) else 0))
        self._count(nodes, chars, event.start_mark)

    def compose_scalar_node(self, anchor: str | None) -> yaml.ScalarNode:
        node = super().compose_scalar_node(anchor)
        if node.tag == _INT_TAG and len(node.value.lstrip("+-")) > self.limits.max_number_digits:
            raise self._fail(f"an integer of {len(node.value):,} characters is longer than allowed "
                             f"{over_limit(self.limits, 'max_number_digits')}", "number_too_long", node.start_mark,
                             "BOTERNITY_MAX_NUMBER_DIGITS")
        self._count(1, len(node.value), node.start_mark)
        return node

    def compose_sequence_node(self, anchor: str | None) -> yaml.SequenceNode:
        self._count(1, 0, self.peek_event().start_mark)
        node = super().compose_sequence_node(anchor)
        self._close(node, node.value)
        return node

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:
        self._count(1, 0, self.peek_event().start_mark)
        node = super().compose_mapping_node(anchor)
        # The pairs as written: constructing a mapping splices a merge's (<<: *base) pairs into
        # node.value, and the duplicate-key check (model/loader.py) must see only these.
        node.own_pairs = list(node.value)
        self._close(node, [n for pair in node.value for n in pair])
        return node

    def _close(self, node: yaml.Node, children: list[yaml.Node]) -> None:
        if self._open and self._open[-1][0] is node:
            self._open.pop()
        nodes, chars = 1, 0
        for child in children:
            n, c = self._weight.get(id(child), (1, len(child.value) if isinstance(child.value, str) else 0))
            nodes += n
            chars += c
        self._weight[id(node)] = (nodes, chars)


def _yaml_error(exc: yaml.YAMLError, text: str) -> ParseError:
    if isinstance(exc, yaml.reader.ReaderError):
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        return ParseError(f"invalid YAML: character #x{exc.character:04x} is not allowed", code="yaml_syntax",
                          line=line, column=pos - (text.rfind("\n", 0, pos) + 1) + 1)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        problem = f"{context} (line {context_mark.line + 1}), {problem}"
    return ParseError(f"invalid YAML: {problem}", code="yaml_syntax", line=mark.line + 1 if mark else None,
                      column=mark.column + 1 if mark else None)


def load_yaml_node(text: str, *, limits: Limits | None = None) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document within ``limits``: (data, root node with its source marks)."""
    limits = limits or Limits.from_env()
    if len(text) > limits.max_bytes:
        raise ParseError(f"the text is larger than allowed {over_limit(limits, 'max_bytes')}",
                         code="too_large", limit="BOTERNITY_MAX_INPUT_BYTES")
    try:
        loader = _BoundedLoader(text, limits)   # PyYAML's Reader checks the characters here
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # SafeConstructor's own conversions: a date like 2026-13-45, a sexagesimal overflow.
        raise ParseError(f"invalid value: {exc}", code="invalid_value") from None
    finally:
        loader.dispose()
    return data, node


def load_yaml(text: str, *, limits: Limits | None = None) -> Any:
    """Parse one YAML document within ``limits`` (``yaml.safe_load`` semantics otherwise)."""
    return load_yaml_node(text, limits=limits)[0]
