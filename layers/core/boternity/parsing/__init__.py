"""Bounded parsers for text that arrives from outside: workflow files and bodies (YAML, JSON),
trigger payloads, approval decisions, ``--input``.

Every limit is checked before the data exists in memory in expanded form, so an alias bomb, a
100,000-level nesting or a 5,000-digit number costs at most the limits' worth of time and memory
and ends in a :class:`ParseError` that names the problem, where it is and which limit applies.
Only the standard library at import time: the webhook function parses JSON and must not load
PyYAML, so the YAML loader is imported by path (``boternity.parsing.yaml_loader``).
"""

from __future__ import annotations

from boternity.parsing.json_loader import decode_utf8, json_or, loads_json
from boternity.parsing.limits import Limits, ParseError

__all__ = ["Limits", "ParseError", "decode_utf8", "json_or", "loads_json"]
