"""Trigger resources on moto: EventBridge Scheduler schedules (cron), rules on the custom bus
(event), S3 notifications (file_watch) — created, updated and deleted with the workflow, and
each one really starting runs. Also the moto internals ``cloud_patches`` relies on."""

from __future__ import annotations

import datetime as dt
import inspect
import json
from typing import Any

import boto3
import pytest

from boternity.handlers.api import lambda_handler as api
from boternity.handlers.webhook import lambda_handler as webhook_function
from tests.support.apigw import call, local_cloud, wait_for

BUCKET = "boternity-local"       # what prepare_local_cloud creates, as template.yaml does
BUS = "boternity"
GROUP = "boternity"


@pytest.fixture
def cloud(engine):
    with local_cloud(engine) as env:
        yield env


def put(doc: dict[str, Any]) -> dict[str, Any]:
    r = call(api, "PUT", f"/workflows/{doc['name']}", body=doc)
    assert r.status in (200, 201), r.text
    return r.json


def wf(name: str, *triggers: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "triggers": list(triggers), "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}


def executions(sm_arn: str) -> list[dict[str, Any]]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=sm_arn)["executions"]


def inputs(sm_arn: str) -> list[Any]:
    sfn = boto3.client("stepfunctions")
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in executions(sm_arn)]


# ---------------------------------------------------------------------- cron


