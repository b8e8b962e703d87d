"""What the console needs from the API, through the api function on moto: the approvals listing,
a run's input, a sub-workflow step's child run, and a workflow's source as it was sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from boternity.compiler.limits import TRIGGER_INLINE_BYTES
from boternity.handlers.api import lambda_handler as api
from boternity.store.blobs import blob_store_from_env, read_ref
from boternity.store.run_records import RUN_INPUT_PREVIEW_BYTES
from tests.support.apigw import call, local_cloud, wait_for

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@pytest.fixture
def cloud(engine):
    with local_cloud(engine):
        yield engine


def deploy(doc: dict[str, Any] | str, name: str | None = None) -> dict[str, Any]:
    if isinstance(doc, str):
        r = call(api, "PUT", f"/workflows/{name}", body=doc, headers={"Content-Type": "application/yaml"})
    else:
        r = call(api, "PUT", f"/workflows/{doc['name']}", body=doc)
    assert r.status in (200, 201), r.text
    return r.json


def start(name: str, payload: Any = None) -> str:
    r = call(api, "POST", f"/workflows/{name}/runs", body=payload if payload is not None else {})
    assert r.status == 202, r.text
    return r.json["run_id"]


def finished(run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = call(api, "GET", f"/runs/{run_id}").json
        return body if body["run"]["status"] in FINAL else None

    return wait_for(done, timeout)


def gate(name: str) -> dict[str, Any]:
    return {"name": name, "steps": [{"id": "ok", "type": "approval", "config": {"prompt": "ship {{ trigger.n }}?"}}]}


def pending_ids(query: str = "") -> list[str]:
    r = call(api, "GET", "/approvals" + query)
    assert r.status == 200, r.text
    return [a["approval_id"] for a in r.json["approvals"]]


# ---------------------------------------------------------------------- approvals


def test_the_approvals_listing_pages_filters_and_never_shows_a_token(cloud):
    deploy(gate("gate-a"))
    deploy(gate("gate-b"))
    runs = [start("gate-a", {"n": 1}), start("gate-b", {"n": 2}), start("gate-a", {"n": 3})]
    wait_for(lambda: len(pending_ids()) == 3 or None, 30)

    listed = call(api, "GET", "/approvals?status=pending")
    assert listed.status == 200 and "token" not in listed.text.replace("next_token", "")
    assert [a["workflow"] for a in listed.json["approvals"]] == ["gate-a", "gate-a", "gate-b"]
    assert {a["run_id"] for a in listed.json["approvals"]} == set(runs)
    assert all(a["links"]["decision"].endswith(f"/approvals/{a['approval_id']}/decision")
               for a in listed.json["approvals"])
    assert len(pending_ids("?workflow=gate-b")) == 1

    first = call(api, "GET", "/approvals?workflow=gate-a&limit=1").json
    assert len(first["approvals"]) == 1 and first["next_token"]
    second = call(api, "GET", f"/approvals?workflow=gate-a&limit=1&next_token={first['next_token']}").json
    assert second["approvals"][0]["approval_id"] != first["approvals"][0]["approval_id"]
    other = call(api, "GET", f"/approvals?workflow=gate-b&next_token={first['next_token']}")
    assert other.status == 400 and other.json["error"]["code"] == "invalid_next_token"

    decided = first["approvals"][0]["approval_id"]
    assert call(api, "POST", f"/approvals/{decided}/decision", body={"approved": True}).status == 200
    assert decided not in pending_ids() and decided in pending_ids("?status=approved")
    cancelled_run = runs[1]
    assert call(api, "POST", f"/runs/{cancelled_run}/cancel").status == 200
    assert pending_ids("?workflow=gate-b") == [], "a cancelled run's approval is not pending"
    assert len(pending_ids("?status=CANCELLED")) == 1


@pytest.mark.parametrize(("query", "code"), [("?status=waiting", "invalid_request"),
                                             ("?workflow=a%23b", "invalid_request"),
                                             ("?limit=0", "invalid_request"),
                                             ("?next_token=%21%21", "invalid_next_token")])
def test_the_approvals_listing_refuses_bad_queries(cloud, query, code):
    r = call(api, "GET", "/approvals" + query)
    assert r.status in (400, 422) and r.json["error"]["code"] == code, r.text


# ---------------------------------------------------------------------- sub-workflow child runs

CHILD_OK = {"name": "kid", "steps": [{"id": "inner", "type": "wait", "config": {"seconds": 0}}]}
CHILD_FAILS = {"name": "kid-fails", "steps": [
    {"id": "boom", "type": "code", "config": {"language": "javascript", "source": "throw new Error('no')"}}]}


def parent(name: str, child: str, **step: Any) -> dict[str, Any]:
    return {"name": name, "steps": [{"id": "call", "type": "sub_workflow", **step,
                                     "config": {"workflow_name": child, "input": {"x": 1}}}]}


def call_step(run_id: str) -> dict[str, Any]:
    return next(s for s in finished(run_id)["steps"] if s["step_id"] == "call")


@pytest.mark.parametrize(("child", "extra", "status"), [
    (CHILD_OK, {}, "completed"),
    (CHILD_FAILS, {}, "failed"),
    (CHILD_FAILS, {"continue_on_error": True}, "failed"),
], ids=["succeeded", "failed", "failed-and-continued"])
def test_a_sub_workflow_step_record_names_its_child_run(cloud, child, extra, status):
    deploy(child)
    deploy(parent("mom", child["name"], **extra))
    step = call_step(start("mom"))
    assert step["status"] == status, step
    [kid] = call(api, "GET", f"/workflows/{child['name']}/runs").json["runs"]
    assert step["child_run_id"] == kid["run_id"]
    assert step["child_execution_arn"] == kid["execution_arn"]


def test_a_running_sub_workflow_step_names_its_child_while_the_child_runs(cloud):
    deploy({"name": "slow-kid", "steps": [{"id": "nap", "type": "wait", "config": {"seconds": 3}}]})
    deploy(parent("mom", "slow-kid"))
    run_id = start("mom")

    def running_step() -> dict[str, Any] | None:
        steps = call(api, "GET", f"/runs/{run_id}").json["steps"]
        step = next((s for s in steps if s["step_id"] == "call"), None)
        return step if step and step["status"] == "running" and step.get("child_run_id") else None

    step = wait_for(running_step, 20)
    kid = call(api, "GET", f"/runs/{step['child_run_id']}").json["run"]
    assert (kid["workflow"], kid["status"]) == ("slow-kid", "RUNNING"), "named while the child runs"
    assert kid["execution_arn"] == step["child_execution_arn"]
    assert call_step(run_id)["child_run_id"] == step["child_run_id"], "its end names the same child"


# ---------------------------------------------------------------------- the workflow as written

WRITTEN = """\
# Ship a post: comments, key order and quoting as the author wrote them.
name: written
description: 'as written'
steps:
  - id: nap          # a short pause
    config: {seconds: 0}
    type: wait
