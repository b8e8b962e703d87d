"""The AWS resources behind a workflow's triggers, and the two trigger events the webhook function takes.

* ``cron`` → an EventBridge Scheduler schedule in ``BOTERNITY_SCHEDULER_GROUP`` whose target is
  the state machine, input ``{"scheduled_time": "<aws.scheduler.scheduled-time>"}``.
* ``event`` → a rule on the custom bus ``BOTERNITY_EVENT_BUS`` matching ``source`` and
  ``detail-type``. Without ``when`` its target is the state machine (the whole event is the
  payload). EventBridge patterns cannot evaluate a ``when`` condition, so with one the target is
  the trigger function (the webhook function) with the event wrapped by an input transformer;
  :func:`handle_event_trigger` evaluates ``when`` and starts the run.
* ``file_watch`` → S3 ObjectCreated notifications of ``BOTERNITY_BUCKET`` to the trigger function
  (:func:`handle_s3_event`), which matches keys with ``match_file`` and starts runs with
  ``{bucket, key, size, etag}``. One notification per watched prefix across *all* workflows
  (S3 refuses overlapping configurations), the workflows themselves found in the registry.
* ``webhook`` → only a registry item (``HOOK#<path>``); ``manual`` → nothing.

Deleting a workflow removes all of these.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import boto3
from botocore.exceptions import ClientError

from boternity.errors import (
    ExpressionError,
    Refused,
    ServiceMisconfigured,
    StartInProgress,
    ValidationFailed,
    WorkflowError,
)
from boternity.expressions.jexl import evaluate_condition
from boternity.runtime.log import logger
from boternity.service.registry import Registry
from boternity.service.runs import RunService
from boternity.triggers.matching import event_pattern, match_file, normalize_prefix, webhook_path_key
from boternity.triggers.schedule import to_scheduler_expression, validate_timezone
from boternity.webhooks import execution_name_for_delivery

if TYPE_CHECKING:
    from boternity.model.workflow import Workflow
    from boternity.service.config import Settings

NAME_MAX = 64                       # Scheduler schedule and EventBridge rule names
NOTIFICATION_PREFIX = "boternity-watch-"
TARGET_ID = "boternity"
EVENT_TRIGGER_KEY = "boternity_event_trigger"
SCHEDULE_TRIGGER_KEY = "boternity_schedule_trigger"
# Objects the system itself writes (claim-checked step outputs) never start runs: a workflow
# watching the whole bucket would otherwise trigger itself with every large output.
RESERVED_PREFIXES = ("runs/",)


def resource_name(workflow: str, suffix: str, *, prefix: str = "") -> str:
    """``<prefix><workflow>-<suffix>`` within 64 characters; long names keep a hash of the whole."""
    name = f"{prefix}{workflow}-{suffix}"
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(workflow.encode()).hexdigest()[:8]
    room = NAME_MAX - len(prefix) - len(suffix) - len(digest) - 2
    return f"{prefix}{workflow[:room]}-{digest}-{suffix}"


def plan_triggers(wf: Workflow, settings: Settings) -> list[dict[str, Any]]:
    """One descriptor per trigger, with the names of its AWS resources. Pure, apart from reading
    the settings: raises ``ValidationFailed`` for bad triggers and 500 for missing settings,
    before anything is created."""
    plan: list[dict[str, Any]] = []
    errors: list[WorkflowError] = []
    paths: dict[str, int] = {}
    for i, t in enumerate(wf.triggers):
        try:
            if t.type == "cron":
                _need(settings.scheduler_group, "BOTERNITY_SCHEDULER_GROUP", "cron")
                _need(settings.scheduler_role_arn, "BOTERNITY_SCHEDULER_ROLE_ARN", "cron")
                _need(settings.trigger_function_arn, "BOTERNITY_TRIGGER_FUNCTION_ARN", "cron")
                validate_timezone(t.timezone)
                plan.append({"type": "cron", "index": i, "schedule": t.schedule, "timezone": t.timezone,
                             "expression": to_scheduler_expression(t.schedule), "group": settings.scheduler_group,
                             "schedule_name": resource_name(wf.name, f"cron-{i}")})
            elif t.type == "webhook":
                key = webhook_path_key(t.path)
                if key in paths:
                    raise WorkflowError(f"webhook path '{key}' is used by trigger {paths[key] + 1} already",
                                        code="duplicate_webhook_path", field=f"triggers[{i}].path")
                paths[key] = i
                plan.append({"type": "webhook", "index": i, "path": key,
                             "auth_type": t.auth.type if t.auth else "none",
                             "secret_name": t.auth.secret_name if t.auth else None, "when": t.when})
            elif t.type == "event":
                _need(settings.event_bus, "BOTERNITY_EVENT_BUS", "event")
                _need(settings.trigger_function_arn, "BOTERNITY_TRIGGER_FUNCTION_ARN", "event")
                plan.append({"type": "event", "index": i, "source": t.source, "event_type": t.event_type,
                             "when": t.when, "pattern": event_pattern(t.source, t.event_type),
                             "event_bus": settings.event_bus, "target": "function",
                             "rule_name": resource_name(wf.name, f"event-{i}", prefix=settings.prefix)})
            elif t.type == "file_watch":
                _need(settings.bucket, "BOTERNITY_BUCKET", "file_watch")
                _need(settings.trigger_function_arn, "BOTERNITY_TRIGGER_FUNCTION_ARN", "file_watch")
                plan.append({"type": "file_watch", "index": i, "bucket": settings.bucket,
                             "paths": sorted({normalize_prefix(p) for p in t.paths}), "patterns": list(t.patterns),
                             "when": t.when})
            else:
                plan.append({"type": t.type, "index": i})
        except WorkflowError as exc:
            if exc.field and not exc.field.startswith("triggers["):
                exc.field = f"triggers[{i}].{exc.field}"
            errors.append(exc)
    if errors:
        raise ValidationFailed(errors)
    return plan


def _need(value: str | None, env: str, kind: str) -> None:
    if not value:
        raise ServiceMisconfigured(f"{kind} triggers need {env}, which this deployment does not set")


class TriggerResources:
    """Creates, updates and deletes the AWS resources of a workflow's triggers."""

    def __init__(self, settings: Settings, *, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self._clients: dict[str, Any] = {}

    def _client(self, name: str) -> Any:
        if name not in self._clients:
            self._clients[name] = boto3.client(name)
        return self._clients[name]

    def apply(self, workflow: str, sm_arn: str, new: list[dict[str, Any]], old: list[dict[str, Any]]) -> None:
        """Make the resources match ``new``; whatever only ``old`` had is deleted."""
        by_type = {k: [t for t in new if t["type"] == k] for k in ("cron", "event", "file_watch")}
        for t in by_type["cron"]:
            self._upsert_schedule(workflow, sm_arn, t)
        names = {t["schedule_name"] for t in by_type["cron"]}
        for t in old:
            if t.get("type") == "cron" and t["schedule_name"] not in names:
                self._delete_schedule(t)
        for t in by_type["event"]:
            self._upsert_rule(workflow, sm_arn, t)
        rules = {t["rule_name"] for t in by_type["event"]}
        for t in old:
            if t.get("type") == "event" and t["rule_name"] not in rules:
                self._delete_rule(t)
        had_watch = any(t.get("type") == "file_watch" for t in old)
        if by_type["file_watch"] or had_watch:
            self.registry.set_file_watchers(workflow, by_type["file_watch"])
            self.sync_bucket_notifications()

    def remove(self, workflow: str, old: list[dict[str, Any]]) -> None:
        for t in old:
            if t.get("type") == "cron":
                self._delete_schedule(t)
            elif t.get("type") == "event":
                self._delete_rule(t)
        if any(t.get("type") == "file_watch" for t in old):
            self.registry.set_file_watchers(workflow, [])
            self.sync_bucket_notifications()

    # ------------------------------------------------------------------ cron
    def _upsert_schedule(self, workflow: str, sm_arn: str, t: dict[str, Any]) -> None:
        scheduler = self._client("scheduler")
        args = {
            "Name": t["schedule_name"], "GroupName": t["group"], "ScheduleExpression": t["expression"],
            "ScheduleExpressionTimezone": t["timezone"], "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED",
            "Description": f"Boternity workflow {workflow}: cron trigger {t['index'] + 1} ({t['schedule']})"[:512],
            # Through the trigger function, like every other trigger, so that the run is recorded
            # when it starts, counts against the workflow's concurrency limit (queued or refused),
            # and a retried occurrence starts no second run.
            "Target": {"Arn": self.settings.trigger_function_arn, "RoleArn": self.settings.scheduler_role_arn,
                       "Input": json.dumps({SCHEDULE_TRIGGER_KEY: {"workflow": workflow, "index": t["index"]},
                                            "scheduled_time": "<aws.scheduler.scheduled-time>"})},
        }
        try:
            scheduler.create_schedule(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
            scheduler.update_schedule(**args)

    def _delete_schedule(self, t: dict[str, Any]) -> None:
        try:
            self._client("scheduler").delete_schedule(Name=t["schedule_name"], GroupName=t["group"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise

    # ------------------------------------------------------------------ event
    def _upsert_rule(self, workflow: str, sm_arn: str, t: dict[str, Any]) -> None:
        events = self._client("events")
        events.put_rule(Name=t["rule_name"], EventBusName=t["event_bus"], EventPattern=json.dumps(t["pattern"]),
                        State="ENABLED",
                        Description=f"Boternity workflow {workflow}: event trigger {t['index'] + 1}"[:512])
        # Always through the trigger function (records, concurrency, `when`, one run per event id).
        # The reserved variable carries the whole event; the marker tells the function which
        # workflow and trigger the event is for (a Lambda target learns nothing else).
        marker = json.dumps({"workflow": workflow, "index": t["index"]})
        target = {"Id": TARGET_ID, "Arn": self.settings.trigger_function_arn,
                  "InputTransformer": {"InputTemplate": f'{{"{EVENT_TRIGGER_KEY}": {marker}, '
                                                        f'"event": <aws.events.event.json>}}'}}
        events.put_targets(Rule=t["rule_name"], EventBusName=t["event_bus"], Targets=[target])

    def _delete_rule(self, t: dict[str, Any]) -> None:
        events = self._client("events")
        try:
            events.remove_targets(Rule=t["rule_name"], EventBusName=t["event_bus"], Ids=[TARGET_ID])
            events.delete_rule(Name=t["rule_name"], EventBusName=t["event_bus"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise

    # ------------------------------------------------------------------ file_watch
    def sync_bucket_notifications(self) -> None:
        """Point the bucket's ObjectCreated notifications at the trigger function, one per watched
        prefix of every workflow, keeping notifications that are not ours."""
        bucket = self.settings.bucket
        if not bucket:
            return
        s3 = self._client("s3")
        prefixes = minimal_prefixes([p for w in self.registry.file_watchers() if w.get("bucket") == bucket
                                     for p in (w.get("paths") or [])])
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        foreign = [c for c in current.get("LambdaFunctionConfigurations", [])
                   if not str(c.get("Id", "")).startswith(NOTIFICATION_PREFIX)]
        ours = []
        for p in prefixes:
            conf: dict[str, Any] = {"Id": NOTIFICATION_PREFIX + hashlib.sha256(p.encode()).hexdigest()[:16],
                                    "LambdaFunctionArn": self.settings.trigger_function_arn,
                                    "Events": ["s3:ObjectCreated:*"]}
            if p:
                conf["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": p}]}}
            ours.append(conf)
        config = {k: v for k, v in current.items() if k != "LambdaFunctionConfigurations"}
        if foreign or ours:
            config["LambdaFunctionConfigurations"] = foreign + ours
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


def minimal_prefixes(prefixes: list[str]) -> list[str]:
    """The watched prefixes without those inside another (S3 rejects overlapping filters)."""
    out: list[str] = []
    for p in sorted(set(prefixes)):
        if not any(p.startswith(q) for q in out):
            out.append(p)
    return out


# ---------------------------------------------------------------------- events the trigger function takes


def when_matches(expr: str, context: dict[str, Any]) -> bool:
    """A trigger's ``when`` on an incoming payload. A condition that cannot be evaluated on this
    payload (a type error, a missing list) filters the event out rather than failing the
    delivery: the sender cannot fix the workflow's condition by retrying."""
    try:
        return evaluate_condition(expr, context)
    except ExpressionError as exc:
        logger.warning("trigger condition failed; event filtered", extra={"error": str(exc)[:200]})
        return False


def handle_s3_event(event: dict[str, Any], *, table: str | None = None) -> dict[str, Any]:
    """S3 ObjectCreated notifications → runs of every workflow whose file-watch trigger takes the key.

    S3 delivers at least once: the run id derives from the object and the event's sequencer, so
    a redelivered notification is a duplicate, while a new upload of the same key is a new run.
    """
    table = table or os.environ.get("BOTERNITY_TABLE") or ""
    registry = Registry(table)
    runs = RunService(table)
    watchers: list[dict[str, Any]] | None = None
    results: list[dict[str, Any]] = []
    for rec in event.get("Records") or []:
        if rec.get("eventSource") != "aws:s3" or not str(rec.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = rec.get("s3") or {}
        bucket = str((s3.get("bucket") or {}).get("name") or "")
        obj = s3.get("object") or {}
        key = unquote_plus(str(obj.get("key") or ""))   # S3 URL-encodes keys in notifications
        if not key or key.startswith(RESERVED_PREFIXES):
            continue
        payload = {"bucket": bucket, "key": key, "size": obj.get("size"), "etag": obj.get("eTag")}
        watchers = watchers if watchers is not None else registry.file_watchers()
        for w in watchers:
            if w.get("bucket") != bucket or not match_file(key, w.get("paths") or [], w.get("patterns") or []):
                continue
            if w.get("when") and not when_matches(w["when"], {
                    "event": payload, "trigger": {"type": "file_watch", "paths": w.get("paths")}}):
                results.append({"workflow": w["workflow"], "key": key, "status": "filtered"})
                continue
            delivery = f"s3:{bucket}/{key}@{obj.get('eTag')}#{obj.get('sequencer') or rec.get('eventTime')}"
            run_id = execution_name_for_delivery(w["workflow"], delivery)
            try:
                started = runs.start(w["workflow"], payload, trigger_type="file_watch", run_id=run_id,
                                     trigger={"type": "file_watch", "bucket": bucket, "key": key})
            except StartInProgress:
                raise   # fail the invocation: S3 retries it, and a retry takes a dead holder's claim over
            except Refused as exc:   # a refused run (concurrency reject, workflow gone) is not retried
                logger.warning("file trigger refused", extra={"workflow": w["workflow"], "code": exc.code})
                results.append({"workflow": w["workflow"], "key": key, "status": "refused", "code": exc.code})
                continue
            results.append({"workflow": w["workflow"], "key": key, "run_id": started.run_id,
                            "status": "duplicate" if started.duplicate else started.status})
    return {"runs": results}


def _registered_trigger(table: str, marker: Any, kind: str) -> tuple[str, dict[str, Any] | None]:
    """The workflow a schedule's or rule's marker names, and that trigger's stored descriptor
    (None when the workflow or the trigger is gone: a schedule or rule may outlive it briefly)."""
    marker = marker if isinstance(marker, dict) else {}
    workflow = str(marker.get("workflow") or "")
    record = Registry(table).get(workflow)
    trig = next((t for t in (record or {}).get("triggers") or []
                 if t.get("type") == kind and t.get("index") == marker.get("index")), None)
    return workflow, (None if record is None or trig is None else {**trig, "record": record})


def _start_triggered(table: str, workflow: str, record: dict[str, Any], payload: Any, *, trigger_type: str,
                     delivery: str | None, trigger: dict[str, Any]) -> dict[str, Any]:
    """Start the run as every trigger does; ``delivery`` names it, so a retried delivery is a
    duplicate. A refusal (on_limit: reject) is answered, not raised: a retry would not help."""
    run_id = execution_name_for_delivery(workflow, delivery) if delivery else None
    try:
        started = RunService(table).start(workflow, payload, trigger_type=trigger_type, run_id=run_id,
                                          record=record, trigger=trigger)
    except StartInProgress:
        raise   # fail the invocation so Scheduler/EventBridge retry it (the holder may be dead)
    except Refused as exc:
        logger.warning("triggered run refused", extra={"workflow": workflow, "trigger_type": trigger_type,
                                                       "code": exc.code})
        return {"status": "refused", "code": exc.code, "workflow": workflow}
    return {"status": "duplicate" if started.duplicate else started.status, "run_id": started.run_id,
            "workflow": workflow}


def handle_schedule_trigger(event: dict[str, Any], *, table: str | None = None) -> dict[str, Any]:
    """A cron trigger fired by EventBridge Scheduler: start the run as any trigger does. The
    scheduled time names the run, so a retried invocation of the same occurrence is a duplicate."""
    table = table or os.environ.get("BOTERNITY_TABLE") or ""
    marker = event.get(SCHEDULE_TRIGGER_KEY) or {}
    workflow, trig = _registered_trigger(table, marker, "cron")
    if trig is None:
        return {"status": "gone", "workflow": workflow}
    scheduled = str(event.get("scheduled_time") or "")
    return _start_triggered(table, workflow, trig["record"], {"scheduled_time": scheduled}, trigger_type="cron",
                            delivery=f"cron:{marker.get('index')}:{scheduled}" if scheduled else None,
                            trigger={"type": "cron", "schedule": trig.get("schedule"), "scheduled_time": scheduled})


def handle_event_trigger(event: dict[str, Any], *, table: str | None = None) -> dict[str, Any]:
    """An event trigger (delivered by its rule's input transformer): evaluate ``when`` on the
    event, if any, then start the run; the EventBridge event id makes retries duplicates."""
    table = table or os.environ.get("BOTERNITY_TABLE") or ""
    workflow, trig = _registered_trigger(table, event.get(EVENT_TRIGGER_KEY), "event")
    if trig is None:
        return {"status": "gone", "workflow": workflow}
    payload = event.get("event")
    trigger = {"type": "event", "source": trig["source"], "event_type": trig["event_type"]}
    if trig.get("when") and not when_matches(trig["when"], {"event": payload, "trigger": trigger}):
        return {"status": "filtered", "workflow": workflow}
    event_id = str((payload or {}).get("id") or "") if isinstance(payload, dict) else ""
    return _start_triggered(table, workflow, trig["record"], payload, trigger_type="event",
                            delivery="event:" + event_id if event_id else None, trigger=trigger)
