"""Bots: the folder that gives an ``agent`` step its model, sampling settings and system prompt.

A bot is a folder ``<bots_dir>/<slug>/``::

    IDENTITY.md   YAML frontmatter between ``---`` lines, then a markdown body
    SOUL.md       optional: the system prompt

``IDENTITY.md`` frontmatter fields (all optional; unknown fields are ignored so bots written for the
reference implementation load unchanged):

=================  ===========  ===============================================================
field              type         meaning
=================  ===========  ===============================================================
``display_name``   string       shown in logs and the UI; defaults to the slug
``model``          string       the model, unless the step sets ``model``
``temperature``    number 0..2  unless the step sets ``temperature``
``max_tokens``     integer >=1  unless the step sets ``max_tokens``
``category``       string       informational
``provider``       string       who serves ``model``; this runtime only calls Anthropic
=================  ===========  ===============================================================

System prompt precedence: ``SOUL.md`` when it exists and is not blank, else the ``IDENTITY.md`` body,
else none. (SOUL.md wins because a bot that has one keeps its persona there and uses the IDENTITY
body for notes to humans; a blank SOUL.md is treated as absent so an empty placeholder file does
not silently erase the prompt.)

A missing bot folder is not an error, as in the reference: :func:`load_bot` returns a
``Bot(found=False)`` whose fields are all unset, the step's own settings and the defaults apply,
and the caller logs a warning. A bot that exists but is malformed *is* an error
(``StepFailed`` ``agent.bot_invalid``, naming the file and the field): retrying cannot fix it.

Where the files come from is a :class:`BotSource`. :class:`LocalBotSource` reads a folder (locally,
or the copy the cloud syncs into /tmp); a source that reads S3 directly only has to fetch the two
texts and call :func:`bot_from_texts`, so parsing and validation stay in one place.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from boternity.errors import StepFailed
from boternity.parsing import ParseError

__all__ = [
    "IDENTITY_FILE",
    "SOUL_FILE",
    "Bot",
    "BotSource",
    "LocalBotSource",
    "bot_from_texts",
    "clear_cache",
    "load_bot",
    "split_frontmatter",
]

IDENTITY_FILE = "IDENTITY.md"
SOUL_FILE = "SOUL.md"
INVALID = "agent.bot_invalid"

# A slug names one folder directly under bots_dir: no separators, no "..", nothing hidden. The slug
# comes from a rendered step config, so without this check a template could read any file on disk.
# \Z, not $: "$" also matches before a final newline ("writer\n" named no folder, and the agent
# ran without its bot).
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
# The delimiter lines of a frontmatter block (Jekyll/Hugo convention; "..." is YAML's end marker).
_OPEN = "---"
_CLOSE = ("---", "...")


@dataclass(frozen=True)
class Bot:
    """A bot's settings. ``None`` means "not set by the bot": the step or the default decides."""

    slug: str
    display_name: str = ""
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    system_prompt: str | None = None
    # False when there is no folder for this slug; every setting above is then unset.
    found: bool = True
    category: str | None = None
    provider: str | None = None
    # Where the bot was read from (a folder path, an S3 URL, ...), for messages.
    origin: str | None = None

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.slug)


class BotSource(Protocol):
    """Anything that can produce a bot by slug: a local folder now, an S3 prefix later."""

    def get(self, slug: str) -> Bot: ...


class LocalBotSource:
    """Bots in a folder on disk. ``None`` means no bots folder is configured: every bot is missing."""

    def __init__(self, bots_dir: Path | str | None) -> None:
        self.bots_dir = Path(bots_dir) if bots_dir is not None else None

    def get(self, slug: str) -> Bot:
        return load_bot(self.bots_dir, slug)

    def __repr__(self) -> str:
        return f"LocalBotSource({str(self.bots_dir)!r})"


