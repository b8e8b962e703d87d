"""No log call passes an ``extra`` key that the standard library reserves for the record itself.

``logging`` raises KeyError ("Attempt to overwrite 'created' in LogRecord") for such a key, but
only when the level is enabled: the functions log at INFO, so a call that is silent in tests at
ERROR turns a request into a 500 in the cloud.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "layers" / "core" / "boternity"
RESERVED = set(vars(logging.LogRecord("n", logging.INFO, "p", 0, "m", (), None))) | {"message", "asctime"}


def test_no_log_extra_overwrites_a_record_attribute() -> None:
    clashes = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "extra" and isinstance(kw.value, ast.Dict):
                    clashes += [f"{path.relative_to(LIBRARY)}:{node.lineno}: {k.value!r}" for k in kw.value.keys
                                if isinstance(k, ast.Constant) and k.value in RESERVED]
    assert not clashes, clashes
