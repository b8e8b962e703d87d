"""The workflow registry: what ``PUT /workflows/{name}`` stores, and the deploy that goes with it.

Table items (written only by ``boternity.store.workflows``; key shapes in ``store/keys.py``):

* ``WF#<name>`` / ``WF`` — a registered workflow: ``source`` (the YAML or JSON exactly as sent),
  ``source_format``, ``state_machine_arn``, ``triggers`` (JSON: one descriptor per trigger, with
  the names of the AWS resources made for it), ``concurrency``, ``on_limit``, ``version``
  (optimistic locking), timestamps. ``gsi1pk = WORKFLOWS``, ``gsi1sk = <name>`` lists them.
* ``HOOK#<path>`` / ``HOOK`` — which workflow a webhook path belongs to, its ``auth`` and
  ``when``: the webhook function's one lookup per request. Claimed with a conditional put, so two
  workflows can never share a path (409).
* ``FILEWATCH`` / ``<workflow>#<index>`` — a file-watch trigger (bucket, prefixes, patterns,
  ``when``): the S3 notification handler reads the whole (small) partition per event.

Only boto3 at import time; the workflow model, validator and compiler load inside ``deploy``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from boternity.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceMisconfigured,
    UnsupportedMediaType,
    ValidationFailed,
    WorkflowError,
)
from boternity.parsing import decode_utf8, loads_json
from boternity.runtime.log import logger
from boternity.service.store import decode_token, encode_token, plain
from boternity.store.queue import RunQueue
from boternity.store.runs import RunStore, now_iso
from boternity.store.slots import Slots
from boternity.store.workflows import WorkflowRecords

if TYPE_CHECKING:
    from boternity.model.loader import LoadedWorkflow
    from boternity.service.config import Settings

WORKFLOW_BODY_MAX = 256 * 1024   # the stored source must fit a 400 KB DynamoDB item with room to spare
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    mt = _media_type(content_type)
    return mt in ("", "application/json") or mt.endswith("+json")


class Registry:
    """The registry as the service sees it: workflows, webhook paths, file watchers
    (stored by ``boternity.store.workflows``), and the conflicts they answer."""

    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self.table_name = table_name
        self.records = WorkflowRecords(table_name, resource=resource)

    # ------------------------------------------------------------------ workflows
    def get(self, name: str) -> dict[str, Any] | None:
        item = self.records.get(name)
        return _workflow(item) if item else None

    def list(self, *, limit: int = 50, next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        start = decode_token(next_token, expect=self.records.listing())
        items, last = self.records.page(limit=limit, start=start)
        return [_workflow(i) for i in items], encode_token(last)

    def put(self, item: dict[str, Any], *, expected_version: int | None) -> None:
        """Write a workflow item; ``expected_version`` None means "must not exist yet"."""
        if not self.records.put(item, expected_version=expected_version):
            raise Conflict(f"workflow '{item['name']}' was changed by another request; try again",
                                code="concurrent_update") from None

    def delete(self, name: str) -> None:
        self.records.delete(name)

    # ------------------------------------------------------------------ webhook index
    def hook(self, path_key: str) -> dict[str, Any] | None:
        return self.records.hook(path_key)

    def claim_hooks(self, workflow: str, hooks: list[dict[str, Any]]) -> list[str]:
        """Point each webhook path at ``workflow``. Returns the paths newly claimed; on a path
        owned by another workflow, undoes those and raises 409."""
        claimed: list[str] = []
        for h in hooks:
            if not self.records.claim_hook(workflow, h):
                self.release_hooks(workflow, claimed)
                owner = (self.hook(h["path"]) or {}).get("workflow")
                raise Conflict(f"webhook path '{h['path']}' belongs to workflow '{owner}'",
                                    code="webhook_path_taken", details={"path": h["path"], "workflow": owner}) from None
            claimed.append(h["path"])
        return claimed

    def release_hooks(self, workflow: str, paths: list[str]) -> None:
        for path in paths:
            self.records.release_hook(workflow, path)

    # ------------------------------------------------------------------ file-watch index
    def file_watchers(self) -> list[dict[str, Any]]:
        return self.records.file_watchers()

    def set_file_watchers(self, workflow: str, watchers: list[dict[str, Any]]) -> None:
        """Replace the workflow's file-watch items by ``watchers``."""
        self.records.set_file_watchers(workflow, watchers)


def _workflow(item: dict[str, Any]) -> dict[str, Any]:
    out = plain(item)
    for k in ("pk", "sk", "gsi1pk", "gsi1sk"):
        out.pop(k, None)
    if isinstance(out.get("triggers"), str):
        out["triggers"] = json.loads(out["triggers"])
    return out