def test_cron_triggers_become_scheduler_schedules(cloud):
    scheduler = boto3.client("scheduler")
    created = put(wf("nightly", {"type": "cron", "schedule": "every day at 09:00", "timezone": "Europe/Berlin"},
                     {"type": "cron", "schedule": "*/15 * * * 1-5"}))
    names = [t["schedule_name"] for t in created["triggers"]]
    assert names == ["nightly-cron-0", "nightly-cron-1"]
    s = scheduler.get_schedule(GroupName=GROUP, Name="nightly-cron-0")
    assert s["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert s["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert s["FlexibleTimeWindow"] == {"Mode": "OFF"} and s["State"] == "ENABLED"
    # The trigger function starts the run, so it is recorded and counted like any other.
    assert s["Target"]["Arn"] == cloud["BOTERNITY_TRIGGER_FUNCTION_ARN"]
    assert s["Target"]["RoleArn"] == cloud["BOTERNITY_SCHEDULER_ROLE_ARN"]
    assert json.loads(s["Target"]["Input"]) == {"boternity_schedule_trigger": {"workflow": "nightly", "index": 0},
                                                "scheduled_time": "<aws.scheduler.scheduled-time>"}
    s1 = scheduler.get_schedule(GroupName=GROUP, Name="nightly-cron-1")
    assert s1["ScheduleExpression"] == "cron(0/15 * ? * MON-FRI *)" and s1["ScheduleExpressionTimezone"] == "UTC"

    # Update: the first schedule changes, the second trigger is gone and so is its schedule.
    put(wf("nightly", {"type": "cron", "schedule": "every 5 minutes", "timezone": "America/New_York"}))
    s = scheduler.get_schedule(GroupName=GROUP, Name="nightly-cron-0")
    assert s["ScheduleExpression"] == "rate(5 minutes)" and s["ScheduleExpressionTimezone"] == "America/New_York"
    listed = {x["Name"] for x in scheduler.list_schedules(GroupName=GROUP)["Schedules"]}
    assert listed == {"nightly-cron-0"}

    assert call(api, "DELETE", "/workflows/nightly").status == 200
    assert scheduler.list_schedules(GroupName=GROUP)["Schedules"] == []


def test_a_fired_schedule_runs_the_workflow_and_the_run_is_recorded(cloud, engine):
    from boternity.local.server import LocalServer

    created = put(wf("digest", {"type": "cron", "schedule": "every day at 09:00", "timezone": "Europe/Berlin"}))
    # 09:00 in Berlin on 1 January is 08:00 UTC; moto never fires schedules, the local server does.
    fired = LocalServer(engine).fire_due_schedules(now=dt.datetime(2030, 1, 1, 8, 0, tzinfo=dt.UTC))
    assert fired == 1
    assert inputs(created["state_machine_arn"]) == [{"scheduled_time": "2030-01-01T08:00:00Z"}]
    runs = wait_for(lambda: call(api, "GET", "/workflows/digest/runs?status=SUCCEEDED").json["runs"])
    assert runs[0]["trigger_type"] == "cron" and runs[0]["workflow"] == "digest"
    assert runs[0]["trigger"]["scheduled_time"] == "2030-01-01T08:00:00Z"


def _fire(workflow: str, scheduled_time: str, index: int = 0) -> dict[str, Any]:
    """What EventBridge Scheduler delivers to the trigger function for one occurrence."""
    return webhook_function({"boternity_schedule_trigger": {"workflow": workflow, "index": index},
                             "scheduled_time": scheduled_time}, None)


def test_a_retried_occurrence_starts_no_second_run(cloud):
    created = put(wf("hourly", {"type": "cron", "schedule": "hourly"}))
    first = _fire("hourly", "2030-01-01T08:00:00Z")
    assert first["status"] == "RUNNING"
    assert _fire("hourly", "2030-01-01T08:00:00Z") == {**first, "status": "duplicate"}
    assert _fire("hourly", "2030-01-01T09:00:00Z")["run_id"] != first["run_id"]
    wait_for(lambda: len(executions(created["state_machine_arn"])) == 2)
    assert _fire("gone", "2030-01-01T08:00:00Z")["status"] == "gone"


@pytest.mark.parametrize(("on_limit", "second"), [("queue", "QUEUED"), ("reject", "refused")])
def test_scheduled_runs_respect_the_concurrency_limit(cloud, on_limit, second):
    # The first run waits far longer than the test: a short wait could end before the second
    # occurrence fires on a loaded machine. Cancelling it is what frees the slot.
    doc = {"name": "one-at-a-time", "concurrency": 1, "on_limit": on_limit,
           "triggers": [{"type": "cron", "schedule": "every minute"}],
           "steps": [{"id": "slow", "type": "wait", "config": {"seconds": 600}}]}
    created = put(doc)
    first = _fire("one-at-a-time", "2030-01-01T08:00:00Z")
    assert first["status"] == "RUNNING"
    overlapping = _fire("one-at-a-time", "2030-01-01T08:01:00Z")
    assert overlapping["status"] == second
    if on_limit == "reject":
        assert overlapping["code"] == "concurrency_limit"
        assert len(executions(created["state_machine_arn"])) == 1
        assert call(api, "POST", f"/runs/{first['run_id']}/cancel").status == 200
        return
    assert len(executions(created["state_machine_arn"])) == 1
    assert call(api, "POST", f"/runs/{first['run_id']}/cancel").status == 200
    # the queued run starts when the first one ends
    wait_for(lambda: len(executions(created["state_machine_arn"])) == 2, timeout=30)
    assert call(api, "POST", f"/runs/{overlapping['run_id']}/cancel").status == 200


def test_cron_triggers_need_a_scheduler_group(cloud, monkeypatch):
    monkeypatch.delenv("BOTERNITY_SCHEDULER_GROUP")
    r = call(api, "PUT", "/workflows/orphan", body=wf("orphan", {"type": "cron", "schedule": "hourly"}))
    assert r.status == 500 and r.error["code"] == "misconfigured" and "BOTERNITY_SCHEDULER_GROUP" in r.error["message"]
    sfn = boto3.client("stepfunctions")
    assert not [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "boternity-orphan"]


# ---------------------------------------------------------------------- event


def _put_event(detail: dict[str, Any], *, source: str = "shop", detail_type: str = "order.created") -> None:
    resp = boto3.client("events").put_events(Entries=[{
        "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": BUS}])
    assert resp["FailedEntryCount"] == 0


def test_an_event_trigger_is_a_rule_whose_events_start_runs(cloud):
    events = boto3.client("events")
    created = put(wf("on-order", {"type": "event", "source": "shop", "event_type": "order.created"}))
    (trigger,) = created["triggers"]
    rule = events.describe_rule(Name=trigger["rule_name"], EventBusName=BUS)
    assert json.loads(rule["EventPattern"]) == {"source": ["shop"], "detail-type": ["order.created"]}
    (target,) = events.list_targets_by_rule(Rule=trigger["rule_name"], EventBusName=BUS)["Targets"]
    assert target["Arn"] == cloud["BOTERNITY_TRIGGER_FUNCTION_ARN"] and "InputTransformer" in target

    _put_event({"order": 1})
    _put_event({"order": 2}, detail_type="order.cancelled")     # not matched
    _put_event({"order": 3}, source="elsewhere")                # not matched
    got = wait_for(lambda: inputs(created["state_machine_arn"]))
    assert len(got) == 1
    assert got[0]["detail"] == {"order": 1} and got[0]["source"] == "shop" and got[0]["detail-type"] == "order.created"
    runs = wait_for(lambda: call(api, "GET", "/workflows/on-order/runs?status=SUCCEEDED").json["runs"])
    assert runs[0]["trigger_type"] == "event"

    assert call(api, "DELETE", "/workflows/on-order").status == 200
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_rule(Name=trigger["rule_name"], EventBusName=BUS)


def test_an_event_trigger_with_when_filters_through_the_trigger_function(cloud):
    events = boto3.client("events")
    created = put(wf("big-orders", {"type": "event", "source": "shop", "event_type": "order.created",
                                    "when": "event.detail.total > 100"}))
    (trigger,) = created["triggers"]
    assert trigger["target"] == "function"
    (target,) = events.list_targets_by_rule(Rule=trigger["rule_name"], EventBusName=BUS)["Targets"]
    assert target["Arn"] == cloud["BOTERNITY_TRIGGER_FUNCTION_ARN"] and "InputTransformer" in target

    _put_event({"total": 5})
    _put_event({"total": 500})
    got = wait_for(lambda: inputs(created["state_machine_arn"]))
    assert len(got) == 1 and got[0]["detail"] == {"total": 500}
    run = wait_for(lambda: call(api, "GET", "/workflows/big-orders/runs?status=SUCCEEDED").json["runs"])[0]
    assert run["trigger_type"] == "event" and run["trigger"]["source"] == "shop"


def test_a_redelivered_event_starts_no_second_run(cloud):
    created = put(wf("once-per-event", {"type": "event", "source": "shop", "event_type": "order.created",
                                        "when": "true"}))
    wrapped = {"boternity_event_trigger": {"workflow": "once-per-event", "index": 0},
               "event": {"id": "evt-1", "source": "shop", "detail-type": "order.created", "detail": {}}}
    first = webhook_function(wrapped, None)
    again = webhook_function(wrapped, None)
    assert first["status"] == "RUNNING" and again == {**first, "status": "duplicate"}
    assert len(executions(created["state_machine_arn"])) == 1
    assert webhook_function({**wrapped, "boternity_event_trigger": {"workflow": "gone", "index": 0}},
                            None)["status"] == "gone"


# ---------------------------------------------------------------------- file_watch


def _notifications() -> list[dict[str, Any]]:
    conf = boto3.client("s3").get_bucket_notification_configuration(Bucket=BUCKET)
    return conf.get("LambdaFunctionConfigurations", [])


def test_file_watch_starts_runs_for_matching_objects(cloud):
    s3 = boto3.client("s3")
    created = put(wf("ingest", {"type": "file_watch", "paths": ["/inbox"], "patterns": ["*.json"]}))
    (conf,) = _notifications()
    assert conf["LambdaFunctionArn"] == cloud["BOTERNITY_TRIGGER_FUNCTION_ARN"]
    assert conf["Events"] == ["s3:ObjectCreated:*"]
    assert [(r["Name"].lower(), r["Value"]) for r in conf["Filter"]["Key"]["FilterRules"]] == [("prefix", "inbox/")]

    put_resp = s3.put_object(Bucket=BUCKET, Key="inbox/my order.json", Body=b'{"a": 1}')
    s3.put_object(Bucket=BUCKET, Key="inbox/notes.txt", Body=b"no")          # pattern does not match
    s3.put_object(Bucket=BUCKET, Key="inbox2/x.json", Body=b"{}")            # another folder
    s3.put_object(Bucket=BUCKET, Key="elsewhere/x.json", Body=b"{}")
    got = wait_for(lambda: inputs(created["state_machine_arn"]))
    assert got == [{"bucket": BUCKET, "key": "inbox/my order.json", "size": 8,
                    "etag": put_resp["ETag"].strip('"')}]
    run = wait_for(lambda: call(api, "GET", "/workflows/ingest/runs?status=SUCCEEDED").json["runs"])[0]
    assert run["trigger_type"] == "file_watch" and run["trigger"]["key"] == "inbox/my order.json"

    assert call(api, "DELETE", "/workflows/ingest").status == 200
    assert _notifications() == []
    s3.put_object(Bucket=BUCKET, Key="inbox/late.json", Body=b"{}")    # nothing left to start


def test_file_watch_when_and_overlapping_prefixes(cloud):
    s3 = boto3.client("s3")
    a = put(wf("all-inbox", {"type": "file_watch", "paths": ["inbox"]}))
    b = put(wf("big-sub", {"type": "file_watch", "paths": ["inbox/sub/"], "when": "event.size > 3"}))
    # S3 refuses overlapping filters: one notification for inbox/ serves both workflows.
    assert len(_notifications()) == 1
    s3.put_object(Bucket=BUCKET, Key="inbox/sub/small", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="inbox/sub/large", Body=b"12345")
    wait_for(lambda: len(executions(a["state_machine_arn"])) == 2)
    wait_for(lambda: executions(b["state_machine_arn"]))
    assert [i["key"] for i in inputs(b["state_machine_arn"])] == ["inbox/sub/large"]
    # Removing one workflow keeps the other's notification.
    call(api, "DELETE", "/workflows/all-inbox")
    (conf,) = _notifications()
    assert conf["Filter"]["Key"]["FilterRules"][0]["Value"] == "inbox/sub/"


def test_the_system_s_own_objects_never_trigger(cloud):
    created = put(wf("everything", {"type": "file_watch", "paths": ["/"]}))
    (conf,) = _notifications()
    assert "Filter" not in conf      # the whole bucket
    boto3.client("s3").put_object(Bucket=BUCKET, Key="runs/r1/step/output.json", Body=b"{}")
    boto3.client("s3").put_object(Bucket=BUCKET, Key="data.csv", Body=b"x")
    got = wait_for(lambda: inputs(created["state_machine_arn"]))
    assert [i["key"] for i in got] == ["data.csv"]


def test_foreign_bucket_notifications_are_kept(cloud):
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="audit")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "audit", "QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]}]})
    put(wf("watcher", {"type": "file_watch", "paths": ["in"]}))
    conf = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    assert [q["Id"] for q in conf["QueueConfigurations"]] == ["audit"] and len(conf["LambdaFunctionConfigurations"]) == 1
    call(api, "DELETE", "/workflows/watcher")
    conf = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    assert [q["Id"] for q in conf["QueueConfigurations"]] == ["audit"] and "LambdaFunctionConfigurations" not in conf


