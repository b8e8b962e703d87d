"""The api function, driven with API Gateway REST proxy events on moto: every route, every error
status, and whole runs started over HTTPS that really execute in moto's Step Functions."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from boternity.handlers.api import lambda_handler as api
from tests.support.apigw import USER_ARN, call, local_cloud, wait_for

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@pytest.fixture
def cloud(engine):
    with local_cloud(engine):
        yield engine


def wf(name: str, *steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra, "steps": list(steps) or [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}


def deploy(doc: dict[str, Any]) -> dict[str, Any]:
    r = call(api, "PUT", f"/workflows/{doc['name']}", body=doc)
    assert r.status in (200, 201), r.text
    return r.json


def start(name: str, payload: Any = None, **kw: Any) -> dict[str, Any]:
    r = call(api, "POST", f"/workflows/{name}/runs", body=payload if payload is not None else {}, **kw)
    assert r.status == 202, r.text
    return r.json


def finished(run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """GET /runs/<id> until the run's record is final."""
    def done() -> dict[str, Any] | None:
        body = call(api, "GET", f"/runs/{run_id}").json
        return body if body["run"]["status"] in FINAL else None

    return wait_for(done, timeout)


# ---------------------------------------------------------------------- workflows


def test_put_creates_then_updates_the_state_machine(cloud):
    r = call(api, "PUT", "/workflows/hello", body=wf("hello", description="first"))
    assert r.status == 201, r.text
    body = r.json
    assert body["created"] is True and body["version"] == 1
    arn = body["state_machine_arn"]
    assert arn.endswith(":stateMachine:boternity-hello")
    first = json.loads(cloud.sfn.describe_state_machine(stateMachineArn=arn)["definition"])

    yaml_text = "description: second\nsteps:\n  - {id: a, type: wait, config: {seconds: 0}}\n" \
                "  - {id: b, type: wait, depends_on: [a], config: {seconds: 0}}\n"
    r = call(api, "PUT", "/workflows/hello", body=yaml_text, headers={"Content-Type": "application/yaml"})
    assert r.status == 200, r.text
    assert r.json["created"] is False and r.json["version"] == 2 and r.json["source_format"] == "yaml"
    assert r.json["definition"]["name"] == "hello"   # filled from the path
    second = json.loads(cloud.sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    assert "b" in second["States"] and "b" not in first["States"]


def test_invalid_workflow_is_400_with_every_error(cloud):
    doc = {"name": "bad", "steps": [
        {"id": "a", "type": "wait", "depends_on": ["ghost"], "config": {"seconds": 0}},
        {"id": "b", "type": "agent", "config": {"bot": "x"}},
        {"id": "c", "type": "wait", "config": {"seconds": 0}, "colour": "red"},
    ]}
    r = call(api, "PUT", "/workflows/bad", body=doc)
    assert r.status == 400
    err = r.error
    assert err["code"] == "validation_failed"
    codes = {d["code"] for d in err["details"]}
    assert {"missing_field", "unknown_field"} <= codes, err["details"]
    assert all({"code", "message", "line", "step_id", "field"} <= set(d) for d in err["details"])
    yaml_bad = "name: bad\nsteps:\n  - {id: a, type: wait, depends_on: [a], config: {seconds: 0}}\n"
    r = call(api, "PUT", "/workflows/bad", body=yaml_bad, headers={"Content-Type": "text/yaml"})
    assert r.status == 400 and r.error["details"][0]["line"] == 3
    assert call(api, "GET", "/workflows/bad").status == 404   # nothing was registered


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    ('{"name": "x", "steps": [', {"Content-Type": "application/json"}, 400, "invalid_json"),
    ("", {"Content-Type": "application/json"}, 400, "empty_body"),
    ("name: x", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ("steps: [: :", {"Content-Type": "application/yaml"}, 400, "validation_failed"),
    ('["a", "list"]', {"Content-Type": "application/json"}, 400, "validation_failed"),
    ("x" * (256 * 1024 + 1), {"Content-Type": "application/yaml"}, 413, "payload_too_large"),
])
def test_put_body_errors(cloud, body, headers, status, code):
    r = call(api, "PUT", "/workflows/x", body=body, headers=headers)
    assert r.status == status, r.text
    assert r.error["code"] == code


