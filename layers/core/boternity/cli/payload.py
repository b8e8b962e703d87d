"""``--input`` of `boternity run` and `boternity trigger`: JSON text, or ``@file.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from boternity.errors import BoternityError
from boternity.parsing import Limits, ParseError, loads_json


def read_input(value: str | None) -> Any:
    """The payload ``--input`` names ({} when absent), parsed within the limits of docs/limits.md.

    Raises BoternityError naming the file or the problem (the CLI's exit 2)."""
    if value is None:
        return {}
    limits = Limits.from_env()
    text: str | bytes = value
    what = "--input"
    if value.startswith("@"):
        what = f"--input file {value[1:]}"
        try:
            with Path(value[1:]).open("rb") as f:
                text = f.read(limits.max_bytes + 1)   # never more than the limit into memory
        except OSError as exc:
            raise BoternityError(f"--input: cannot read {value[1:]}: {exc.strerror or exc}") from exc
    try:
        return loads_json(text, limits=limits, what=what)
    except ParseError as exc:
        raise BoternityError(str(exc)) from exc
