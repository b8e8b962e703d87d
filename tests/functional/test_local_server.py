"""`boternity serve`: HTTP requests become API Gateway events for the same handlers; cron schedules
that moto stores but never fires are fired by the server's loop."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import boto3
import pytest

from boternity.local import cloud_patches
from boternity.local.server import LocalServer, prepare_local_cloud

WORKFLOW = """
name: served
triggers:
  - type: cron
    schedule: every minute
steps:
  - id: hello
    type: skill
    config: {skill: echo-prompt, input: "hello {{ trigger.who | default('cron') }}"}
"""


@pytest.fixture
def server(engine, monkeypatch):
    cloud_patches.apply()
    for k, v in prepare_local_cloud(engine).items():
        monkeypatch.setenv(k, v)
    cloud_patches.install_trigger_function(role_arn=engine.role_arn)
    return LocalServer(engine, port=0)


def call(server, method, path, body=None, ctype="application/json"):
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    status, headers, raw = server.handle(method, path, {"Content-Type": ctype, "Accept": "application/json"}, data)
    return status, json.loads(raw) if raw else None


def wait_for_run(server, run_id):
    for _ in range(200):
        status, body = call(server, "GET", f"/runs/{run_id}")
        if status == 200 and body["run"]["status"] in ("SUCCEEDED", "FAILED"):
            return body
        time.sleep(0.05)
    raise AssertionError("run did not finish")


def test_deploy_trigger_and_read_a_run_through_http_events(server):
    status, body = call(server, "PUT", "/workflows/served", WORKFLOW.encode(), "application/yaml")
    assert status in (200, 201), body
    status, body = call(server, "POST", "/workflows/served/runs", {"who": "ada"})
    assert status == 202, body
    run = wait_for_run(server, body["run_id"])
    assert run["run"]["status"] == "SUCCEEDED"
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["hello"]["output"]["output"] == "Handled: hello ada\n"


def test_local_only_routes_store_secrets_and_files(server):
    status, body = call(server, "PUT", "/_local/secrets/partner", b"s3cret", "text/plain")
    assert status == 200 and body["stored"] is True
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    assert sm.get_secret_value(SecretId="boternity/workflows/partner")["SecretString"] == "s3cret"
    status, body = call(server, "PUT", "/_local/files/inbox/a.csv", b"a,b\n", "text/csv")
    assert status == 200 and body["key"] == "inbox/a.csv"
    status, body = call(server, "GET", "/_local/nothing")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_cron_schedules_fire_on_time(server):
    status, body = call(server, "PUT", "/workflows/served", WORKFLOW.encode(), "application/yaml")
    assert status in (200, 201), body
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    schedules = scheduler.list_schedules(GroupName=os.environ["BOTERNITY_SCHEDULER_GROUP"])["Schedules"]
    assert len(schedules) == 1
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    assert server.fire_due_schedules(now=now) == 1
    assert server.fire_due_schedules(now=now) == 0, "a schedule fires once per occurrence"
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    assert ":function:" in schedules[0]["Target"]["Arn"], "schedules start runs through the trigger function"
    arn = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("served"))
    execs = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert len(execs) == 1
    for _ in range(200):
        d = sfn.describe_execution(executionArn=execs[0]["executionArn"])
        if d["status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert d["status"] == "SUCCEEDED"
    assert "scheduled_time" in json.loads(d["input"])


@pytest.mark.parametrize(("doc", "status", "cause_part"), [
    ("name: breaks\nsteps:\n  - {id: fetch, type: http, config: {url: 'http://127.0.0.1:9/'}}\n",
     "FAILED", "step fetch failed"),
    ("name: slow\ntimeout_secs: 1\nsteps:\n  - {id: nap, type: wait, config: {seconds: 5}}\n", "TIMED_OUT", None),
])
def test_failed_and_timed_out_runs_end_with_their_status_through_the_api(server, doc, status, cause_part):
    name = doc.split("\n")[0].split(": ")[1]
    assert call(server, "PUT", f"/workflows/{name}", doc.encode(), "application/yaml")[0] in (200, 201)
    code, body = call(server, "POST", f"/workflows/{name}/runs", {})
    assert code == 202
    run_id = body["run_id"]
    for _ in range(300):
        code, run = call(server, "GET", f"/runs/{run_id}")
        if run["run"]["status"] not in ("RUNNING", "QUEUED"):
            break
        time.sleep(0.05)
    assert run["run"]["status"] == status
    if cause_part:
        assert cause_part in run["run"]["cause"]
    assert all(s["status"] != "running" for s in run["steps"])
