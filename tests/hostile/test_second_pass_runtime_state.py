"""The second pass over run state: cancels and failures reaching into sub-workflow children, redrives,
and deliveries that must start exactly one run per workflow.

One local engine for the module (tests/support/approval_runs.py); every case starts its own runs and
reads them back through the API a caller would use.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from boternity.handlers.api import lambda_handler as api
from boternity.handlers.webhook import lambda_handler as hook
from tests.support.apigw import call, wait_for
from tests.support.approval_runs import (
    approval,
    deploy,
    finished,
    gate_workflow,
    module_cloud,
    pending_approval,
    run_detail,
    start,
    steps,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with module_cloud(tmp_path_factory.mktemp("second-pass-state")) as eng:
        deploy(gate_workflow("gate"))
        deploy({"name": "parent", "steps": [
            {"id": "child", "type": "sub_workflow", "config": {"workflow_name": "gate", "input": {"what": "v2"}}}]})
        deploy({"name": "fan", "steps": [
            {"id": "child", "type": "sub_workflow", "for_each": "{{ trigger.items }}", "max_concurrency": 2,
             "config": {"workflow_name": "gate", "input": {"what": "{{ item }}"}}}]})
        deploy({"name": "failing", "steps": [
            {"id": "child", "type": "sub_workflow", "config": {"workflow_name": "gate", "input": {"what": "v3"}}},
            {"id": "pause", "type": "wait", "config": {"seconds": 1}},
            {"id": "boom", "type": "code", "depends_on": ["pause"],
             "config": {"language": "javascript", "source": "throw new Error('boom')"}}]})
        # An approval that times out after 1 s, then a long wait: a cancel can race the timeout.
        hurry = gate_workflow("hurry", timeout_secs=1)
        hurry["steps"][1] = {"id": "ship", "type": "wait", "depends_on": ["review"], "config": {"seconds": 600}}
        deploy(hurry)
        deploy({"name": "bigprompt", "steps": [
            {"id": "draft", "type": "code", "config": {"language": "javascript", "source": "'x'.repeat(500000)"}},
            {"id": "review", "type": "approval", "depends_on": ["draft"],
             "config": {"prompt": "Ship this? {{ steps.draft.output.output }}"}}]})
        for name in TWINS:
            deploy({"name": name, "triggers": [{"type": "webhook", "path": f"/{name}", "auth": {"type": "none"}}],
                    "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]})
        yield eng


# Two workflows whose names agree on their first 40 characters (a webhook run id keeps 40 of them).
TWINS = ("customer-onboarding-notification-pipeline-eu", "customer-onboarding-notification-pipeline-us")


def _runs_of(workflow: str) -> list[dict[str, Any]]:
    r = call(api, "GET", f"/workflows/{workflow}/runs")
    assert r.status == 200, r.text
    return list(r.json["runs"])


def _new_children(before: set[str], count: int) -> list[str]:
    """The ids of ``count`` runs of ``gate`` started since ``before`` was taken, once they wait for approval."""
    children = wait_for(lambda: (new := [r["run_id"] for r in _runs_of("gate") if r["run_id"] not in before])
                        and len(new) == count and new)
    return list(children)


def _assert_stopped_with_nothing_open(child: str, aid: str) -> None:
    assert finished(child)["run"]["status"] == "ABORTED"
    assert approval(aid)["status"] == "CANCELLED"
    assert steps(child)["review"]["status"] == "aborted"


def test_cancelling_a_parent_stops_its_child_and_closes_the_childs_approval(cloud: Any) -> None:
    before = {r["run_id"] for r in _runs_of("gate")}
    parent = start("parent", {})
    (child,) = _new_children(before, 1)
    aid = pending_approval(child)

    r = call(api, "POST", f"/runs/{parent}/cancel")
    assert r.status == 200, r.text
    assert finished(parent)["run"]["status"] == "ABORTED"

    _assert_stopped_with_nothing_open(child, aid)


def test_cancelling_a_for_each_over_sub_workflows_stops_every_child(cloud: Any) -> None:
    before = {r["run_id"] for r in _runs_of("gate")}
    parent = start("fan", {"items": ["a", "b"]})
    children = _new_children(before, 2)
    approvals = {child: pending_approval(child) for child in children}

    assert call(api, "POST", f"/runs/{parent}/cancel").status == 200
    assert finished(parent)["run"]["status"] == "ABORTED"
    for child, aid in approvals.items():
        _assert_stopped_with_nothing_open(child, aid)


def test_a_parent_failing_elsewhere_stops_its_running_child(cloud: Any) -> None:
    before = {r["run_id"] for r in _runs_of("gate")}
    parent = start("failing", {})
    (child,) = _new_children(before, 1)
    aid = pending_approval(child)

    done = finished(parent)
    assert (done["run"]["status"], {s["step_id"]: s["status"] for s in done["steps"]}["boom"]) == ("FAILED", "failed")
    _assert_stopped_with_nothing_open(child, aid)


def test_a_decision_on_the_old_approval_of_a_redriven_run_is_refused(cloud: Any) -> None:
    rid = start("gate")
    first = pending_approval(rid)
    assert call(api, "POST", f"/runs/{rid}/cancel").status == 200
    assert finished(rid)["run"]["status"] == "ABORTED"
    assert call(api, "POST", f"/runs/{rid}/redrive").status == 202
    second = wait_for(lambda: (a := pending_approval(rid)) != first and a)

    r = call(api, "POST", f"/approvals/{first}/decision", body={"approved": True})
    assert (r.status, r.error["code"]) == (409, "approval_cancelled"), r.text
    assert approval(second)["status"] == "PENDING"
    assert run_detail(rid)["run"]["status"] == "RUNNING"
    assert call(api, "POST", f"/runs/{rid}/cancel").status == 200


def test_one_delivery_id_sent_to_two_workflows_starts_a_run_of_each(cloud: Any) -> None:
    # A sender fanning one message out to two endpoints sends it with one id (Standard Webhooks'
    # webhook-id does so); a redelivery to either must still be a duplicate of that workflow's run.
    answers = [call(hook, "POST", f"/hooks/{name}", body='{"n": 1}',
                    headers={"Content-Type": "application/json", "Idempotency-Key": "evt-42"}) for name in TWINS]
    assert [a.status for a in answers] == [202, 202], [a.text for a in answers]
    runs = [a.json["run_id"] for a in answers]
    assert runs[0] != runs[1]
    for name, rid in zip(TWINS, runs, strict=True):
        assert finished(rid)["run"]["workflow"] == name
        assert [r["run_id"] for r in _runs_of(name)] == [rid]

    again = call(hook, "POST", f"/hooks/{TWINS[1]}", body='{"n": 1}',
                 headers={"Content-Type": "application/json", "Idempotency-Key": "evt-42"})
    assert (again.status, again.json["status"], again.json["run_id"]) == (200, "duplicate", runs[1])


# A page on another site whose DNS name rebinds to 127.0.0.1 talks to `boternity serve` as its own
# origin: the browser sends that site's name as Host. Without a check it could register a workflow
# sending `{{ secrets.X }}` to itself, decide approvals or overwrite secrets.
REBOUND = {"Host": "attacker.example:8000", "Content-Type": "application/json"}


@pytest.mark.parametrize(("method", "path", "body"), [
    pytest.param("GET", "/workflows", b"", id="list-workflows"),
    pytest.param("PUT", "/workflows/exfil", json.dumps({"name": "exfil", "allow_private_network": True, "steps": [
        {"id": "a", "type": "wait", "config": {"seconds": 0}}]}).encode(), id="register-a-workflow"),
    pytest.param("POST", "/workflows/gate/runs", b"{}", id="start-a-run"),
    pytest.param("PUT", "/_local/secrets/PARTNER_TOKEN", b"attacker-value", id="overwrite-a-secret"),
])
def test_serve_refuses_a_request_addressed_to_another_host(cloud: Any, method: str, path: str, body: bytes) -> None:
    from boternity.local.server import LocalServer

    before = len(_runs_of("gate"))
    status, _, answer = LocalServer(cloud).handle(method, path, REBOUND, body)

    assert (status, json.loads(answer)["error"]["code"]) == (403, "forbidden_host")
    assert call(api, "GET", "/workflows/exfil").status == 404
    assert len(_runs_of("gate")) == before


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", None])
def test_serve_answers_loopback_hosts_and_webhooks_and_approval_links_from_anywhere(cloud: Any, host: str | None) -> None:
    from boternity.local.server import LocalServer

    server = LocalServer(cloud)
    headers = {"Host": host} if host else {}
    status, _, _ = server.handle("GET", "/workflows", headers, b"")
    assert status == 200
    # Webhooks are authenticated by their own scheme and reach serve through tunnels under any name.
    status, _, answer = server.handle("POST", f"/hooks/{TWINS[0]}", {**REBOUND, "Idempotency-Key": f"tunnel-{host}"},
                                      b"{}")
    assert status == 202, answer
    # So are approval links: the key in the link is the credential, as in the cloud.
    status, _, answer = server.handle("GET", "/approve/AAAAAAAAAAAAAAAAAAAAAA?k=x", REBOUND, b"")
    assert (status, json.loads(answer)["error"]["code"]) == (404, "not_found")


ANONYMOUS = {"identity": {"sourceIp": "203.0.113.9"}}   # the link routes carry no IAM caller
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CSRF_REFUSED = "the form's CSRF token is missing or wrong; reload the approval page"


@pytest.mark.parametrize("forged", ["é" * 40, "０" * 40, "\u202e" + "0" * 39])
def test_a_non_ascii_link_key_or_csrf_token_is_refused_like_any_wrong_one(cloud: Any, forged: str) -> None:
    from urllib.parse import quote

    from boternity.service.approval_page import csrf_token, link_key
    from tests.support.approval_runs import stored

    rid = start("gate")
    aid = pending_approval(rid)
    token = str(stored(aid)["token"])
    answers = {
        "link-page": call(api, "GET", f"/approve/{aid}", query={"k": forged}, **ANONYMOUS),
        "link-post": call(api, "POST", f"/approve/{aid}", headers=FORM, **ANONYMOUS,
                          body=f"k={quote(forged)}&csrf={csrf_token(token, aid)}&approved=true"),
        "link-post-csrf": call(api, "POST", f"/approve/{aid}", headers=FORM, **ANONYMOUS,
                               body=f"k={link_key(token, aid)}&csrf={quote(forged)}&approved=true"),
        "api-form-csrf": call(api, "POST", f"/approvals/{aid}/decision", headers=FORM,
                              body=f"approved=true&csrf={quote(forged)}"),
    }

    assert {name: (r.status, r.error["code"], r.error["message"]) for name, r in answers.items()} == {
        "link-page": (404, "not_found", f"approval '{aid}' not found"),
        "link-post": (404, "not_found", f"approval '{aid}' not found"),
        "link-post-csrf": (403, "csrf_failed", CSRF_REFUSED),
        "api-form-csrf": (403, "csrf_failed", CSRF_REFUSED),
    }
    assert approval(aid)["status"] == "PENDING"
    assert call(api, "POST", f"/runs/{rid}/cancel").status == 200


def test_an_approval_prompt_too_large_for_an_approval_fails_the_step_saying_so(cloud: Any) -> None:
    # 500,000 characters rendered from an earlier step's output: DynamoDB keeps at most 400 KB an item.
    rid = start("bigprompt", {})
    done = finished(rid)
    review = {s["step_id"]: s for s in done["steps"]}["review"]

    assert (done["run"]["status"], review["status"]) == ("FAILED", "failed")
    assert review["error"] == ("[approval.prompt_too_large] step 'review', field 'config.prompt': the "
                               "prompt renders to 500,011 bytes; an approval prompt holds at most 65,536 (it is "
                               "stored with the approval and shown on its page and in its notification): show a "
                               "summary or a link instead")


def test_one_idempotency_key_on_two_workflows_starts_one_run_of_each(cloud: Any) -> None:
    headers = {"Idempotency-Key": "order-2nd-pass"}
    first = call(api, "POST", "/workflows/gate/runs", body={"what": "x"}, headers=headers)
    second = call(api, "POST", f"/workflows/{TWINS[0]}/runs", body={"what": "x"}, headers=headers)
    again = call(api, "POST", f"/workflows/{TWINS[0]}/runs", body={"what": "x"}, headers=headers)

    assert (first.status, second.status, again.status) == (202, 202, 202), (first.text, second.text)
    assert first.json["run_id"] != second.json["run_id"]
    assert (again.json["run_id"], again.json.get("replayed")) == (second.json["run_id"], True)
    assert run_detail(first.json["run_id"])["run"]["workflow"] == "gate"
    assert finished(second.json["run_id"])["run"]["workflow"] == TWINS[0]
    assert call(api, "POST", f"/runs/{first.json['run_id']}/cancel").status == 200


def test_a_parent_redriven_after_cancel_starts_a_fresh_child(cloud: Any) -> None:
    before = {r["run_id"] for r in _runs_of("gate")}
    parent = start("parent", {})
    (first,) = _new_children(before, 1)
    first_approval = pending_approval(first)
    assert call(api, "POST", f"/runs/{parent}/cancel").status == 200
    _assert_stopped_with_nothing_open(first, first_approval)

    assert call(api, "POST", f"/runs/{parent}/redrive").status == 202
    (second,) = _new_children(before | {first}, 1)
    second_approval = pending_approval(second)
    assert call(api, "POST", f"/approvals/{second_approval}/decision", body={"approved": True}).status == 200

    assert finished(second)["run"]["status"] == "SUCCEEDED"
    assert finished(parent)["run"]["status"] == "SUCCEEDED"
    assert approval(first_approval)["status"] == "CANCELLED"


@pytest.mark.parametrize("delay", [0.8, 0.95, 1.0, 1.05, 1.2])
def test_a_cancel_racing_the_approval_timeout_leaves_one_closed_story(cloud: Any, delay: float) -> None:
    import time

    rid = start("hurry")
    aid = pending_approval(rid)
    time.sleep(delay)   # not an assertion on time: it only places the cancel around the deadline
    r = call(api, "POST", f"/runs/{rid}/cancel")

    assert r.status == 200, r.text
    assert finished(rid)["run"]["status"] == "ABORTED"
    closed = approval(aid)
    assert closed["status"] in ("CANCELLED", "EXPIRED"), closed
    records = steps(rid)
    assert records["review"]["status"] in ("aborted", "completed"), records["review"]
    assert all(rec["status"] not in ("running", "waiting_approval") for rec in records.values()), records
    late = call(api, "POST", f"/approvals/{aid}/decision", body={"approved": True})
    assert (late.status, late.error["code"]) in ((409, "approval_cancelled"), (409, "approval_expired")), late.text