# ---------------------------------------------------------------------- parsing a PUT body


@dataclass
class ParsedWorkflow:
    loaded: LoadedWorkflow
    source: str
    source_format: str   # "json" | "yaml"


def parse_body(name: str, body: bytes | None, content_type: str | None) -> ParsedWorkflow:
    """The request body (JSON, or YAML by Content-Type) → a validated workflow named ``name``.

    Raises 413/415/400 for the body itself and ``ValidationFailed`` (400, every problem at once)
    for the workflow.
    """
    # The model and validator load pydantic: only for a deploy, never in the webhook function.
    from boternity.model.loader import LoadedWorkflow, SourceMap, parse_workflow, parse_yaml
    from boternity.validate import check_workflow

    if body is not None and len(body) > WORKFLOW_BODY_MAX:
        raise PayloadTooLarge(f"a workflow may be at most {WORKFLOW_BODY_MAX // 1024} KiB",
                              details={"limit_bytes": WORKFLOW_BODY_MAX})
    if not body or not body.strip():
        raise BadRequest("the request body is empty: send the workflow as JSON, or as YAML with "
                         "Content-Type: application/yaml", code="empty_body")
    mt = _media_type(content_type)
    if not is_json_type(content_type) and mt not in YAML_TYPES:
        raise UnsupportedMediaType(f"Content-Type '{mt}' is not accepted: send application/json or "
                                   "application/yaml", details={"accepted": ["application/json", *YAML_TYPES]})
    text = decode_utf8(body, what="the request body")   # ParseError: 400 invalid_encoding
    if mt in YAML_TYPES:
        data, source = parse_yaml(text)
        fmt = "yaml"
    else:
        data = loads_json(text, what="the request body", unique_keys=True)   # ParseError: 400 with line, column
        source = SourceMap()
        fmt = "json"
    if isinstance(data, dict):
        body_name = data.get("name")
        if body_name is None:
            data = {"name": name, **data}   # the path names it
        elif body_name != name:
            raise ValidationFailed([WorkflowError(
                f"the workflow is named '{body_name}' but was sent to /workflows/{name}", code="name_mismatch",
                field="name", line=source.line_of(("name",)))])
    wf = parse_workflow(data, source=source)
    loaded = LoadedWorkflow(workflow=wf, source=source, raw=data)
    check_workflow(loaded)
    return ParsedWorkflow(loaded=loaded, source=text, source_format=fmt)


# ---------------------------------------------------------------------- deploy / undeploy


