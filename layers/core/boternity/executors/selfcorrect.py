"""The self-correction prompt: between two attempts of a failed step, ask an LLM what to change.

Only the text lives here (no SDK import, so any handler can build it cheaply); the call itself is
:func:`boternity.executors.agent.request_correction`, and the answer is appended to the next
attempt's prompt by :func:`boternity.executors.agent.run_agent` (``correction=``).

The prompt keeps the reference implementation's shape, so corrections read the same in both.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MAX_ERROR_CHARS", "build_correction_prompt", "summarize_config"]

# Errors can carry a whole HTTP response body; the model needs the gist, and we pay for every token.
MAX_ERROR_CHARS = 4000
_PROMPT_CHARS = 80
_SOURCE_CHARS = 60
_WHITESPACE = re.compile(r"\s+")
_BACKTICKS = re.compile(r"`{3,}")


def build_correction_prompt(
    *, step_name: str, config_summary: str, attempt: int, max_attempts: int, error: str
) -> str:
    """The analysis prompt for attempt ``attempt`` (1-based) of ``max_attempts`` that failed with ``error``."""
    remaining = max(max_attempts - attempt, 0)
    error = _truncate(error.strip(), MAX_ERROR_CHARS)
    # A fence must be longer than any run of backticks inside it, or an error that quotes markdown
    # would close the block early and the rest would read as instructions.
    longest = max((len(m) for m in _BACKTICKS.findall(error)), default=0)
    fence = "`" * max(3, longest + 1)
    return (
        "## Workflow Step Self-Correction Analysis\n"
        f"**Step:** {step_name}\n"
        f"**Configuration:** {config_summary}\n"
        f"**Attempt:** {attempt} of {max_attempts} ({remaining} remaining)\n"
        "**Error:**\n"
        f"{fence}\n"
        f"{error}\n"
        f"{fence}\n"
        "Analyze: what went wrong, what should differ, and whether there is a fundamental issue "
        "retrying won't fix.\n"
        "Provide a concise corrected instruction or approach for the next attempt."
    )


def summarize_config(step_type: str, config: Mapping[str, Any]) -> str:
    """One line describing a step's config for the correction prompt.

    It goes to the LLM, so it carries no headers, bodies or inputs, and URLs lose credentials and query.
    """
    if step_type == "agent":
        model = config.get("model") or "default"
        prompt = _one_line(config.get("prompt"))[:_PROMPT_CHARS]
        return f'Agent step (bot={config.get("bot")}, model={model}, prompt="{prompt}")'
    if step_type == "http":
        method = str(config.get("method") or "GET").upper()
        return f"HTTP step ({method} {_url_without_credentials(config.get('url'))})"
    if step_type == "skill":
        return f"Skill step (skill={config.get('skill')})"
    if step_type == "code":
        source = _one_line(config.get("source") or config.get("module"))[:_SOURCE_CHARS]
        return f"Code step (language={config.get('language')}, source={source}...)"
    # Control steps are never retried with a correction; a readable fallback beats an exception here.
    return f"{step_type.replace('_', ' ').capitalize()} step"


def _url_without_credentials(url: Any) -> str:
    # The prompt leaves the account: drop user:password@ and the query, where API keys usually ride.
    text = _one_line(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return text.split("?", 1)[0]
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _one_line(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return _WHITESPACE.sub(" ", text).strip()


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n... ({len(text) - limit} more characters)"
