"""Which S3 object, webhook request or EventBridge event belongs to which trigger.

The same functions run when a workflow is deployed (building the lookup keys and patterns) and
when an event arrives (matching it), so both sides always agree. Stdlib only.
"""

from __future__ import annotations

import posixpath
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING
from urllib.parse import unquote

from boternity.errors import WorkflowError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["event_pattern", "match_file", "normalize_prefix", "webhook_path_key"]


# --------------------------------------------------------------------------- file_watch


def normalize_prefix(prefix: str) -> str:
    """A watched folder as an S3 key prefix: ``"inbox"``, ``"/inbox"``, ``"inbox/"`` -> ``"inbox/"``.

    ``""`` and ``"/"`` mean the whole bucket and give ``""``. Repeated slashes collapse, since
    a user writing ``"in//box"`` means one folder, not an empty-named one.
    """
    parts = [p for p in prefix.strip().split("/") if p]
    return "/".join(parts) + "/" if parts else ""


def match_file(key: str, prefixes: Sequence[str], patterns: Sequence[str]) -> bool:
    """Whether a file-watch trigger with these ``paths`` and ``patterns`` takes the S3 object ``key``.

    ``key`` is the decoded key (S3 event notifications URL-encode it; decode with
    ``urllib.parse.unquote_plus`` first). It must lie in one of the folders in ``prefixes``
    ("inbox" is the folder ``inbox/``, never ``inbox2/``); with no prefixes nothing matches. When
    ``patterns`` are given, the file name or the whole key must match one of them: shell globs
    (``* ? [a-z] [!x]``), case-sensitive as S3 keys are. Keys ending in '/' are the empty
    "folder" objects the S3 console creates, not files, and never match.
    """
    if not key or key.endswith("/"):
        return False
    folders = [normalize_prefix(p) for p in prefixes]
    if not any(key.startswith(folder) for folder in folders):
        return False
    if not patterns:
        return True
    name = key.rsplit("/", 1)[-1]
    return any(fnmatchcase(name, pattern) or fnmatchcase(key, pattern) for pattern in patterns)


# --------------------------------------------------------------------------- webhook


def webhook_path_key(path: str) -> str:
    """The canonical form of a webhook path, used as the routing key on both sides.

    Leading '/' added, trailing '/' dropped, '//' collapsed, '.' segments dropped. A '..'
    segment (also percent-encoded, ``%2e%2e``) is refused: a path that climbs has no one
    meaning, and accepting it would let two spellings reach one workflow. Case is kept.
    """
    if not isinstance(path, str):
        raise WorkflowError("a webhook path must be a string", code="invalid_webhook_path", field="path")
    segments: list[str] = []
    for segment in path.strip().split("/"):
        if unquote(segment) == "..":
            raise WorkflowError(
                f"webhook path '{path}' contains a '..' segment", code="invalid_webhook_path", field="path"
            )
        if segment and segment != ".":
            segments.append(segment)
    return posixpath.join("/", *segments)


# --------------------------------------------------------------------------- event


def event_pattern(source: str, event_type: str) -> dict[str, list[str]]:
    """The EventBridge event pattern for an event trigger: this source and detail-type, exactly."""
    for name, value in (("source", source), ("event_type", event_type)):
        if not isinstance(value, str) or not value.strip():
            raise WorkflowError(
                f"an event trigger needs a non-empty {name}", code="invalid_event_trigger", field=name
            )
    return {"source": [source], "detail-type": [event_type]}
