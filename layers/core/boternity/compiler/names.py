"""Console-readable, unique state names.

Task states are named after their step id. Helper states are ``<step id>.<role>``: step ids
cannot contain '.', so a helper can never collide with a step. Names longer than 80 characters
keep a readable head and get a short hash suffix.
"""

from __future__ import annotations

import hashlib

from boternity.compiler.limits import MAX_NAME


class Names:
    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, name: str) -> str:
        candidate = _fit(name)
        n = 2
        while candidate in self.used:
            candidate = _fit(f"{name}.{n}")
            n += 1
        self.used.add(candidate)
        return candidate


def _fit(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return name[: MAX_NAME - 10] + ".." + digest
