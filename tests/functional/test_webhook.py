"""The webhook function on moto: each auth scheme (valid and invalid), replays and duplicate
deliveries, ``when`` filters, size cap, unknown paths — and the runs the good requests start."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest

from boternity.handlers.api import lambda_handler as api
from boternity.handlers.webhook import lambda_handler as hook
from boternity.webhooks import sign_hmac_sha256, sign_standard_webhooks
from tests.support.apigw import call, local_cloud, wait_for

GH_SECRET = "gh-secret-value-1234"
SW_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
SW_OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
BEARER = "tok-abcdefghijklmnop"

WORKFLOW = {
    "name": "hooked",
    "triggers": [
        {"type": "webhook", "path": "/github", "auth": {"type": "hmac_sha256", "secret_name": "GH_HOOK_SECRET"},
         "when": "event.action == 'opened'"},
        {"type": "webhook", "path": "/std", "auth": {"type": "standard_webhooks", "secret_name": "SW_HOOK_SECRET"}},
        {"type": "webhook", "path": "/bearer", "auth": {"type": "bearer_token", "secret_name": "BEARER_SECRET"}},
        {"type": "webhook", "path": "/open/feed"},
    ],
    "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}],
}


@pytest.fixture
def cloud(engine, monkeypatch):
    monkeypatch.setenv("BOTERNITY_SECRET_GH_HOOK_SECRET", GH_SECRET)
    monkeypatch.setenv("BOTERNITY_SECRET_SW_HOOK_SECRET", f"{SW_OLD} {SW_SECRET}")   # rotation: both verify
    monkeypatch.setenv("BOTERNITY_SECRET_BEARER_SECRET", BEARER)
    with local_cloud(engine):
        r = call(api, "PUT", "/workflows/hooked", body=WORKFLOW)
        assert r.status == 201, r.text
        yield engine


def executions(engine) -> list[dict[str, Any]]:
    arn = call(api, "GET", "/workflows/hooked").json["state_machine_arn"]
    return engine.sfn.list_executions(stateMachineArn=arn)["executions"]


def github(body: dict[str, Any], *, delivery: str = "d-1", secret: str = GH_SECRET) -> dict[str, Any]:
    raw = json.dumps(body)
    return {"body": raw, "headers": {"Content-Type": "application/json", "X-GitHub-Delivery": delivery,
                                     "X-Hub-Signature-256": sign_hmac_sha256(secret, raw)}}


def standard(body: str, *, msg_id: str = "msg_1", ts: int | None = None, secret: str = SW_SECRET) -> dict[str, Any]:
    ts = int(time.time()) if ts is None else ts
    return {"body": body, "headers": {"Content-Type": "application/json", "webhook-id": msg_id,
                                      "webhook-timestamp": str(ts),
                                      "webhook-signature": sign_standard_webhooks(secret, msg_id, ts, body)}}


def finished(run_id: str) -> dict[str, Any]:
    return wait_for(lambda: (b := call(api, "GET", f"/runs/{run_id}").json)["run"]["status"] != "RUNNING" and b)


# ---------------------------------------------------------------------- each scheme


def test_github_hmac_starts_a_run_with_the_body_as_payload(cloud):
    r = call(hook, "POST", "/hooks/github", **github({"action": "opened", "number": 7}))
    assert r.status == 202, r.text
    body = r.json
    assert body["status"] == "RUNNING" and body["workflow"] == "hooked"
    assert body["links"]["self"].endswith(f"/runs/{body['run_id']}")
    run = finished(body["run_id"])["run"]
    assert run["status"] == "SUCCEEDED" and run["trigger_type"] == "webhook"
    assert run["trigger"] == {"type": "webhook", "path": "/github", "delivery_id": "d-1"}
    d = cloud.sfn.describe_execution(executionArn=run["execution_arn"])
    assert json.loads(d["input"]) == {"action": "opened", "number": 7}
    assert d["name"].startswith("hooked-wh-")   # the delivery id names the execution


@pytest.mark.parametrize("tamper", ["wrong secret", "body changed", "no signature", "garbage signature"])
def test_github_hmac_rejections_are_401_and_say_nothing(cloud, tamper):
    req = github({"action": "opened"}, secret="not-it" if tamper == "wrong secret" else GH_SECRET)
    if tamper == "body changed":
        req["body"] = req["body"].replace("opened", "closed")
    elif tamper == "no signature":
        del req["headers"]["X-Hub-Signature-256"]
    elif tamper == "garbage signature":
        req["headers"]["X-Hub-Signature-256"] = "sha256=zzz"
    r = call(hook, "POST", "/hooks/github", **req)
    assert r.status == 401
    assert r.error == {"code": "unauthorized", "message": "webhook authentication failed", "details": None}
    assert GH_SECRET not in r.text and "signature" not in r.text.lower()
    assert executions(cloud) == []


def test_standard_webhooks_valid_with_either_rotated_secret(cloud):
    for i, secret in enumerate((SW_SECRET, SW_OLD)):
        r = call(hook, "POST", "/hooks/std", **standard('{"kind": "ping"}', msg_id=f"msg_{i}", secret=secret))
        assert r.status == 202, r.text
        assert finished(r.json["run_id"])["run"]["status"] == "SUCCEEDED"
    assert len(executions(cloud)) == 2


@pytest.mark.parametrize("tamper", ["stale", "future", "wrong secret", "id changed"])
def test_standard_webhooks_rejections(cloud, tamper):
    now = int(time.time())
    ts = now - 600 if tamper == "stale" else now + 600 if tamper == "future" else now
    req = standard('{"kind": "ping"}', ts=ts,
                   secret="whsec_" + base64.b64encode(b"x" * 32).decode() if tamper == "wrong secret" else SW_SECRET)
    if tamper == "id changed":
        req["headers"]["webhook-id"] = "msg_other"
    r = call(hook, "POST", "/hooks/std", **req)
    assert r.status == 401 and r.error["message"] == "webhook authentication failed"
    assert executions(cloud) == []


def test_bearer_token(cloud):
    ok = call(hook, "POST", "/hooks/bearer", body={"x": 1}, headers={"Authorization": f"Bearer {BEARER}"})
    assert ok.status == 202, ok.text
    for value in ("Bearer nope", "", f"Basic {BEARER}x"):
        bad = call(hook, "POST", "/hooks/bearer", body={"x": 1}, headers={"Authorization": value} if value else None)
        assert bad.status == 401 and BEARER not in bad.text
    assert len(executions(cloud)) == 1


def test_a_public_hook_and_its_nested_path(cloud):
    r = call(hook, "POST", "/hooks/open/feed/", body={"hello": "world"})   # trailing slash: same path
    assert r.status == 202, r.text


def test_the_secret_can_come_from_secrets_manager(cloud, monkeypatch):
    monkeypatch.delenv("BOTERNITY_SECRET_BEARER_SECRET")
    boto3.client("secretsmanager").create_secret(Name="boternity/workflows/BEARER_SECRET", SecretString=BEARER)
    r = call(hook, "POST", "/hooks/bearer", body={}, headers={"Authorization": f"Bearer {BEARER}"})
    assert r.status == 202, r.text


def test_a_missing_secret_fails_closed(cloud, monkeypatch):
    monkeypatch.delenv("BOTERNITY_SECRET_GH_HOOK_SECRET")
    r = call(hook, "POST", "/hooks/github", **github({"action": "opened"}, delivery="d-missing"))
    assert r.status == 401 and r.error["message"] == "webhook authentication failed"


def test_base64_bodies_are_verified_over_the_raw_bytes(cloud):
    raw = json.dumps({"action": "opened", "emoji": "\u2603"}).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Delivery": "d-b64",
               "X-Hub-Signature-256": sign_hmac_sha256(GH_SECRET, raw)}
    r = call(hook, "POST", "/hooks/github", body=raw, headers=headers, binary=True)
    assert r.status == 202, r.text


# ---------------------------------------------------------------------- replay, filter, limits


def test_a_duplicate_delivery_starts_no_second_run(cloud):
    first = call(hook, "POST", "/hooks/github", **github({"action": "opened"}, delivery="dup-1"))
    assert first.status == 202
    again = call(hook, "POST", "/hooks/github", **github({"action": "opened"}, delivery="dup-1"))
    assert again.status == 200
    assert again.json == {"status": "duplicate", "run_id": first.json["run_id"], "workflow": "hooked"}
    assert len(executions(cloud)) == 1
    other = call(hook, "POST", "/hooks/github", **github({"action": "opened"}, delivery="dup-2"))
    assert other.status == 202 and other.json["run_id"] != first.json["run_id"]


def test_a_replayed_standard_webhook_is_a_duplicate(cloud):
    req = standard('{"n": 1}', msg_id="msg_replay")
    first = call(hook, "POST", "/hooks/std", **req)
    replay = call(hook, "POST", "/hooks/std", **req)
    assert first.status == 202 and replay.status == 200
    assert replay.json["status"] == "duplicate" and replay.json["run_id"] == first.json["run_id"]
    assert len(executions(cloud)) == 1


def test_the_execution_name_stops_a_duplicate_even_without_the_delivery_claim(cloud):
    first = call(hook, "POST", "/hooks/github", **github({"action": "opened"}, delivery="dup-x"))
    table = boto3.resource("dynamodb").Table("boternity")
    for item in table.scan()["Items"]:
        if item["pk"].startswith("IDEM#"):
            table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    again = call(hook, "POST", "/hooks/github", **github({"action": "opened"}, delivery="dup-x"))
    assert again.status == 200 and again.json["run_id"] == first.json["run_id"]
    assert len(executions(cloud)) == 1


def test_bearer_hooks_dedupe_on_an_idempotency_key(cloud):
    headers = {"Authorization": f"Bearer {BEARER}", "Idempotency-Key": "evt-9"}
    first = call(hook, "POST", "/hooks/bearer", body={}, headers=headers)
    again = call(hook, "POST", "/hooks/bearer", body={}, headers=headers)
    assert (first.status, again.status) == (202, 200) and again.json["run_id"] == first.json["run_id"]


def test_when_filters_out_events(cloud):
    r = call(hook, "POST", "/hooks/github", **github({"action": "closed"}, delivery="f-1"))
    assert r.status == 202 and r.json == {"status": "filtered", "workflow": "hooked"}
    assert executions(cloud) == []
    # A body the condition cannot read is filtered too, never an error.
    r = call(hook, "POST", "/hooks/github", **github(["not", "an", "object"], delivery="f-2"))  # type: ignore[arg-type]
    assert r.status == 202 and r.json["status"] == "filtered"


def test_oversized_bodies_are_413_before_anything_else(cloud):
    big = json.dumps({"blob": "x" * (256 * 1024)})
    r = call(hook, "POST", "/hooks/github", body=big, headers={"Content-Type": "application/json"})
    assert r.status == 413 and r.error["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["/hooks/nowhere", "/hooks/github/extra", "/hooks/a/../github", "/hooks/%2e%2e/x"])
def test_unknown_paths_are_404(cloud, path):
    r = call(hook, "POST", path, body={})
    assert r.status == 404 and r.error["message"] == "no webhook at this path"


def test_only_post(cloud):
    r = call(hook, "GET", "/hooks/open/feed")
    assert r.status == 405 and r.headers["Allow"] == "POST"


def test_invalid_json_on_an_open_hook_is_400(cloud):
    r = call(hook, "POST", "/hooks/open/feed", body="{nope", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error["code"] == "invalid_json"
    form = call(hook, "POST", "/hooks/open/feed", body="a=1&b=two",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 202
    run = finished(form.json["run_id"])["run"]
    assert json.loads(cloud.sfn.describe_execution(executionArn=run["execution_arn"])["input"]) == {"a": "1", "b": "two"}


def test_concurrency_reject_is_429_and_the_delivery_can_be_retried(cloud):
    doc = {**WORKFLOW, "name": "busy", "concurrency": 1, "on_limit": "reject",
           "triggers": [{"type": "webhook", "path": "/busy"}],
           "steps": [{"id": "nap", "type": "wait", "config": {"seconds": 30}}]}
    assert call(api, "PUT", "/workflows/busy", body=doc).status == 201
    first = call(hook, "POST", "/hooks/busy", body={}, headers={"Idempotency-Key": "k1"})
    refused = call(hook, "POST", "/hooks/busy", body={}, headers={"Idempotency-Key": "k2"})
    assert first.status == 202 and refused.status == 429
    cancel = call(api, "POST", f"/runs/{first.json['run_id']}/cancel")
    assert cancel.status == 200, cancel.text
    retried = call(hook, "POST", "/hooks/busy", body={}, headers={"Idempotency-Key": "k2"})
    assert retried.status == 202, "a refused delivery must not be remembered as a duplicate"
    call(api, "POST", f"/runs/{retried.json['run_id']}/cancel")


# ---------------------------------------------------------------------- registration


def test_webhook_urls_are_listed_with_the_workflow(cloud):
    triggers = call(api, "GET", "/workflows/hooked").json["triggers"]
    urls = {t["path"]: t["url"] for t in triggers if t["type"] == "webhook"}
    assert urls["/github"] == "https://abc123.execute-api.us-east-1.amazonaws.com/prod/hooks/github"
    assert urls["/open/feed"].endswith("/prod/hooks/open/feed")
    text = json.dumps(triggers)
    assert GH_SECRET not in text and BEARER not in text and SW_SECRET not in text   # names only, never values
    assert {t["path"]: t.get("auth_type") for t in triggers if t["type"] == "webhook"}["/std"] == "standard_webhooks"


def test_two_workflows_cannot_share_a_path(cloud):
    other = {"name": "thief", "triggers": [{"type": "webhook", "path": "/github"}],
             "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}
    r = call(api, "PUT", "/workflows/thief", body=other)
    assert r.status == 409 and r.error["code"] == "webhook_path_taken"
    assert r.error["details"] == {"path": "/github", "workflow": "hooked"}
    assert call(api, "GET", "/workflows/thief").status == 404


def test_a_removed_trigger_or_workflow_frees_its_path(cloud):
    doc = {**WORKFLOW, "triggers": WORKFLOW["triggers"][1:]}    # drop /github
    assert call(api, "PUT", "/workflows/hooked", body=doc).status == 200
    assert call(hook, "POST", "/hooks/github", **github({"action": "opened"})).status == 404
    assert call(api, "DELETE", "/workflows/hooked").status == 200
    assert call(hook, "POST", "/hooks/open/feed", body={}).status == 404


def test_two_triggers_of_one_workflow_cannot_share_a_path(cloud):
    doc = {"name": "twice", "triggers": [{"type": "webhook", "path": "/same"}, {"type": "webhook", "path": "/same/"}],
           "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}
    r = call(api, "PUT", "/workflows/twice", body=doc)
    assert r.status == 400 and r.error["details"][0]["code"] == "duplicate_webhook_path"


def test_the_handlers_stay_light():
    """Cold starts: the webhook function loads no pydantic, compiler or YAML parser; neither function
    loads moto, anthropic or wasmtime."""
    import subprocess
    import sys

    heavy = ("pydantic", "boternity.compiler", "boternity.model", "yaml", "moto", "anthropic", "wasmtime")
    code = ("import sys, boternity.handlers.{0}; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    webhook = subprocess.run([sys.executable, "-c", code.format("webhook")], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert webhook == ""
    api_mods = subprocess.run([sys.executable, "-c", code.format("api")], capture_output=True, text=True,
                              check=True).stdout.strip().split(",")
    assert not {"moto", "anthropic", "wasmtime", "boternity.compiler", "yaml"} & set(api_mods)