# ---------------------------------------------------------------------- pure parts


def test_resource_names_fit_64_characters():
    from boternity.service.trigger_resources import resource_name

    assert resource_name("short", "cron-0") == "short-cron-0"
    long = "w" * 64
    a, b = resource_name(long, "cron-1", prefix="boternity-"), resource_name(long[:-1] + "x", "cron-1", prefix="boternity-")
    assert len(a) == 64 and a.endswith("-cron-1") and a.startswith("boternity-") and a != b


def test_minimal_prefixes():
    from boternity.service.trigger_resources import minimal_prefixes

    assert minimal_prefixes(["inbox/sub/", "inbox/", "out/", "inbox/"]) == ["inbox/", "out/"]
    assert minimal_prefixes(["", "inbox/"]) == [""]


def test_input_transformer_of_the_local_event_targets():
    from types import SimpleNamespace

    from boternity.local.cloud_patches import target_input

    rule = SimpleNamespace(name="r1", arn="arn:aws:events:us-east-1:1:rule/bus/r1")
    event = {"id": "e1", "source": "shop", "detail": {"total": 5, "who": "ada"}}
    tpl = {"InputTransformer": {"InputPathsMap": {"who": "$.detail.who", "total": "$.detail.total"},
                                "InputTemplate": '{"rule": "<aws.events.rule-name>", "who": "<who>", "n": <total>, '
                                                 '"event": <aws.events.event.json>}'}}
    assert target_input(rule, tpl, event) == {"rule": "r1", "who": "ada", "n": 5, "event": event}
    assert target_input(rule, {"Input": '{"fixed": true}'}, event) == {"fixed": True}
    assert target_input(rule, {"InputPath": "$.detail"}, event) == event["detail"]
    assert target_input(rule, {}, event) == event


