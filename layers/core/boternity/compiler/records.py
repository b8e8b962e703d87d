"""Where step records sit in a run's state, for the code that reads them back.

A step's record is at ``steps.<id>`` — except a static wait that a Lambda step's task starts
(docs/compiler.md, "Static waits planned ahead"): that task returns the wait's record with its own, and it
sits under the task's record, at ``steps.<task step>.started.<wait>``, since a task writes one
place in the state. Everything that reads records from a state or a run's output reads them
through :func:`flat_records`, which puts them back beside the others.

Imported by the step functions: nothing here may load the compiler itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The key, inside a step's record, of the records of the static waits its task started.
STARTED = "started"


def flat_records(steps: Any) -> Any:
    """``steps`` with every started wait's record beside the others, and the records that
    carried them as ``{status, output}`` again. Anything that is not a mapping is returned as is;
    so is a mapping with nothing to lift (the common case: no copy)."""
    if not isinstance(steps, Mapping):
        return steps
    if not any(isinstance(r, Mapping) and STARTED in r for r in steps.values()):
        return steps
    out: dict[str, Any] = {}
    for key, rec in steps.items():
        if not (isinstance(rec, Mapping) and STARTED in rec):
            out[key] = rec
            continue
        rec = dict(rec)
        started = rec.pop(STARTED)
        out[key] = rec
        if isinstance(started, Mapping):
            for wait_id, wait_rec in started.items():
                # Right after the step that started it, as the flat record would have come; a
                # record written flat too (a .done task's) is the same one, kept in its place.
                if wait_id not in steps:
                    out[wait_id] = wait_rec
    return out
