"""Deploying workflows: validate, compile, create or update the state machine and the trigger
resources, store the registry item; and undeploying them.

Above the registry, runs and triggers (it uses all three); nothing in the service imports it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from boternity.errors import NotFound, ServiceMisconfigured
from boternity.runtime.log import logger
from boternity.service.registry import Registry, _workflow, parse_body
from boternity.service.runs import start_queued
from boternity.service.trigger_resources import TriggerResources, plan_triggers
from boternity.store.queue import RunQueue
from boternity.store.run_records import RunStore, now_iso
from boternity.store.slots import Slots

if TYPE_CHECKING:
    from boternity.service.config import Settings


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
        # The compiler only for a deploy: reading or deleting a workflow never loads it.
        from boternity.compiler import TaskTargets, compile_workflow

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
