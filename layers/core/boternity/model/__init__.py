"""The workflow format: pydantic models (the single source of truth) and the YAML reader.

Checking a workflow's graph and references, and loading with those checks, is
``boternity.validate`` (above this package: the model imports no validator)."""

from __future__ import annotations

from boternity.model.loader import parse_workflow, read_workflow, read_workflow_text
from boternity.model.workflow import (
    STEP_TYPES,
    AgentConfig,
    ApprovalConfig,
    CodeConfig,
    ConditionalConfig,
    HttpConfig,
    LoopConfig,
    RetryPolicy,
    SkillConfig,
    Step,
    SubWorkflowConfig,
    Trigger,
    WaitConfig,
    Workflow,
    json_schema,
)

__all__ = [
    "STEP_TYPES",
    "AgentConfig",
    "ApprovalConfig",
    "CodeConfig",
    "ConditionalConfig",
    "HttpConfig",
    "LoopConfig",
    "RetryPolicy",
    "SkillConfig",
    "Step",
    "SubWorkflowConfig",
    "Trigger",
    "WaitConfig",
    "Workflow",
    "json_schema",
    "parse_workflow",
    "read_workflow",
    "read_workflow_text",
]
