"""Pydantic models of a workflow file.

Files in the reference format load unchanged; the shorter form is accepted too: ``id``,
``version`` and ``owner`` may be left out, ``config.type`` is taken from the step's ``type``
and a step's ``name`` defaults to its id. Unknown fields are errors (``extra="forbid"``), so a
typo never silently does nothing.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

STEP_TYPES = ("agent", "skill", "code", "http", "conditional", "loop", "approval", "sub_workflow", "wait")
StepType = Literal["agent", "skill", "code", "http", "conditional", "loop", "approval", "sub_workflow", "wait"]

# Step ids become Step Functions state names: 1-80 characters, none of the characters AWS forbids.
# We are stricter than AWS (ASCII letters, digits, '-', '_') so names also work in CloudWatch and
# as DynamoDB keys and S3 prefixes without escaping. The compiler appends suffixes such as
# "-gate", so ids are kept to 64 characters.
STEP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
STEP_ID_MAX = 64
WORKFLOW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
WORKFLOW_NAME_MAX = 64
MAX_LOOP_ITERATIONS = 1000
# No workflow of more than 1,357 steps can compile: every step keeps a record of at least 169
# bytes (a 1-character id, compiler/limits.py's RECORD_OVERHEAD_BYTES and MIN_INLINE_BYTES) in one
# execution's state, whose worst case is held under MAX_STATE_WORST_BYTES (224 KiB). Refusing more
# than 1,500 when the file is read (so nothing that could run is refused) keeps validation and
# compiling (both superlinear in the steps) from spending seconds on what must fail: 8,000 steps
# took 14 s to validate, 39 to refuse.
MAX_STEPS = 1500
# Each trigger is an AWS resource (a schedule, a rule, a webhook path) made while the workflow is
# registered, and about 200 bytes in its registry item next to the source (at most 256 KiB) under
# DynamoDB's 400 KB item limit. 3,000 triggers overflowed the item after 3,000 schedules had been
# made (a 500, and schedules left firing a workflow that was never registered); 100 stays far
# inside it and keeps registering within API Gateway's 29 s.
MAX_TRIGGERS = 100
# The registry item keeps each trigger's paths, patterns, sources and conditions (with its ARNs)
# next to the source; aliases make them any size: 11 KB of YAML giving 50 file_watch triggers one
# aliased list of 50 paths overflowed the item after 50 S3 notifications were made (a 500, and
# the notifications stayed). As JSON, all triggers together fit in this.
MAX_TRIGGERS_JSON_BYTES = 64 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- step configs


class AgentConfig(_Model):
    """Call an LLM through a bot: ``bots/<bot>/IDENTITY.md`` gives model, temperature and system prompt.

    Output: {response, model, bot, stop_reason, usage, attempt} (+ text with output: json, where response
    is the parsed value); read steps.<id>.output.response. See docs/step-outputs.md.
    """

    type: Literal["agent"] = "agent"
    bot: str = Field(min_length=1)
    prompt: str = Field(min_length=1, description="Template: the user message.")
    model: str | None = None
    system: str | None = Field(default=None, description="Template: overrides the bot's system prompt.")
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    output: Literal["text", "json"] = "text"


class SkillConfig(_Model):
    """Run an installed skill: a prompt skill (SKILL.md) or a WASM tool skill (skill.wasm).

    Output: {type, skill, kind, output} (+ fuel_consumed, duration_ms for WASM); read
    steps.<id>.output.output. See docs/step-outputs.md.
    """

    type: Literal["skill"] = "skill"
    skill: str = Field(min_length=1)
    input: Any = Field(default=None, description="Template string, or any JSON value whose strings are templates.")


class CodeConfig(_Model):
    """Run a JavaScript snippet (V8) or a WASM module in a sandbox with limits.

    JavaScript reads the global ``input``; its result is a global ``result``, else ``module.exports``,
    else the last expression (functions are called with input, promises awaited). Output:
    {type, language, output, duration_ms}; read steps.<id>.output.output. See docs/step-outputs.md.
    """

    type: Literal["code"] = "code"
    language: Literal["wasm", "javascript", "typescript", "type_script"]
    source: str | None = None
    module: str | None = Field(default=None, description="wasm: a path to a .wasm file, or base64.")
    input: Any = None


# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class HttpConfig(_Model):
    """An HTTP request (private addresses refused unless the workflow allows them).

    Output: {status, headers, body (parsed JSON when the response is JSON), elapsed_ms, url, truncated};
    read steps.<id>.output.body. 429 and 5xx are retried, other unexpected statuses fail the step.
    """

    type: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, description="A template string sent as is, or an object sent as JSON.")
    timeout_secs: float = Field(default=30, gt=0, le=900)
    expect_status: list[int] | None = Field(default=None, description="Default: 2xx and 3xx succeed.")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        # What is written before the first template is known now: a scheme there that is not
        # http(s), or a URL without templates and without a scheme, can never be requested.
        literal = v.split("{{", 1)[0]
        if re.match(r"(?i)https?://", literal) or ("{{" in v and not re.match(r"(?i)[a-z][a-z0-9+.-]*:", literal)):
            return v
        raise ValueError(f"an http step requests http:// or https:// URLs only, not {v[:80]!r}")

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if "{{" not in name and not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name[:80]!r} is not a valid HTTP header name")
            if "\r" in value or "\n" in value or "\x00" in value:
                raise ValueError(f"header {name[:80]!r}: a value cannot hold line breaks or NUL")
        return v


class ConditionalConfig(_Model):
    """Run then_steps or else_steps (the others are skipped). Output: {condition_met, selected_steps}."""

    type: Literal["conditional"] = "conditional"
    condition: str = Field(min_length=1)
    then_steps: list[str] = Field(default_factory=list)
    else_steps: list[str] = Field(default_factory=list)


class LoopConfig(_Model):
    """Run body_steps again while the condition holds (at most max_iterations).

    Output: {iterations, completed}. Iterations count from 1: {{ loop.iteration }} is the number of the
    iteration running in the body, and of iterations finished in the condition (0 before the first).
    """

    type: Literal["loop"] = "loop"
    condition: str = Field(min_length=1)
    max_iterations: int = Field(default=100, ge=1, le=MAX_LOOP_ITERATIONS)
    body_steps: list[str] = Field(min_length=1)


class ApprovalConfig(_Model):
    """Wait for a human decision (at most timeout_secs, then on_timeout).

    Output: {approved, approver, comment, feedback, decided_at} (+ timed_out); read steps.<id>.output.approved.
    """

    type: Literal["approval"] = "approval"
    prompt: str = Field(min_length=1)
    timeout_secs: int = Field(default=86_400, gt=0, le=365 * 86_400)
    on_timeout: Literal["reject", "fail"] = "reject"
    notify: str | None = Field(
        default=None,
        description="Who hears of the request: a webhook URL (POSTed the prompt and the approval link), or "
                    "'sns' for the deployment's approval topic (email and other SNS subscriptions).")

    @field_validator("notify")
    @classmethod
    def _notify_target(cls, v: str | None) -> str | None:
        if v is not None and not (v == "sns" or re.match(r"https?://[^\s/]+", v)):
            raise ValueError(f"notify must be an http(s) URL or 'sns', not {v[:80]!r}")
        return v


class SubWorkflowConfig(_Model):
    """Run another registered workflow with ``input`` as its trigger and wait for it.

    Output: the child's step records by step id; read steps.<id>.output.<child step>.output.
    """

    type: Literal["sub_workflow"] = "sub_workflow"
    workflow_name: str = Field(min_length=1)
    input: Any = None


class WaitConfig(_Model):
    """Pause for ``seconds`` or until a timestamp. Output: {until} (+ seconds)."""

    type: Literal["wait"] = "wait"
    seconds: int | None = Field(default=None, ge=0, le=365 * 86_400)
    until: str | None = Field(default=None, description="Template giving an ISO-8601 timestamp.")

    @model_validator(mode="after")
    def _exactly_one(self) -> WaitConfig:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("a wait step needs exactly one of 'seconds' or 'until'")
        return self


StepConfig = Annotated[
    AgentConfig
    | SkillConfig
    | CodeConfig
    | HttpConfig
    | ConditionalConfig
    | LoopConfig
    | ApprovalConfig
    | SubWorkflowConfig
    | WaitConfig,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------- steps


class RetryPolicy(_Model):
    """Compiled to an ASL Retrier. ``max_attempts`` counts every execution, the first included."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    strategy: Literal["simple", "llm_self_correct"] = "simple"
    interval_secs: int = Field(default=1, ge=1, le=3600)
    backoff_rate: float = Field(default=2.0, ge=1.0, le=10.0)
    max_delay_secs: int | None = Field(default=None, ge=1, le=86_400)