"""


def test_get_returns_the_workflow_as_written_and_the_listing_only_summaries(cloud):
    put = deploy(WRITTEN, name="written")
    assert put.get("source") is None, "a PUT's answer does not echo its body"
    got = call(api, "GET", "/workflows/written").json
    assert got["source"] == WRITTEN and got["source_format"] == "yaml"
    assert got["definition"]["steps"][0]["id"] == "nap"
    listed = call(api, "GET", "/workflows").json["workflows"]
    assert [w["name"] for w in listed] == ["written"] and "source" not in listed[0]


def test_a_json_workflow_comes_back_as_the_json_sent(cloud):
    text = '{"steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}'
    r = call(api, "PUT", "/workflows/plain", body=text.encode())
    assert r.status == 201, r.text
    got = call(api, "GET", "/workflows/plain").json
    assert (got["source"], got["source_format"]) == (text, "json")


# ---------------------------------------------------------------------- the run's input

QUICK = {"name": "quick", "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}


def test_a_run_shows_the_input_it_started_with_and_the_listing_leaves_it_out(cloud):
    deploy(QUICK)
    payload = {"title": "<script>alert(1)</script>", "n": [1, 2.5, None], "ünï": "cödé"}
    run = finished(start("quick", payload))["run"]
    assert run["input"] == payload
    assert run["input_size"] == len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    assert run["input_preview"] is None
    [listed] = call(api, "GET", "/workflows/quick/runs").json["runs"]
    assert not {"input", "input_preview", "input_size"} & set(listed), "a listing carries no inputs"


def test_a_large_input_is_a_reference_to_the_claim_checked_copy_and_a_preview(cloud):
    deploy(QUICK)
    payload = {"text": "é" + "x" * 40_000}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    run = finished(start("quick", payload))["run"]
    assert run["input_size"] == len(text.encode()) > TRIGGER_INLINE_BYTES
    assert text.startswith(run["input_preview"]) and len(run["input_preview"].encode()) <= RUN_INPUT_PREVIEW_BYTES
    ref = run["input"]
    assert set(ref) == {"$ref", "size"} and ref["size"] == len(text.encode())
    # The reference is the copy the execution started from: it resolves to the payload.
    assert json.loads(read_ref(blob_store_from_env(), ref)) == payload


def test_a_queued_run_shows_its_input_before_it_starts(cloud):
    deploy({**QUICK, "name": "one-at-a-time", "concurrency": 1,
            "steps": [{"id": "a", "type": "wait", "config": {"seconds": 3}}]})
    first = start("one-at-a-time", {"first": True})
    second = start("one-at-a-time", {"second": True})
    queued = call(api, "GET", f"/runs/{second}").json["run"]
    assert (queued["status"], queued["input"]) == ("QUEUED", {"second": True})
    call(api, "POST", f"/runs/{first}/cancel")
    call(api, "POST", f"/runs/{second}/cancel")


def test_a_child_run_shows_the_input_its_parent_gave_it(cloud):
    deploy(CHILD_OK)
    deploy(parent("mom", "kid"))
    step = call_step(start("mom"))
    assert finished(step["child_run_id"])["run"]["input"] == {"x": 1}


@pytest.mark.parametrize(("run", "line"), [
    ({"input": {"who": "ada"}, "input_size": 13}, '  input: {"who":"ada"}'),
    ({"input": {"t": "x" * 300}, "input_size": 310}, '  input: {"t":"' + "x" * 194 + "… (310 bytes)"),
    ({"input": {"$ref": "blob:" + "0" * 64, "size": 40_000}, "input_preview": '{"big":"yy', "input_size": 40_000},
     '  input: {"big":"yy… (40,000 bytes)'),
    ({"input": None, "input_size": 4}, "  input: null"),
    ({"input": {"t": "\x1b[2J"}, "input_size": 15}, '  input: {"t":"\\u001b[2J"}'),
], ids=["small", "long", "claim-checked", "null", "terminal-escape"])
def test_boternity_logs_prints_the_runs_input_on_one_line(monkeypatch, capsys, run, line):
    from boternity.cli import client
    from boternity.cli.main import main

    detail = {"run": {"run_id": "r1", "workflow": "w", "status": "SUCCEEDED", **run}, "steps": []}
    monkeypatch.setattr(client.Client, "request", lambda self, method, path, **kw: detail)
    assert main(["logs", "r1", "--api", "http://127.0.0.1:9"]) == 0
    assert line in capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------------- the OpenAPI document


def test_the_openapi_document_describes_the_new_fields_and_the_listing(cloud):
    doc = call(api, "GET", "/openapi.json").json
    listing = doc["paths"]["/approvals"]["get"]
    assert listing["operationId"] == "listApprovals" and "security" not in listing, "IAM, like the other routes"
    assert {p["name"] for p in listing["parameters"]} == {"status", "workflow", "limit", "next_token"}
    schemas = doc["components"]["schemas"]
    assert {"approvals", "next_token"} <= set(schemas["ApprovalList"]["properties"])
    assert {"input", "input_preview", "input_size"} <= set(schemas["RunView"]["properties"])
    assert {"child_run_id", "child_execution_arn"} <= set(schemas["StepView"]["properties"])
    assert "source" in schemas["WorkflowView"]["properties"]
