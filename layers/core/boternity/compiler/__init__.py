"""The compiler: a validated workflow in, an Amazon States Language definition out.

Pure (no clients, clock, environment or randomness). The names below load on first use, so the
step functions can read ``boternity.compiler.limits`` without importing the compiler itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boternity.compiler.compile import Compiled, compile_details, compile_workflow, definition_json
    from boternity.compiler.targets import TaskTargets

__all__ = ["Compiled", "TaskTargets", "compile_details", "compile_workflow", "definition_json"]

_WHERE = {"Compiled": "compile", "compile_details": "compile", "compile_workflow": "compile",
          "definition_json": "compile", "TaskTargets": "targets"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"boternity.compiler.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'boternity.compiler' has no attribute {name!r}")