class UiMeta(BaseModel):
    model_config = ConfigDict(extra="allow")


class Step(_Model):
    id: str = Field(min_length=1, max_length=STEP_ID_MAX, pattern=STEP_ID_PATTERN)
    name: str = ""
    type: StepType
    depends_on: list[str] = Field(default_factory=list)
    condition: str | None = None
    timeout_secs: int = Field(default=300, gt=0, le=365 * 86_400)
    retry: RetryPolicy | None = None
    continue_on_error: bool = False
    for_each: str | None = Field(default=None, description="Template giving a list: the step runs once per item.")
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    config: StepConfig
    ui: UiMeta | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if not data.get("name") and isinstance(data.get("id"), str):
            data["name"] = data["id"]
        cfg = data.get("config")
        stype = data.get("type")
        if cfg is None and stype is not None:
            data["config"] = {"type": stype}
        elif isinstance(cfg, dict) and "type" not in cfg and stype is not None:
            data["config"] = {"type": stype, **cfg}
        return data

    @model_validator(mode="after")
    def _type_matches_config(self) -> Step:
        if self.config.type != self.type:
            raise ValueError(f"step type '{self.type}' does not match config.type '{self.config.type}'")
        return self


# --------------------------------------------------------------------------- triggers


class WebhookAuth(_Model):
    type: Literal["hmac_sha256", "standard_webhooks", "bearer_token", "none"]
    secret_name: str | None = None

    @model_validator(mode="after")
    def _secret(self) -> WebhookAuth:
        if self.type != "none" and not self.secret_name:
            raise ValueError(f"auth type '{self.type}' needs a secret_name")
        return self


