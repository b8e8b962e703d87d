"""Request and response models of the API (pydantic): Powertools validates requests and responses
against them and builds the OpenAPI document from them. Response models allow extra fields so a
record can grow without breaking older clients; request models forbid them (a typo is an error).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from boternity.parsing import ParseError, loads_json


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


# ---------------------------------------------------------------------- workflows


class TriggerView(_Open):
    type: str
    index: int
    url: str | None = Field(default=None, description="webhook triggers: the URL to configure at the sender")


class WorkflowSummary(_Open):
    name: str
    description: str | None = None
    state_machine_arn: str
    version: int
    created_at: str
    updated_at: str
    concurrency: int | None = None
    on_limit: str = "queue"


class WorkflowView(WorkflowSummary):
    source_format: str
    definition: Any = Field(description="the workflow as sent (YAML or JSON), parsed")
    source: str | None = Field(default=None, description="GET /workflows/{name} only: the workflow exactly as sent "
                               "to PUT (YAML with its comments and key order, or JSON), at most 256 KiB")
    triggers: list[TriggerView] = Field(default_factory=list)
    links: dict[str, str | None] = Field(default_factory=dict)


class WorkflowPutResult(WorkflowView):
    created: bool
    warnings: list[str] = Field(default_factory=list)


def workflow_view(item: dict[str, Any], *, api_base: str, hooks_base: str, with_source: bool = False) -> dict[str, Any]:
    """A registry item as the API shows it: the definition parsed, webhook URLs, links; and the
    text as sent when ``with_source`` (GET only: a PUT's answer need not echo its body)."""
    source = item.get("source")
    # Stored after validation, but parsed within the limits anyway: they may have been lowered since.
    try:
        if item.get("source_format") == "yaml":
            # PyYAML only for workflows sent as YAML: most requests to the api function never load it.
            from boternity.parsing.yaml_loader import load_yaml

            definition = load_yaml(source or "")
        else:
            definition = loads_json(source or "null")
    except ParseError:
        definition = None
    if isinstance(definition, dict) and "name" not in definition:
        definition = {"name": item["name"], **definition}   # the path named it
    triggers = [{**t, "url": hooks_base + t["path"]} if t.get("type") == "webhook" else dict(t)
                for t in item.get("triggers") or []]
    out = {k: v for k, v in item.items() if k not in ("source", "triggers")}
    if with_source and isinstance(source, str):
        out["source"] = source
    out.update(definition=definition, triggers=triggers,
               links={"self": f"{api_base}/workflows/{item['name']}", "runs": f"{api_base}/workflows/{item['name']}/runs"})
    return out


class WorkflowList(BaseModel):
    workflows: list[WorkflowSummary]
    next_token: str | None = None


class WorkflowDeleted(BaseModel):
    name: str
    deleted: bool
    aborted_queued_runs: int = 0


# ---------------------------------------------------------------------- runs


class RunAccepted(BaseModel):
    run_id: str
    status: str = Field(description="RUNNING, or QUEUED while waiting for a concurrency slot")
    workflow: str
    links: dict[str, str | None]
    replayed: bool = Field(default=False, description="true when an earlier request with this Idempotency-Key "
                                                      "started the run")


class RunRecord(_Open):
    run_id: str
    workflow: str | None = None
    status: str | None = None
    trigger_type: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    execution_arn: str | None = None
    error: str | None = None
    cause: str | None = None
    output: Any = None


class RunView(RunRecord):
    """``GET /runs/{run_id}``'s run: the record and the input it started with (the listings leave
    the input out)."""

    input: Any = Field(default=None, description="the trigger payload the run started with, up to 32 KiB; above "
                       "that its claim-check reference {\"$ref\": \"blob:<sha256>\", \"size\"}; null for a run "
                       "recorded before inputs were kept, or one Step Functions started with a large input itself "
                       "(then `input_preview` holds its beginning)")
    input_preview: str | None = Field(default=None, description="an input over 32 KiB: its first 4 KiB as text")
    input_size: int | None = Field(default=None, description="the input's size in bytes (UTF-8 JSON)")


class StepView(_Open):
    step_id: str
    status: str | None = None
    step_type: str | None = None
    iteration: str | None = None
    attempts: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    ends_at: str | None = Field(default=None, description="a static wait (fixed seconds): when it ends, planned with "
                                "its start; the record shows it running until then and completed from then")
    output: Any = Field(default=None, description="inline, or {\"$ref\": \"blob:<sha256>\", \"size\"} when claim-checked")
    error: str | None = None
    attempt_errors: list[dict[str, Any]] = Field(default_factory=list)
    child_run_id: str | None = Field(default=None, description="a sub_workflow step (or item) that ended: the child "
                                     "run it started (GET /runs/{child_run_id})")
    child_execution_arn: str | None = Field(default=None, description="the child run's Step Functions execution")


class RunDetail(BaseModel):
    run: RunView
    steps: list[StepView]
    links: dict[str, str | None]


class RunList(BaseModel):
    runs: list[RunRecord]
    next_token: str | None = None


class CancelResult(BaseModel):
    """The answer of the one cancel that won (any other cancel of the run gets 409)."""

    run_id: str
    status: str = Field(description="ABORTED")
    cancelled_approvals: int = Field(description="open approvals of the run this cancel closed (CANCELLED)")


class RedriveResult(BaseModel):
    run_id: str
    status: str
    redrive_count: int
    redrive_date: str | None = None
    links: dict[str, str | None]


# ---------------------------------------------------------------------- approvals


class ApprovalView(_Open):
    approval_id: str
    run_id: str | None = None
    step_id: str | None = None
    workflow: str | None = None
    prompt: str | None = None
    status: Literal["PENDING", "APPROVED", "REJECTED", "EXPIRED", "CANCELLED"] = Field(
        description="only PENDING can be decided; EXPIRED: its deadline passed; CANCELLED: its run was "
                    "cancelled or ended before a decision")
    created_at: str | None = None
    decide_by: int | None = Field(default=None, description="the deadline, in seconds since the epoch")
    approved: bool | None = None
    approver: str | None = None
    comment: str | None = None
    decided_at: str | None = None
    closed_at: str | None = Field(default=None, description="EXPIRED or CANCELLED: when")
    reason: str | None = Field(default=None, description="EXPIRED or CANCELLED: why, in a sentence")
    links: dict[str, str | None] = Field(default_factory=dict)


class ApprovalList(BaseModel):
    approvals: list[ApprovalView] = Field(description="by workflow name, then oldest first; never a task token")
    next_token: str | None = Field(default=None, description="the next page's token; None at the end. A pending "
                                   "page may hold fewer than `limit` approvals (those past their deadline are "
                                   "closed as EXPIRED instead of listed) while more follow")


class DecisionRequest(BaseModel):
    """``{approved, comment}``; the approval page's form also sends its ``csrf`` token."""

    model_config = ConfigDict(extra="forbid")

    approved: bool
    comment: str | None = Field(default=None, max_length=2000)
    csrf: str | None = Field(default=None, max_length=128)

    @classmethod
    def from_form(cls, fields: dict[str, str]) -> DecisionRequest:
        """The approval page's form: its empty comment box means no comment.

        Raises pydantic's ``ValidationError`` (422) like ``model_validate``."""
        return cls.model_validate({**fields, "comment": fields.get("comment") or None} if "comment" in fields
                                  else fields)
