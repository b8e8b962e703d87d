"""Approval steps: the token stays in the backend, exactly one decision wins, timeouts reject."""

from __future__ import annotations

import json

import pytest

from boternity.approvals import ApprovalStore
from boternity.errors import Conflict, NotFound
from boternity.model import parse_workflow


def approval_wf(**cfg):
    return parse_workflow({"name": "review", "steps": [
        {"id": "draft", "type": "wait", "config": {"seconds": 0}},
        {"id": "review", "type": "approval", "depends_on": ["draft"],
         "config": {"prompt": "Publish for {{ trigger.topic }}?", **cfg}},
        {"id": "publish", "type": "wait", "depends_on": ["review"], "condition": "steps.review.output.approved",
         "config": {"seconds": 0}},
    ]})


@pytest.mark.parametrize("approved", [True, False])
def test_a_decision_resumes_the_run_and_gates_what_follows(engine, approved):
    seen = []

    def decide(a):
        seen.append(a)
        return approved, "looks good" if approved else "no"

    result = engine.run(approval_wf(), {"topic": "evals"}, timeout=30, on_approval=decide)
    assert result.status == "SUCCEEDED", result.cause
    assert seen[0]["prompt"] == "Publish for evals?"
    assert "token" not in seen[0], "the task token must never leave the backend"
    out = result.output["review"]["output"]
    assert out["approved"] is approved and out["approver"] == "local" and out["decided_at"]
    assert result.output["publish"]["status"] == ("completed" if approved else "skipped")


def test_second_decision_is_refused_as_already_decided(engine):
    ids = []

    def decide(a):
        ids.append(a["approval_id"])
        return True, None

    engine.run(approval_wf(), {"topic": "x"}, timeout=30, on_approval=decide)
    store = ApprovalStore("boternity")
    with pytest.raises(Conflict, match="already decided"):
        store.decide(ids[0], approved=False)
    assert store.get(ids[0])["status"] == "APPROVED"


def test_unknown_approval_is_not_found(engine):
    with pytest.raises(NotFound):
        ApprovalStore("boternity").decide("nope", approved=True)


def test_no_decision_within_the_timeout_rejects(engine):
    result = engine.run(approval_wf(timeout_secs=1), {"topic": "x"}, timeout=30, on_approval=lambda a: None)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["review"]["output"]["approved"] is False
    assert result.output["review"]["output"]["timed_out"] is True
    assert result.output["publish"]["status"] == "skipped"


def test_on_timeout_fail_fails_the_run(engine):
    result = engine.run(approval_wf(timeout_secs=1, on_timeout="fail"), {"topic": "x"}, timeout=30,
                        on_approval=lambda a: None)
    assert result.status == "FAILED"
    assert "step review failed" in result.cause


def test_the_decision_is_in_the_step_record_while_the_run_goes_on(engine):
    import time

    w = parse_workflow({"name": "review2", "steps": [
        {"id": "review", "type": "approval", "config": {"prompt": "ok?"}},
        {"id": "nap", "type": "wait", "depends_on": ["review"], "config": {"seconds": 2}},
    ]})
    engine.deploy(w)
    run_id, arn = engine.start(w, {})
    store = ApprovalStore("boternity")
    for _ in range(100):
        pending = store.pending_for_run(run_id)
        if pending:
            break
        time.sleep(0.05)
    store.decide(pending[0]["approval_id"], approved=True, approver="ada", comment="fine")
    rec = {s["step_id"]: s for s in engine.runs.steps(run_id)}["review"]
    assert rec["status"] == "completed" and rec["output"]["approver"] == "ada"
    result = engine.wait(run_id, arn, timeout=30)
    assert result.status == "SUCCEEDED"


# --------------------------------------------------------------------------- notifications


def _first_approval_then_approve(engine, wf, trigger):
    def decide(a):
        return True, None

    return engine.run(wf, trigger, timeout=30, on_approval=decide)


def test_notify_sns_publishes_the_prompt_and_link_but_never_the_token(engine, monkeypatch):
    import boto3

    from boternity.local.engine import ACCOUNT, APPROVAL_TOPIC, REGION

    monkeypatch.setenv("BOTERNITY_APPROVAL_BASE_URL", "https://approvals.example.com/prod/")
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="reviewers")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:{APPROVAL_TOPIC}", Protocol="sqs", Endpoint=queue_arn)

    result = _first_approval_then_approve(engine, approval_wf(notify="sns"), {"topic": "evals"})
    assert result.status == "SUCCEEDED", result.cause
    (msg,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(msg["Body"])
    assert envelope["Subject"] == "Approval needed: review / review"
    text = envelope["Message"]
    assert "Publish for evals?" in text
    (stored,) = _approvals_of(result)
    from boternity.service.approval_page import link_key

    key = link_key(stored["token"], stored["approval_id"])
    assert f"https://approvals.example.com/prod/approve/{stored['approval_id']}?k={key}" in text
    assert stored["token"] not in msg["Body"], "the task token must never leave the backend"
    attrs = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attrs == {"workflow": "review", "step_id": "review", "run_id": result.record["run_id"]}


def _approvals_of(result):
    """Every approval item of the run, straight from the table (the token included)."""
    import boto3
    from boto3.dynamodb.conditions import Attr

    table = boto3.resource("dynamodb", region_name="us-east-1").Table("boternity")
    return table.scan(FilterExpression=Attr("run_id").eq(result.record["run_id"]) & Attr("token").exists())["Items"]


def test_notify_webhook_receives_the_announcement(engine):
    from tests.support.http_target import HttpTarget

    with HttpTarget() as target:
        wf = parse_workflow({"name": "review", "allow_private_network": True, "steps": [
            {"id": "review", "type": "approval",
             "config": {"prompt": "Ship {{ trigger.topic }}?", "notify": target.url + "/echo/hook"}}]})
        result = _first_approval_then_approve(engine, wf, {"topic": "v2"})
    assert result.status == "SUCCEEDED", result.cause
    (req,) = [r for r in target.requests if r.path.startswith("/echo/hook")]
    body = json.loads(req.body)
    assert body["prompt"] == "Ship v2?" and body["step_id"] == "review" and body["workflow"] == "review"
    assert body["approval_id"] and "token" not in body


def test_a_failing_notification_loses_no_approval(engine):
    # Port 9 (discard) on loopback refuses the connection; the approval is still stored and decided.
    wf = parse_workflow({"name": "review", "allow_private_network": True, "steps": [
        {"id": "review", "type": "approval", "config": {"prompt": "ok?", "notify": "http://127.0.0.1:9/hook"}}]})
    result = _first_approval_then_approve(engine, wf, {})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["review"]["output"]["approved"] is True


@pytest.mark.parametrize("target", ["email:me@example.com", "ftp://x", "sns:topic", ""])
def test_notify_must_be_a_url_or_sns(target):
    from boternity.errors import ValidationFailed
    from boternity.validate import load_workflow_text

    text = f"name: r\nsteps:\n  - id: review\n    type: approval\n    config: {{prompt: ok, notify: '{target}'}}\n"
    with pytest.raises(ValidationFailed) as info:
        load_workflow_text(text, file="review.yaml")
    assert "notify must be an http(s) URL or 'sns'" in str(info.value)
    assert "config.notify" in str(info.value)
