"""Boternity Workflows: AI-bot workflows as YAML DAGs, compiled to AWS Step Functions.

The names below load on first use (PEP 562), so a Lambda handler that imports one small module
(``boternity.webhooks``, ``boternity.store.run_records``...) never pays for pydantic or the compiler.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BoternityError": "boternity.errors",
    "CompileError": "boternity.errors",
    "ExpressionError": "boternity.errors",
    "StepFailed": "boternity.errors",
    "StepRetryable": "boternity.errors",
    "ValidationFailed": "boternity.errors",
    "WorkflowError": "boternity.errors",
    "TaskTargets": "boternity.compiler",
    "compile_workflow": "boternity.compiler",
    "Workflow": "boternity.model",
    "load_workflow": "boternity.validate",
    "load_workflow_text": "boternity.validate",
    "parse_workflow": "boternity.model",
    "check_workflow": "boternity.validate",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'boternity' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
