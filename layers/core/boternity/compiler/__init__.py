"""The compiler: a validated workflow in, an Amazon States Language definition out.

Pure (no clients, clock, environment or randomness) and light to import.
"""

from __future__ import annotations

from boternity.compiler.compile import Compiled, compile_details, compile_workflow, definition_json
from boternity.compiler.targets import TaskTargets

__all__ = ["Compiled", "TaskTargets", "compile_details", "compile_workflow", "definition_json"]