# (bot folder, slug) -> (file stamps, Bot). A warm Lambda container runs many steps with the same
# bot; stat() is far cheaper than read + YAML parse, and the stamps catch edits during local runs.
_Stamp = tuple[tuple[int, int] | None, tuple[int, int] | None]
_cache: dict[tuple[str, str], tuple[_Stamp, Bot]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every parsed bot (tests; a long-lived process that wants to force a re-read)."""
    with _cache_lock:
        _cache.clear()


def load_bot(bots_dir: Path | None, slug: str) -> Bot:
    """The bot ``<bots_dir>/<slug>/``, or ``Bot(slug, found=False)`` when there is no such folder.

    Raises ``StepFailed`` (``agent.bot_invalid``) for an unusable slug or malformed files.
    """
    _check_slug(slug)
    if bots_dir is None:
        return Bot(slug, found=False)
    folder = Path(bots_dir) / slug
    if not folder.is_dir():
        return Bot(slug, found=False, origin=str(folder))
    identity_path = folder / IDENTITY_FILE
    soul_path = folder / SOUL_FILE
    stamp: _Stamp = (_stamp(identity_path), _stamp(soul_path))
    key = (str(folder.resolve()), slug)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    bot = bot_from_texts(
        slug,
        identity=_read(identity_path) if stamp[0] is not None else None,
        soul=_read(soul_path) if stamp[1] is not None else None,
        origin=str(folder),
    )
    with _cache_lock:
        _cache[key] = (stamp, bot)
    return bot


def bot_from_texts(slug: str, *, identity: str | None, soul: str | None, origin: str | None = None) -> Bot:
    """Build a bot from the texts of its ``IDENTITY.md`` and ``SOUL.md`` (``None``: the file is absent).

    Every :class:`BotSource` ends here, so a bot means the same wherever it is stored.
    """
    _check_slug(slug)
    where = f"{origin}/{IDENTITY_FILE}" if origin else f"bot '{slug}' {IDENTITY_FILE}"
    meta: dict[str, Any] = {}
    body = ""
    if identity is not None:
        meta, body = split_frontmatter(identity, where=where)
    system_prompt = None
    if soul is not None and soul.strip():
        system_prompt = soul.strip()
    elif body.strip():
        system_prompt = body.strip()
    return Bot(
        slug=slug,
        display_name=_optional_str(meta, "display_name", where) or "",
        model=_optional_str(meta, "model", where),
        temperature=_optional_temperature(meta, where),
        max_tokens=_optional_max_tokens(meta, where),
        system_prompt=system_prompt,
        found=True,
        category=_optional_str(meta, "category", where),
        provider=_optional_str(meta, "provider", where),
        origin=origin,
    )


def split_frontmatter(text: str, *, where: str) -> tuple[dict[str, Any], str]:
    """``(frontmatter mapping, body)``. A text that does not start with ``---`` is all body."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != _OPEN:
        return {}, text
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n").rstrip() in _CLOSE:
            break
    else:
        raise StepFailed(
            f"{where}: the frontmatter starts with '---' on line 1 but has no closing '---' line",
            code=INVALID,
            details={"file": where, "line": 1},
        )
    raw = "".join(lines[1:index])
    body = "".join(lines[index + 1 :])
    # PyYAML on first use: validate.py imports this module for bot_name_problem alone.
    from boternity.parsing.yaml_loader import load_yaml

    try:
        meta = load_yaml(raw) if raw.strip() else {}   # bounded: a bot file is as untrusted as a workflow
    except ParseError as exc:
        # +1: the line counts from the line after the opening '---'.
        line = exc.line + 1 if exc.line else None
        problem = exc.message.removeprefix("invalid YAML: ")
        at = f" (line {line})" if line else ""
        raise StepFailed(
            f"{where}: the frontmatter is not valid YAML{at}: {problem}",
            code=INVALID,
            details={"file": where, "line": line},
        ) from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise StepFailed(
            f"{where}: the frontmatter must be a mapping of fields, not a {_kind(meta)}",
            code=INVALID,
            details={"file": where},
        )
    return meta, body


# --------------------------------------------------------------------------- field checks


def _optional_str(meta: dict[str, Any], name: str, where: str) -> str | None:
    value = meta.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong_type(where, name, "a string", value)
    return value.strip() or None


def _optional_temperature(meta: dict[str, Any], where: str) -> float | None:
    value = meta.get("temperature")
    if value is None:
        return None
    # bool is an int in Python; "temperature: yes" is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(where, "temperature", "a number between 0 and 2", value)
    if not math.isfinite(value) or not 0 <= value <= 2:
        raise StepFailed(
            f"{where}: field 'temperature' must be between 0 and 2, got {value}",
            code=INVALID,
            details={"file": where, "field": "temperature"},
        )
    return float(value)


def _optional_max_tokens(meta: dict[str, Any], where: str) -> int | None:
    value = meta.get("max_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(where, "max_tokens", "a positive integer", value)
    if value < 1:
        raise StepFailed(
            f"{where}: field 'max_tokens' must be at least 1, got {value}",
            code=INVALID,
            details={"file": where, "field": "max_tokens"},
        )
    return value


def _wrong_type(where: str, name: str, expected: str, value: Any) -> StepFailed:
    return StepFailed(
        f"{where}: field '{name}' must be {expected}, got {_kind(value)} {_short(value)}",
        code=INVALID,
        details={"file": where, "field": name},
    )


def _kind(value: Any) -> str:
    return {
        dict: "mapping",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def bot_name_problem(slug: object) -> str | None:
    """Why ``slug`` cannot name a bot folder, or None (the validator asks this at load time)."""
    if not isinstance(slug, str) or not _SLUG.match(slug) or ".." in slug:
        return (f"bot name {_short(slug)} is not a valid bot folder name (letters, digits, '.', '_', '-'; "
                "starting with a letter or digit)")
    return None


def _check_slug(slug: str) -> None:
    problem = bot_name_problem(slug)
    if problem is not None:
        raise StepFailed(problem, code=INVALID, details={"field": "bot"})


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StepFailed(
            f"{path}: not valid UTF-8 (byte {exc.start})", code=INVALID, details={"file": str(path)}
        ) from exc
