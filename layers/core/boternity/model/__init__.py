"""The workflow format: pydantic models (the single source of truth) and the YAML loader."""

from __future__ import annotations

from boternity.model.loader import load_workflow, load_workflow_text, parse_workflow
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
    "load_workflow",
    "load_workflow_text",
    "parse_workflow",
]