# ---------------------------------------------------------------------- moto guards


def test_moto_internals_that_cloud_patches_replaces_still_exist():
    """If moto changes under cloud_patches, this fails first and says where."""
    import moto
    from moto.dynamodb.models import DynamoDBBackend
    from moto.events.models import Rule
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse, get_backend

    assert moto.__version__ == "5.2.5", "cloud_patches was written against moto 5.2.5: re-check every patch"
    assert list(inspect.signature(Rule.send_to_targets).parameters) == ["self", "original_event", "transform_input"]
    assert {"name", "exec_arn", "state_machine", "input_data", "start_date", "activity_store"} <= set(
        inspect.signature(Execution.__init__).parameters)
    assert hasattr(StepFunctionsParserBackend, "_get_state_machine_for_execution") and callable(get_backend)
    assert all(hasattr(DynamoDBBackend, op) for op in ("transact_write_items", "put_item", "update_item"))
    # Upstream still lacks RedriveExecution: the stand-in is needed (delete it when this fails).
    src = inspect.getsource(StepFunctionResponse)
    assert "def redrive_execution" not in src


def test_a_failed_moto_transaction_no_longer_undoes_other_writes(cloud, monkeypatch):
    """The DynamoDB patch: a write made by another thread while a transaction runs must survive the
    transaction's rollback (unpatched moto restores a whole-table snapshot and loses it)."""
    import threading

    import moto.dynamodb.models as ddb_models
    from botocore.exceptions import ClientError

    from boternity.local import fast_dynamodb

    # moto's own DynamoDB (the engine's table is otherwise answered by fast_dynamodb, whose own
    # test of this property is in tests/functional/test_fast_dynamodb.py).
    fast_dynamodb.disable()
    table = boto3.resource("dynamodb").Table("boternity")
    table.put_item(Item={"pk": "T#a", "sk": "x"})
    others: list[threading.Thread] = []
    original = ddb_models.get_filter_expression

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not others:   # once, from inside the transaction: another thread writes
            t = threading.Thread(target=lambda: table.put_item(Item={"pk": "T#b", "sk": "x"}))
            others.append(t)
            t.start()
            t.join(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(ddb_models, "get_filter_expression", meanwhile)
    with pytest.raises(ClientError):
        table.meta.client.transact_write_items(TransactItems=[{"Put": {
            "TableName": "boternity", "Item": {"pk": "T#a", "sk": "x", "n": 1},
            "ConditionExpression": "attribute_not_exists(pk)"}}])
    others[0].join()
    assert table.get_item(Key={"pk": "T#b", "sk": "x"}, ConsistentRead=True).get("Item"), \
        "a failed transaction rolled back another thread's write"