class ManualTrigger(_Model):
    type: Literal["manual"] = "manual"


class CronTrigger(_Model):
    type: Literal["cron"] = "cron"
    schedule: str = Field(
        min_length=1,
        description=(
            "Standard cron ('0 9 * * 1-5', or six fields with seconds 0), @daily-style nicknames, "
            "'every N minutes|hours|days', 'every day at HH:MM', or EventBridge's cron(...) / rate(...). "
            "EventBridge's L, LW and 15W (day-of-month) and 5L and 5#3 (day-of-week) are accepted."
        ),
        examples=["0 9 * * 1-5", "0 9 L * *", "0 9 * * 5#3", "cron(0 9 ? * 6#3 *)"],
    )
    timezone: str = Field("UTC", description="IANA time zone the schedule's wall-clock fields are read in.")


class WebhookTrigger(_Model):
    type: Literal["webhook"] = "webhook"
    # The path is a DynamoDB key (HOOK#<path>, at most 2,048 bytes) and part of a URL.
    path: str = Field(min_length=2, max_length=1024, pattern=r"^/[A-Za-z0-9._~/-]+$")
    auth: WebhookAuth | None = None
    when: str | None = None


class EventTrigger(_Model):
    type: Literal["event"] = "event"
    source: str = Field(min_length=1)
    event_type: str = Field(min_length=1)
    when: str | None = None


class FileWatchTrigger(_Model):
    type: Literal["file_watch"] = "file_watch"
    paths: list[str] = Field(min_length=1)
    patterns: list[str] = Field(default_factory=list)
    when: str | None = None


Trigger = Annotated[
    ManualTrigger | CronTrigger | WebhookTrigger | EventTrigger | FileWatchTrigger,
    Field(discriminator="type"),
]


class GlobalOwner(_Model):
    type: Literal["global"] = "global"


class BotOwner(_Model):
    type: Literal["bot"] = "bot"
    bot_id: str | None = None
    slug: str


Owner = Annotated[GlobalOwner | BotOwner, Field(discriminator="type")]


# --------------------------------------------------------------------------- workflow


class Workflow(_Model):
    """A workflow: a DAG of steps, its triggers and its run-wide settings."""

    id: str | None = None
    name: str = Field(min_length=1, max_length=WORKFLOW_NAME_MAX, pattern=WORKFLOW_NAME_PATTERN)
    # Every page of GET /workflows carries up to 100 descriptions: short text, not a document.
    description: str | None = Field(default=None, max_length=4096)
    version: str | None = None
    owner: Owner | None = None
    concurrency: int | None = Field(default=None, ge=1, le=10_000)
    on_limit: Literal["queue", "reject"] = "queue"
    timeout_secs: int = Field(default=1800, gt=0, le=365 * 86_400)
    allow_private_network: bool = Field(
        default=False, description="Let HTTP steps reach loopback, private and link-local addresses."
    )
    variables: dict[str, Any] = Field(default_factory=dict)
    triggers: list[Trigger] = Field(default_factory=list, max_length=MAX_TRIGGERS)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("steps", mode="before")
    @classmethod
    def _not_too_many_steps(cls, v: Any) -> Any:
        # Before each step is validated: counting is all it takes to refuse.
        if isinstance(v, list) and len(v) > MAX_STEPS:
            raise PydanticCustomError(
                "too_many_steps", f"a workflow has at most {MAX_STEPS:,} steps, this one {len(v):,}: no more fit "
                "one execution's state. Move groups of steps into workflows of their own, run by sub_workflow steps")
        return v

    @field_validator("triggers", mode="before")
    @classmethod
    def _not_too_many_triggers(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) > MAX_TRIGGERS:
            raise PydanticCustomError(
                "too_many_triggers", f"a workflow has at most {MAX_TRIGGERS} triggers, this one {len(v):,}: each "
                "is an AWS resource and a part of the workflow's registry record")
        if isinstance(v, list):
            try:
                size = len(json.dumps(v, separators=(",", ":")))
            except (TypeError, ValueError):
                return v   # not JSON data: each trigger's own validation names the field
            if size > MAX_TRIGGERS_JSON_BYTES:
                raise PydanticCustomError(
                    "triggers_too_large", f"the triggers are {size:,} bytes as JSON (aliases expanded), more than "
                    f"{MAX_TRIGGERS_JSON_BYTES:,}: they are kept in the workflow's registry record")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        # YAML reads `version: 1.0` as a float; the reference treats versions as free-form text.
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def step_map(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow file, generated from the models."""
    schema = Workflow.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://boternity.dev/schema/workflow.json"
    schema["title"] = "Boternity workflow"
    return schema


def is_valid_step_id(step_id: str) -> bool:
    return bool(re.match(STEP_ID_PATTERN, step_id)) and len(step_id) <= STEP_ID_MAX