def test_binary_garbage_is_a_400_not_a_500(cloud):
    r = call(api, "PUT", "/workflows/x", body=b"\xff\xfe\x00junk", binary=True,
             headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error["code"] == "invalid_encoding"


def test_path_and_body_names_must_agree(cloud):
    r = call(api, "PUT", "/workflows/one", body=wf("two"))
    assert r.status == 400
    assert r.error["details"][0]["code"] == "name_mismatch"


def test_a_workflow_beyond_the_history_limit_is_422(cloud):
    body = [{"id": f"b{i}", "type": "wait", "config": {"seconds": 0}} for i in range(10)]
    loop = {"id": "l", "type": "loop", "config": {"condition": "true", "max_iterations": 1000,
                                                 "body_steps": [b["id"] for b in body]}}
    r = call(api, "PUT", "/workflows/huge", body=wf("huge", loop, *body))
    assert r.status == 422
    assert r.error["code"] == "compile" and r.error["details"]["limit"] == "history_events"


def test_list_get_and_delete(cloud):
    for n in ("alpha", "beta", "gamma"):
        deploy(wf(n, description=f"the {n} one"))
    r = call(api, "GET", "/workflows")
    assert r.status == 200
    assert [w["name"] for w in r.json["workflows"]] == ["alpha", "beta", "gamma"]
    page = call(api, "GET", "/workflows?limit=2").json
    assert len(page["workflows"]) == 2 and page["next_token"]
    rest = call(api, "GET", "/workflows", query={"limit": "2", "next_token": page["next_token"]}).json
    assert [w["name"] for w in rest["workflows"]] == ["gamma"]

    got = call(api, "GET", "/workflows/beta")
    assert got.status == 200
    assert got.json["definition"] == wf("beta", description="the beta one")
    assert got.json["state_machine_arn"].endswith(":boternity-beta")

    run = start("beta")
    cloud.wait(run["run_id"], cloud.sfn.list_executions(
        stateMachineArn=got.json["state_machine_arn"])["executions"][0]["executionArn"], timeout=20)
    r = call(api, "DELETE", "/workflows/beta")
    assert r.status == 200 and r.json == {"name": "beta", "deleted": True, "aborted_queued_runs": 0}
    with pytest.raises(cloud.sfn.exceptions.StateMachineDoesNotExist):
        cloud.sfn.describe_state_machine(stateMachineArn=got.json["state_machine_arn"])
    assert call(api, "GET", "/workflows/beta").error["code"] == "not_found"
    assert call(api, "DELETE", "/workflows/beta").status == 404
    # Past runs stay readable.
    assert call(api, "GET", f"/runs/{run['run_id']}").json["run"]["status"] == "SUCCEEDED"
    assert len(call(api, "GET", "/workflows/beta/runs").json["runs"]) == 1
    assert call(api, "GET", "/workflows/never/runs").status == 404


# ---------------------------------------------------------------------- runs


def test_end_to_end_a_run_with_waits_and_a_conditional(cloud):
    doc = wf("orders",
             {"id": "settle", "type": "wait", "config": {"seconds": 1}},
             {"id": "route", "type": "conditional", "depends_on": ["settle"],
              "config": {"condition": "trigger.amount > 10", "then_steps": ["large"], "else_steps": ["small"]}},
             {"id": "large", "type": "wait", "depends_on": ["route"], "config": {"seconds": 0}},
             {"id": "small", "type": "wait", "depends_on": ["route"], "config": {"seconds": 0}},
             {"id": "done", "type": "wait", "depends_on": ["large", "small"], "config": {"seconds": 0}})
    assert deploy(doc)["created"] is True
    accepted = start("orders", {"amount": 42})
    assert accepted["status"] == "RUNNING" and accepted["workflow"] == "orders"
    assert accepted["links"]["self"].endswith(f"/prod/runs/{accepted['run_id']}")
    assert accepted["links"]["console"].startswith("https://us-east-1.console.aws.amazon.com/states/")

    body = finished(accepted["run_id"])
    run, steps = body["run"], {s["step_id"]: s for s in body["steps"]}
    assert run["status"] == "SUCCEEDED", run
    assert run["trigger_type"] == "http" and run["trigger"]["caller"] == USER_ARN
    assert run["started_at"] and run["ended_at"] and run["execution_arn"].endswith(accepted["run_id"])
    assert steps["route"]["status"] == "completed" and steps["route"]["output"]["condition_met"] is True
    assert steps["large"]["status"] == "completed" and steps["small"]["status"] == "skipped"
    assert steps["done"]["status"] == "completed" and steps["settle"]["step_type"] == "wait"
    assert all(s["started_at"] or s["status"] == "skipped" for s in steps.values())
    assert run["output"]["large"]["status"] == "completed"
    execution = cloud.sfn.describe_execution(executionArn=run["execution_arn"])
    assert json.loads(execution["input"]) == {"amount": 42}


def test_idempotency_key_returns_the_same_run(cloud):
    deploy(wf("idem"))
    first = start("idem", {"n": 1}, headers={"Idempotency-Key": "order-7"})
    again = start("idem", {"n": 1}, headers={"Idempotency-Key": "order-7"})
    assert again["run_id"] == first["run_id"] and again["replayed"] is True and first["replayed"] is False
    other = start("idem", {"n": 1}, headers={"Idempotency-Key": "order-8"})
    assert other["run_id"] != first["run_id"]
    r = call(api, "POST", "/workflows/idem/runs", body={"n": 2}, headers={"Idempotency-Key": "order-7"})
    assert r.status == 422 and r.error["code"] == "idempotency_key_reused"
    arn = deploy(wf("idem"))["state_machine_arn"]
    assert len(cloud.sfn.list_executions(stateMachineArn=arn)["executions"]) == 2


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    ("{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
    ("a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    ('{"blob": "' + "x" * (256 * 1024) + '"}', {"Content-Type": "application/json"}, 413, "payload_too_large"),
])
def test_start_run_body_errors(cloud, body, headers, status, code):
    deploy(wf("strict"))
    r = call(api, "POST", "/workflows/strict/runs", body=body, headers=headers)
    assert r.status == status, r.text
    assert r.error["code"] == code


def test_start_run_of_an_unknown_workflow_is_404(cloud):
    r = call(api, "POST", "/workflows/ghost/runs", body={})
    assert r.status == 404 and "not registered" in r.error["message"]


def test_an_empty_body_is_an_empty_payload(cloud):
    deploy(wf("empty"))
    r = call(api, "POST", "/workflows/empty/runs")
    assert r.status == 202
    assert finished(r.json["run_id"])["run"]["status"] == "SUCCEEDED"


def test_concurrency_reject_answers_429(cloud):
    deploy(wf("solo", {"id": "nap", "type": "wait", "config": {"seconds": 30}}, concurrency=1, on_limit="reject"))
    first = start("solo")
    r = call(api, "POST", "/workflows/solo/runs", body={})
    assert r.status == 429, r.text
    assert r.error["code"] == "concurrency_limit" and r.error["details"] == {"limit": 1}
    call(api, "POST", f"/runs/{first['run_id']}/cancel")   # frees the slot
    second = start("solo")
    assert second["status"] == "RUNNING"
    call(api, "POST", f"/runs/{second['run_id']}/cancel")


def test_concurrency_queue_starts_the_next_run_when_a_slot_frees(cloud):
    # 4 s, not 1: the two starts after the first must land while it still runs, also on a loaded machine.
    deploy(wf("line", {"id": "nap", "type": "wait", "config": {"seconds": 4}}, concurrency=1))
    first = start("line", {"n": 1})
    second = start("line", {"n": 2})
    third = start("line", {"n": 3})
    assert first["status"] == "RUNNING"
    assert second["status"] == "QUEUED" and third["status"] == "QUEUED"
    assert call(api, "GET", f"/runs/{second['run_id']}").json["run"]["status"] == "QUEUED"
    queued = call(api, "GET", "/workflows/line/runs?status=queued").json["runs"]
    assert {r["run_id"] for r in queued} == {second["run_id"], third["run_id"]}
    # Cancelling a queued run takes it out of the line without running it.
    r = call(api, "POST", f"/runs/{third['run_id']}/cancel")
    assert r.status == 200 and r.json["status"] == "ABORTED"
    assert finished(first["run_id"])["run"]["status"] == "SUCCEEDED"
    done = finished(second["run_id"])
    assert done["run"]["status"] == "SUCCEEDED"
    execution = cloud.sfn.describe_execution(executionArn=done["run"]["execution_arn"])
    assert json.loads(execution["input"]) == {"n": 2}
    assert done["run"]["started_at"] >= done["run"]["queued_at"]
    assert call(api, "GET", f"/runs/{third['run_id']}").json["run"]["status"] == "ABORTED"
    # Every slot came back: the counter is at zero.
    item = boto3.resource("dynamodb").Table("boternity").get_item(Key={"pk": "CONC#line", "sk": "CONC"})["Item"]
    wait_for(lambda: boto3.resource("dynamodb").Table("boternity").get_item(
        Key={"pk": "CONC#line", "sk": "CONC"})["Item"]["running"] == 0)
    assert "workflow" in item


def test_raising_the_limit_starts_queued_runs_at_once(cloud):
    doc = wf("grow", {"id": "nap", "type": "wait", "config": {"seconds": 30}}, concurrency=1)
    deploy(doc)
    first = start("grow")
    second = start("grow")
    assert second["status"] == "QUEUED"
    deploy({**doc, "concurrency": 2})
    assert call(api, "GET", f"/runs/{second['run_id']}").json["run"]["status"] == "RUNNING"
    for run in (first, second):
        call(api, "POST", f"/runs/{run['run_id']}/cancel")


def test_slots_are_released_once_per_run(cloud):
    from boternity.service.runs import release_slot

    deploy(wf("once", concurrency=2))
    run = start("once")
    finished(run["run_id"])
    wait_for(lambda: boto3.resource("dynamodb").Table("boternity").get_item(
        Key={"pk": "CONC#once", "sk": "CONC"})["Item"]["running"] == 0)
    assert release_slot("boternity", "once", run["run_id"]) is False


def test_list_runs_filters_and_pages(cloud):
    deploy(wf("many", {"id": "nap", "type": "wait", "config": {"seconds": 0}}))
    ids = [start("many", {"i": i})["run_id"] for i in range(5)]
    for rid in ids:
        finished(rid)
    seen: list[str] = []
    token = None
    while True:
        q = {"limit": "2", **({"next_token": token} if token else {})}
        page = call(api, "GET", "/workflows/many/runs", query=q).json
        seen += [r["run_id"] for r in page["runs"]]
        token = page["next_token"]
        if not token:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    starts = [r["started_at"] for r in call(api, "GET", "/workflows/many/runs").json["runs"]]
    assert starts == sorted(starts, reverse=True)   # newest first
    assert len(call(api, "GET", "/workflows/many/runs?status=SUCCEEDED&limit=3").json["runs"]) == 3
    assert call(api, "GET", "/workflows/many/runs?status=failed").json["runs"] == []


@pytest.mark.parametrize(("query", "status", "code"), [
    ("limit=0", 422, "invalid_request"),
    ("limit=many", 422, "invalid_request"),
    ("status=sleeping", 422, "invalid_request"),
    ("next_token=%21%21not-a-token", 400, "invalid_next_token"),
])
def test_list_runs_query_errors(cloud, query, status, code):
    deploy(wf("q"))
    r = call(api, "GET", f"/workflows/q/runs?{query}")
    assert r.status == status, r.text
    assert r.error["code"] == code
    if status == 422:   # Powertools' own validation error, reshaped into ours
        assert r.error["details"][0]["loc"][0] == "query"


def test_a_page_token_of_another_workflow_is_refused(cloud):
    deploy(wf("p1"))
    deploy(wf("p2"))
    for _ in range(3):
        finished(start("p1")["run_id"])
    token = call(api, "GET", "/workflows/p1/runs?limit=1").json["next_token"]
    r = call(api, "GET", "/workflows/p2/runs", query={"next_token": token})
    assert r.status == 400 and r.error["code"] == "invalid_next_token"


def test_get_unknown_run_is_404(cloud):
    r = call(api, "GET", "/runs/nope")
    assert r.status == 404 and r.error["code"] == "not_found"


def test_cancel_stops_the_run_and_its_pending_approvals(cloud):
    deploy(wf("gate", {"id": "ok", "type": "approval", "config": {"prompt": "ship it?"}}))
    run = start("gate")
    rid = run["run_id"]
    approval_id = wait_for(lambda: _pending_approval(rid))
    r = call(api, "POST", f"/runs/{rid}/cancel", body={})
    assert r.status == 200, r.text
    assert r.json == {"run_id": rid, "status": "ABORTED", "cancelled_approvals": 1}
    body = finished(rid)
    assert body["run"]["status"] == "ABORTED" and body["run"]["error"] == "Boternity.Cancelled"
    assert USER_ARN in body["run"]["cause"]
    d = cloud.sfn.describe_execution(executionArn=body["run"]["execution_arn"])
    wait_for(lambda: cloud.sfn.describe_execution(executionArn=d["executionArn"])["status"] == "ABORTED")
    assert call(api, "GET", f"/approvals/{approval_id}").json["status"] == "CANCELLED"
    review = {s["step_id"]: s for s in body["steps"]}["ok"]
    assert review["status"] == "aborted", "no step record stays waiting_approval after a cancel"
    again = call(api, "POST", f"/runs/{rid}/cancel", body={})
    assert again.status == 409 and again.error["code"] == "already_cancelled"
    assert again.error["details"]["status"] == "ABORTED"
    assert call(api, "POST", "/runs/nope/cancel", body={}).status == 404


# ---------------------------------------------------------------------- redrive


class _Flaky:
    """A loopback HTTP server: /a always answers 200; /b answers 500 until ``healthy`` is set."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.healthy = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                ok = self.path == "/a" or outer.healthy.is_set()
                data = json.dumps({"ok": ok}).encode()
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky():
    f = _Flaky()
    yield f
    f.close()


def _flaky_wf(url: str) -> dict[str, Any]:
    return wf("flaky",
              {"id": "first", "type": "http", "config": {"url": url + "/a"}},
              {"id": "second", "type": "http", "depends_on": ["first"], "retry": {"max_attempts": 1},
               "config": {"url": url + "/b"}},
              allow_private_network=True)


def test_redrive_resumes_the_same_execution_from_the_failed_step(cloud, flaky):
    deploy(_flaky_wf(flaky.url))
    rid = start("flaky")["run_id"]
    failed = finished(rid)
    assert failed["run"]["status"] == "FAILED"
    assert {s["step_id"]: s["status"] for s in failed["steps"]} == {"first": "completed", "second": "failed"}
    flaky.healthy.set()
    r = call(api, "POST", f"/runs/{rid}/redrive")
    assert r.status == 202, r.text
    assert r.json["status"] == "RUNNING" and r.json["redrive_count"] == 1 and r.json["redrive_date"]
    assert r.json["links"]["self"].endswith(f"/runs/{rid}")
    body = finished(rid)
    assert body["run"]["status"] == "SUCCEEDED", body["run"]
    assert body["run"]["redrive_count"] == 1 and not body["run"].get("error")
    assert flaky.hits["/a"] == 1, "the step before the failure must not run again"
    assert flaky.hits["/b"] == 2
    assert {s["step_id"]: s["status"] for s in body["steps"]} == {"first": "completed", "second": "completed"}
    # The same execution (ARN) resumed, as in AWS: no second execution exists.
    arn = call(api, "GET", "/workflows/flaky").json["state_machine_arn"]
    assert len(cloud.sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    again = call(api, "POST", f"/runs/{rid}/redrive")
    assert again.status == 409 and again.error["code"] == "not_redrivable"


def test_redrive_without_redrive_execution_is_501_and_changes_nothing(cloud, flaky, monkeypatch):
    from moto.stepfunctions.responses import StepFunctionResponse

    deploy(_flaky_wf(flaky.url))
    rid = start("flaky")["run_id"]
    before = finished(rid)["run"]
    monkeypatch.delattr(StepFunctionResponse, "redrive_execution")   # plain moto: NotImplementedError
    r = call(api, "POST", f"/runs/{rid}/redrive")
    assert r.status == 501, r.text
    assert r.error["code"] == "redrive_unavailable" and "moto" in r.error["message"]
    after = call(api, "GET", f"/runs/{rid}").json["run"]
    assert after["status"] == "FAILED" and after["ended_at"] == before["ended_at"]
    assert after["error"] == before["error"] and not after.get("redrive_count")


def test_redrive_of_unknown_or_running_runs(cloud):
    assert call(api, "POST", "/runs/nope/redrive").status == 404
    deploy(wf("slow", {"id": "nap", "type": "wait", "config": {"seconds": 30}}))
    rid = start("slow")["run_id"]
    r = call(api, "POST", f"/runs/{rid}/redrive")
    assert r.status == 409 and "RUNNING" in r.error["message"]
    call(api, "POST", f"/runs/{rid}/cancel")


# ---------------------------------------------------------------------- approvals


def _pending_approval(run_id: str) -> str | None:
    for s in call(api, "GET", f"/runs/{run_id}").json["steps"]:
        if s.get("status") == "waiting_approval" and isinstance(s.get("output"), dict):
            return s["output"].get("approval_id")
    return None


def _approval_wf() -> dict[str, Any]:
    return wf("review",
              {"id": "review", "type": "approval", "config": {"prompt": "Publish <b>{{ trigger.title }}</b>?"}},
              {"id": "publish", "type": "wait", "depends_on": ["review"], "condition": "steps.review.output.approved",
               "config": {"seconds": 0}})


def test_approval_json_html_and_a_decision_that_resumes_the_run(cloud):
    deploy(_approval_wf())
    rid = start("review", {"title": "Q3 & more"})["run_id"]
    aid = wait_for(lambda: _pending_approval(rid))

    r = call(api, "GET", f"/approvals/{aid}", headers={"Accept": "application/json"})
    assert r.status == 200
    assert r.json["status"] == "PENDING" and r.json["prompt"] == "Publish <b>Q3 & more</b>?"
    assert "token" not in r.text and r.json["links"]["decision"].endswith(f"/approvals/{aid}/decision")

    page = call(api, "GET", f"/approvals/{aid}", headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"})
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Publish &lt;b&gt;Q3 &amp; more&lt;/b&gt;?" in page.text    # escaped, never markup
    assert 'method="post"' in page.text and f'action="{aid}/decision"' in page.text
    assert ">Approve</button>" in page.text and ">Reject</button>" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    # Looking never decides.
    assert call(api, "GET", f"/approvals/{aid}").json["status"] == "PENDING"

    r = call(api, "POST", f"/approvals/{aid}/decision", body={"approved": True, "comment": "ship it"})
    assert r.status == 200, r.text
    assert r.json["status"] == "APPROVED" and r.json["approver"] == USER_ARN and r.json["comment"] == "ship it"
    body = finished(rid)
    assert body["run"]["status"] == "SUCCEEDED"
    steps = {s["step_id"]: s for s in body["steps"]}
    assert steps["review"]["output"]["approved"] is True and steps["publish"]["status"] == "completed"

    second = call(api, "POST", f"/approvals/{aid}/decision", body={"approved": False})
    assert second.status == 409 and "already decided" in second.error["message"]
    decided = call(api, "GET", f"/approvals/{aid}", headers={"Accept": "text/html"})
    assert "<form" not in decided.text and "approved" in decided.text


def test_the_approval_page_form_decides_with_its_csrf_token(cloud):
    import re

    deploy(_approval_wf())
    rid = start("review", {"title": "x"})["run_id"]
    aid = wait_for(lambda: _pending_approval(rid))
    form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
    # A cross-site form (no token, or a wrong one) is refused.
    assert call(api, "POST", f"/approvals/{aid}/decision", body="approved=true", headers=form).status == 403
    bad = call(api, "POST", f"/approvals/{aid}/decision", body="approved=true&csrf=forged", headers=form)
    assert bad.status == 403 and bad.error["code"] == "csrf_failed"
    page = call(api, "GET", f"/approvals/{aid}", headers={"Accept": "text/html"}).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    r = call(api, "POST", f"/approvals/{aid}/decision", body=f"csrf={csrf}&comment=&approved=false", headers=form)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "rejected" in r.text
    body = finished(rid)
    steps = {s["step_id"]: s for s in body["steps"]}
    assert steps["review"]["output"]["approved"] is False and steps["publish"]["status"] == "skipped"


def test_an_approval_link_opens_the_page_and_decides_without_aws_credentials(cloud):
    import re

    from boternity.service.approval_page import link_key
    from boternity.store.dynamo import resource as dynamodb

    deploy(_approval_wf())
    rid = start("review", {"title": "Q4"})["run_id"]
    aid = wait_for(lambda: _pending_approval(rid))
    token = dynamodb().Table("boternity").get_item(Key={"pk": f"APPROVAL#{aid}", "sk": "APPROVAL"})["Item"]["token"]
    key = link_key(token, aid)
    anonymous = {"identity": {"sourceIp": "203.0.113.9"}}   # no IAM caller: the route is open

    # A wrong or missing key looks exactly like an unknown approval.
    for bad in ("", "0" * 40, key[:-1] + ("0" if key[-1] != "0" else "1")):
        r = call(api, "GET", f"/approve/{aid}", query={"k": bad}, **anonymous)
        assert r.status == 404 and r.error["code"] == "not_found", bad
    assert call(api, "GET", f"/approve/{'x' * 22}", query={"k": key}, **anonymous).status == 404

    page = call(api, "GET", f"/approve/{aid}", query={"k": key}, **anonymous)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert f'action="{aid}"' in page.text and f'name="k" value="{key}"' in page.text
    assert token not in page.text
    assert call(api, "GET", f"/approvals/{aid}").json["status"] == "PENDING", "looking never decides"
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)

    form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
    no_csrf = call(api, "POST", f"/approve/{aid}", body=f"k={key}&approved=true", headers=form, **anonymous)
    assert no_csrf.status == 403 and no_csrf.error["code"] == "csrf_failed"
    wrong_key = call(api, "POST", f"/approve/{aid}", body=f"k=nope&csrf={csrf}&approved=true", headers=form,
                     **anonymous)
    assert wrong_key.status == 404
    json_body = call(api, "POST", f"/approve/{aid}", body={"k": key, "csrf": csrf, "approved": True}, **anonymous)
    assert json_body.status == 415

    r = call(api, "POST", f"/approve/{aid}", body=f"k={key}&csrf={csrf}&comment=lgtm&approved=true", headers=form,
             **anonymous)
    assert r.status == 200 and "approved" in r.text
    body = finished(rid)
    review = {s["step_id"]: s for s in body["steps"]}["review"]["output"]
    assert review["approved"] is True and review["approver"] == "approval link" and review["feedback"] == "lgtm"
    again = call(api, "POST", f"/approve/{aid}", body=f"k={key}&csrf={csrf}&approved=false", headers=form, **anonymous)
    assert again.status == 409


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    ({"approved": "maybe"}, None, 422, "invalid_request"),
    ({"comment": "no verdict"}, None, 422, "invalid_request"),
    ({"approved": True, "extra": 1}, None, 422, "invalid_request"),
    ("{oops", {"Content-Type": "application/json"}, 400, "invalid_json"),
    ("approved", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
])
def test_decision_body_errors(cloud, body, headers, status, code):
    r = call(api, "POST", "/approvals/whatever/decision", body=body, headers=headers)
    assert r.status == status, r.text
    assert r.error["code"] == code


def test_a_decision_after_the_deadline_is_409(cloud):
    doc = _approval_wf()
    doc["steps"][0]["config"]["timeout_secs"] = 1
    deploy(doc)
    rid = start("review", {"title": "late"})["run_id"]
    aid = wait_for(lambda: _pending_approval(rid))
    body = finished(rid)   # the approval timed out: rejected, the run went on
    assert body["run"]["status"] == "SUCCEEDED"
    r = call(api, "POST", f"/approvals/{aid}/decision", body={"approved": True})
    assert r.status == 409 and r.error["code"] == "approval_expired" and "expired" in r.error["message"]


def test_unknown_approval_is_404(cloud):
    assert call(api, "GET", "/approvals/nope").status == 404
    r = call(api, "POST", "/approvals/nope/decision", body={"approved": True})
    assert r.status == 404 and r.error["code"] == "not_found"


# ---------------------------------------------------------------------- the API itself


def test_openapi_lists_every_route(cloud):
    r = call(api, "GET", "/openapi.json")
    assert r.status == 200
    doc = r.json
    routes = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == {
        ("PUT", "/workflows/{name}"), ("GET", "/workflows"), ("GET", "/workflows/{name}"),
        ("DELETE", "/workflows/{name}"), ("POST", "/workflows/{name}/runs"), ("GET", "/workflows/{name}/runs"),
        ("GET", "/runs/{run_id}"), ("POST", "/runs/{run_id}/cancel"), ("POST", "/runs/{run_id}/redrive"),
        ("GET", "/approvals"), ("GET", "/approvals/{approval_id}"), ("POST", "/approvals/{approval_id}/decision"),
        ("GET", "/approve/{approval_id}"), ("POST", "/approve/{approval_id}"),
    }
    start_op = doc["paths"]["/workflows/{name}/runs"]["post"]
    assert "202" in start_op["responses"] and "429" in start_op["responses"]
    assert any(p["name"].lower() == "idempotency-key" for p in start_op["parameters"])
    assert "RunAccepted" in doc["components"]["schemas"] and "ErrorResponse" in doc["components"]["schemas"]


def test_openapi_declares_sigv4_and_the_url_it_was_fetched_through(cloud, monkeypatch):
    monkeypatch.delenv("BOTERNITY_API_BASE_URL", raising=False)
    monkeypatch.delenv("BOTERNITY_APPROVAL_BASE_URL", raising=False)
    doc = call(api, "GET", "/openapi.json", stage="dev").json
    assert doc["servers"] == [{"url": "https://abc123.execute-api.us-east-1.amazonaws.com/dev"}]
    assert doc["components"]["securitySchemes"]["sigv4"] == {
        "type": "apiKey", "in": "header", "name": "Authorization", "x-amazon-apigateway-authtype": "awsSigv4",
        "description": doc["components"]["securitySchemes"]["sigv4"]["description"]}
    assert doc["security"] == [{"sigv4": []}]
    no_iam = {(m, p) for p, ops in doc["paths"].items() for m, op in ops.items() if op.get("security") == []}
    assert no_iam == {("get", "/approve/{approval_id}"), ("post", "/approve/{approval_id}")}, \
        "only the approval-link routes go without IAM: the link's key is their credential"
    custom = call(api, "GET", "/openapi.json", domain="api.example.com").json
    assert custom["servers"] == [{"url": "https://api.example.com"}], "a custom domain maps its own base path"


def test_unknown_routes_are_404_in_the_error_shape(cloud):
    r = call(api, "GET", "/nowhere")
    assert r.status == 404 and r.error["code"] == "not_found"
    r = call(api, "PATCH", "/workflows/x")
    assert r.status == 404


def test_misconfiguration_is_a_clear_500(cloud, monkeypatch):
    monkeypatch.setenv("BOTERNITY_FUNCTION_ARNS", "not json")
    r = call(api, "PUT", "/workflows/x", body=wf("x"))
    assert r.status == 500 and r.error["code"] == "misconfigured" and "BOTERNITY_FUNCTION_ARNS" in r.error["message"]
    assert "Traceback" not in r.text


def test_a_cancel_during_a_wait_started_by_the_step_before_it_closes_its_record(cloud):
    deploy(wf("nap-after-step",
              {"id": "first", "type": "skill", "config": {"skill": "echo-prompt", "input": "x"}},
              {"id": "nap", "type": "wait", "depends_on": ["first"], "config": {"seconds": 600}}))
    rid = start("nap-after-step")["run_id"]
    wait_for(lambda: {s["step_id"]: s["status"] for s in call(api, "GET", f"/runs/{rid}").json["steps"]}
             .get("nap") == "running")
    assert call(api, "POST", f"/runs/{rid}/cancel", body={}).status == 200
    body = finished(rid)
    steps = {s["step_id"]: s for s in body["steps"]}
    assert body["run"]["status"] == "ABORTED"
    assert steps["first"]["status"] == "completed" and steps["nap"]["status"] == "aborted"


def test_redrive_after_a_started_wait_keeps_its_record_and_does_not_wait_again(cloud, flaky):
    deploy(wf("flaky-after-nap",
              {"id": "first", "type": "http", "config": {"url": flaky.url + "/a"}},
              {"id": "nap", "type": "wait", "depends_on": ["first"], "config": {"seconds": 1}},
              {"id": "second", "type": "http", "depends_on": ["nap"], "retry": {"max_attempts": 1},
               "config": {"url": flaky.url + "/b"}},
              allow_private_network=True))
    sm = call(api, "GET", "/workflows/flaky-after-nap").json["state_machine_arn"]
    states = json.loads(cloud.sfn.describe_state_machine(stateMachineArn=sm)["definition"])["States"]
    assert states["first"]["Next"] == "nap" and "nap.prepare" not in states   # first's task starts nap
    rid = start("flaky-after-nap")["run_id"]
    failed = finished(rid)
    assert failed["run"]["status"] == "FAILED"
    nap = {s["step_id"]: s for s in failed["steps"]}["nap"]
    assert nap["status"] == "completed" and nap["output"]["seconds"] == 1
    flaky.healthy.set()
    assert call(api, "POST", f"/runs/{rid}/redrive").status == 202
    body = finished(rid)
    assert body["run"]["status"] == "SUCCEEDED", body["run"]
    assert {s["step_id"]: s for s in body["steps"]}["nap"] == nap   # not run, not rewritten
    assert list(body["run"]["output"]) == ["first", "nap", "second"]
    assert body["run"]["output"]["nap"] == {"status": "completed", "output": nap["output"]}