class WorkflowService:
    """PUT, GET and DELETE of workflows: registry items, state machines and trigger resources."""

    def __init__(self, settings: Settings, *, resource: Any = None, sfn: Any = None) -> None:
        self.settings = settings
        self.registry = Registry(settings.table, resource=resource)
        self._resource = resource
        self._sfn = sfn

    @property
    def sfn(self) -> Any:
        if self._sfn is None:
            self._sfn = boto3.client("stepfunctions")
        return self._sfn

    def deploy(self, name: str, body: bytes | None, content_type: str | None) -> tuple[dict[str, Any], bool, list[str]]:
        """Validate, compile, create or update the state machine, (re)create triggers, store.

        Returns (the stored item, created?, warnings). Nothing in AWS changes unless the workflow
        is valid and compiles.
        """
        # The compiler only for a deploy (never loaded in the webhook function); triggers.py imports this
        # module, so it comes in here too (issue #11: WorkflowService leaves registry.py).
        from boternity.compiler import TaskTargets, compile_workflow
        from boternity.service.triggers import TriggerResources, plan_triggers

        parsed = parse_body(name, body, content_type)
        wf = parsed.loaded.workflow
        s = self.settings
        if not s.role_arn:
            raise ServiceMisconfigured("BOTERNITY_STATE_MACHINE_ROLE_ARN is not set")
        targets = TaskTargets(functions=s.require_function_arns(), state_machine_prefix=s.state_machine_prefix_arn())
        definition = compile_workflow(wf, targets=targets)
        plan = plan_triggers(wf, s)
        old = self.registry.get(name)
        old_triggers: list[dict[str, Any]] = list((old or {}).get("triggers") or [])
        old_paths = [t["path"] for t in old_triggers if t.get("type") == "webhook"]
        hooks = [t for t in plan if t["type"] == "webhook"]
        claimed = self.registry.claim_hooks(name, hooks)   # 409 before anything is created
        try:
            sm_arn = self._upsert_state_machine(name, definition)
            TriggerResources(s, registry=self.registry).apply(name, sm_arn, plan, old_triggers)
            now = now_iso()
            item: dict[str, Any] = {
                "name": name, "description": wf.description,
                "source": parsed.source, "source_format": parsed.source_format, "state_machine_arn": sm_arn,
                "triggers": json.dumps(plan), "on_limit": wf.on_limit,
                "version": int((old or {}).get("version") or 0) + 1,
                "created_at": (old or {}).get("created_at") or now, "updated_at": now,
            }
            if wf.concurrency:
                item["concurrency"] = wf.concurrency
            self.registry.put({k: v for k, v in item.items() if v is not None},
                              expected_version=(old or {}).get("version") if old else None)
        except Exception:
            self.registry.release_hooks(name, [p for p in claimed if p not in old_paths])
            raise
        self.registry.release_hooks(name, [p for p in old_paths if p not in {h["path"] for h in hooks}])
        if old is not None:
            # A raised (or removed) concurrency limit frees slots now, not at the next run end.
            from boternity.service.runs import start_queued  # runs.py imports this module (issue #11)

            start_queued(s.table, name, sfn=self._sfn)
        logger.info("workflow deployed", extra={"workflow": name, "new_workflow": old is None})
        return _workflow(item), old is None, self._warnings(wf)

    def _warnings(self, wf: Any) -> list[str]:
        out = []
        for step in wf.steps:
            if step.type == "sub_workflow":
                child = step.config.workflow_name
                if child != wf.name and self.registry.get(child) is None:
                    out.append(f"step '{step.id}': sub-workflow '{child}' is not registered yet; runs reaching "
                               "it fail until it is")
        return out

    def _upsert_state_machine(self, name: str, definition: dict[str, Any]) -> str:
        s = self.settings
        arn = s.state_machine_arn(name)
        text = json.dumps(definition, separators=(",", ":"))
        extra: dict[str, Any] = {"tracingConfiguration": {"enabled": True}}
        if s.log_group_arn:
            group = s.log_group_arn if s.log_group_arn.endswith(":*") else s.log_group_arn + ":*"
            # ERROR level without execution data: step inputs and outputs may carry personal data.
            extra["loggingConfiguration"] = {"level": "ERROR", "includeExecutionData": False,
                                             "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group}}]}
        try:
            self.sfn.describe_state_machine(stateMachineArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "StateMachineDoesNotExist":
                raise
            try:
                return str(self.sfn.create_state_machine(
                    name=s.state_machine_name(name), definition=text, roleArn=s.role_arn, type="STANDARD",
                    tags=[{"key": "boternity:workflow", "value": name}], **extra)["stateMachineArn"])
            except ClientError as exc2:
                if exc2.response.get("Error", {}).get("Code") != "StateMachineAlreadyExists":
                    raise
        self.sfn.update_state_machine(stateMachineArn=arn, definition=text, roleArn=s.role_arn, **extra)
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        item = self.registry.get(name)
        if item is None:
            raise NotFound(f"workflow '{name}' not found")
        return item

    def undeploy(self, name: str) -> dict[str, Any]:
        """Remove the state machine and every trigger resource. Run records stay; queued runs are
        aborted (nothing will ever start them)."""
        from boternity.service.triggers import TriggerResources  # triggers.py imports this module

        item = self.registry.get(name)
        if item is None:
            raise NotFound(f"workflow '{name}' not found")
        triggers = list(item.get("triggers") or [])
        TriggerResources(self.settings, registry=self.registry).remove(name, triggers)
        self.registry.release_hooks(name, [t["path"] for t in triggers if t.get("type") == "webhook"])
        try:
            self.sfn.delete_state_machine(stateMachineArn=item["state_machine_arn"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "StateMachineDoesNotExist":
                raise
        aborted = self._abort_queue(name)
        self.registry.delete(name)
        Slots(self.settings.table, resource=self._resource).forget(name)
        logger.info("workflow deleted", extra={"workflow": name})
        return {"name": name, "deleted": True, "aborted_queued_runs": aborted}

    def _abort_queue(self, name: str) -> int:
        runs = RunStore(self.settings.table, client=None)
        n = 0
        for run_id in RunQueue(self.settings.table, resource=self._resource).drain(name):
            if runs.run_ended(run_id, status="ABORTED", error="Boternity.WorkflowDeleted",
                              cause=f"workflow '{name}' was deleted before the run started"):
                n += 1
        return n
