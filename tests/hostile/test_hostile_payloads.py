"""Hostile trigger payloads (issue #13, finding 3): deep, huge numbers, NaN/Infinity, not UTF-8,
malformed, oversized. Through ``POST /workflows/{name}/runs`` and an open webhook each is a 4xx
naming what and where, and no run starts: no execution, no run record. Approval decisions parse
with the same parser.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from boternity.handlers.api import lambda_handler as api
from boternity.handlers.webhook import lambda_handler as hook
from tests.support.apigw import call, local_cloud
from tests.support.hostile_corpus import PAYLOADS, HostilePayload

SECONDS_MAX = 30        # generous: proves a bound, not a speed
WORKFLOW = {"name": "target", "triggers": [{"type": "webhook", "path": "/hostile"}],
            "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory):
    from boternity.local.engine import LocalEngine

    base = tmp_path_factory.mktemp("hostile-payloads")
    with LocalEngine(base_dir=base, blob_dir=base / "blobs", fast_retry=True) as engine, local_cloud(engine):
        r = call(api, "PUT", "/workflows/target", body=WORKFLOW)
        assert r.status == 201, r.text
        yield engine


def started(engine: Any) -> tuple[int, int]:
    """(executions, run records) of the target workflow: what a refused payload must not change."""
    arn = call(api, "GET", "/workflows/target").json["state_machine_arn"]
    executions = engine.sfn.list_executions(stateMachineArn=arn)["executions"]
    return len(executions), len(call(api, "GET", "/workflows/target/runs").json["runs"])


def ids(case: HostilePayload) -> str:
    return case.id


def refused(reply: Any, case: HostilePayload, subject: str) -> None:
    assert reply.status == case.status, reply.text[:500]
    error = reply.error
    assert error["code"] == case.code
    assert error["message"].startswith(subject), error["message"]
    assert case.says in error["message"], error["message"]


def test_a_valid_payload_does_start_a_run(cloud):
    """The control: the same requests with a good body start runs, so "nothing started" means something."""
    before = started(cloud)
    assert call(api, "POST", "/workflows/target/runs", body={"deep": [[[1]]], "n": 12345678901234567890}).status == 202
    assert call(hook, "POST", "/hooks/hostile", body={"ok": True}).status == 202
    executions, _ = started(cloud)
    assert executions == before[0] + 2


@pytest.mark.parametrize("case", PAYLOADS, ids=ids)
def test_post_runs_refuses_and_starts_nothing(case: HostilePayload, cloud):
    before = started(cloud)
    t0 = time.monotonic()
    r = call(api, "POST", "/workflows/target/runs", body=case.body, binary=True,
             headers={"Content-Type": case.content_type})
    assert time.monotonic() - t0 < SECONDS_MAX
    refused(r, case, "the payload")
    assert started(cloud) == before


@pytest.mark.parametrize("case", PAYLOADS, ids=ids)
def test_webhook_refuses_and_starts_nothing(case: HostilePayload, cloud):
    before = started(cloud)
    t0 = time.monotonic()
    r = call(hook, "POST", "/hooks/hostile", body=case.body, binary=True,
             headers={"Content-Type": case.content_type, "Idempotency-Key": f"hostile-{case.id}"})
    assert time.monotonic() - t0 < SECONDS_MAX
    refused(r, case, "the webhook body")
    assert started(cloud) == before


@pytest.mark.parametrize("case", [c for c in PAYLOADS if c.code in ("too_deep", "number_too_long", "invalid_number")],
                         ids=ids)
def test_an_untyped_webhook_body_is_refused_too_when_it_is_hostile_json(case: HostilePayload, cloud):
    """Without a Content-Type, text that is not JSON is kept as text; JSON beyond a limit is not."""
    before = started(cloud)
    r = call(hook, "POST", "/hooks/hostile", body=case.body, binary=True)
    if case.code == "invalid_number":   # NaN is not JSON at all: the body is kept as text
        assert r.status == 202 and started(cloud)[0] == before[0] + 1
    else:
        refused(r, case, "the webhook body")
        assert started(cloud) == before


@pytest.mark.parametrize("body, code, says", [
    (b"[" * 3000 + b"]" * 3000, "too_deep", "the body is nested deeper than 64 levels"),
    (b'{"approved": true, "comment": ' + b"9" * 5000 + b"}", "number_too_long", "holds a number of 5,000 characters"),
    (b'{"approved": NaN}', "invalid_number", "the body holds NaN, which is not a JSON number"),
    (b'{"approved": true, "comment": "\xff"}', "invalid_encoding", "the body is not UTF-8 text (byte 0xff"),
], ids=["deep", "huge-int", "nan", "not-utf8"])
def test_approval_decisions_parse_within_the_same_limits(body: bytes, code: str, says: str, cloud):
    r = call(api, "POST", "/approvals/nope/decision", body=body, binary=True,
             headers={"Content-Type": "application/json"})
    assert r.status == 400, r.text[:300]
    assert r.error["code"] == code and says in r.error["message"]


def test_the_error_body_names_the_limit_and_the_place(cloud):
    r = call(api, "POST", "/workflows/target/runs", body=b'{"a": [' + b"1" * 200 + b"]}", binary=True,
             headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert r.error["details"] == {"code": "number_too_long", "line": 1, "column": 8, "path": None,
                                  "limit": "BOTERNITY_MAX_NUMBER_DIGITS",
                                  "message": json.loads(r.text)["error"]["details"]["message"]}
