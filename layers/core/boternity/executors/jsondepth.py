"""JSON that a step did not write itself (a script's output, a target's response) parsed with a depth limit.

``json.loads`` recurses once per nesting level: a few thousand ``[`` raise RecursionError, which is not a
ValueError and escaped every "not JSON, keep the text" fallback as a crash. And a value that parses at
900 levels still breaks whatever walks it next (secret masking, the run records, Step Functions). So the
depth is counted first, in one pass that stops as soon as the limit is passed, and :class:`TooDeep` (a
``ValueError``) is raised before ``json.loads`` sees the text.

Standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "TooDeep", "loads", "too_deep"]

#: The same bound the expression language puts on its own nesting (boternity.expressions.MAX_DEPTH).
MAX_DEPTH = 100

# String literals go first, so brackets inside them do not count (written as an unrolled loop: the
# ``(a|b)*`` form backtracks per character and takes seconds on a 10 MB string). Then everything but
# brackets goes.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
# Openers become 2 and closers 0, so ``code - 1`` is the change in depth.
_DELTAS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


class TooDeep(ValueError):
    """The text nests arrays and objects more than ``limit`` levels deep."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"JSON nested more than {limit} levels deep")


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when ``text`` nests arrays and objects more than ``limit`` levels deep."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot nest deeper than its number of openers: no need to scan
    # Everything outside strings that is not a bracket is deleted; lone surrogates (text decoded from
    # anything) cannot be encoded and go with the rest.
    skeleton = _STRING.sub("", text).encode("utf-8", "ignore").translate(_DELTAS, _NOT_BRACKET)
    # Bracket by bracket only where the limit is within reach: elsewhere a block's openers cannot take
    # the depth past it, and counting them (in C) is enough. A Python loop over every bracket of a
    # 10 MB body would take seconds.
    step = max(16, limit)
    depth = 0
    for start in range(0, len(skeleton), step):
        block = skeleton[start : start + step]
        openers = block.count(2)
        if depth + openers <= limit:
            depth += 2 * openers - len(block)
            continue
        for code in block:
            depth += code - 1
            if depth > limit:
                return True
    return False


def loads(text: str, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)``, refusing text nested deeper than ``max_depth`` with :class:`TooDeep`."""
    if too_deep(text, max_depth):
        raise TooDeep(max_depth)
    return json.loads(text, **kwargs)
