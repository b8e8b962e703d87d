"""Webhook forgeries and replays, one case each, against every auth type the webhook supports
(hmac_sha256, standard_webhooks, bearer_token; see boternity/webhooks.py).

Each forged request must get exactly 401 ``webhook authentication failed`` (the reason goes to
the log only) and start nothing; each replay must name the first run and start nothing more.
One engine serves the whole module: every case counts the executions before and after itself.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from boternity.handlers.api import lambda_handler as api
from boternity.handlers.webhook import lambda_handler as hook
from boternity.runtime.secrets import secret_prefix
from boternity.webhooks import sign_hmac_sha256, sign_standard_webhooks
from tests.support.apigw import call, local_cloud

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

GH_SECRET = "gh-forgery-secret-0123456789"
SW_SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
SW_OTHER = "whsec_" + base64.b64encode(b"x" * 32).decode()
BEARER = "tok-forgery-abcdefghijklmnop"
WORKFLOW = "guarded"
UNAUTHORIZED = {"code": "unauthorized", "message": "webhook authentication failed", "details": None}
BODY = '{"action": "opened", "n": 1}'


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from boternity.local.engine import LocalEngine

    base = tmp_path_factory.mktemp("forgeries")
    with LocalEngine(base_dir=base, blob_dir=base / "blobs", fast_retry=True) as engine, local_cloud(engine):
        sm = boto3.client("secretsmanager")
        # Stored where the cloud keeps them (Secrets Manager under the stack's prefix), never
        # in the process environment.
        for name, value in (("GH_FORGERY", GH_SECRET), ("SW_FORGERY", SW_SECRET), ("BEARER_FORGERY", BEARER)):
            sm.create_secret(Name=f"{secret_prefix()}{name}", SecretString=value)
        doc = {"name": WORKFLOW, "triggers": [
            {"type": "webhook", "path": "/gh", "auth": {"type": "hmac_sha256", "secret_name": "GH_FORGERY"}},
            {"type": "webhook", "path": "/std", "auth": {"type": "standard_webhooks", "secret_name": "SW_FORGERY"}},
            {"type": "webhook", "path": "/bearer", "auth": {"type": "bearer_token", "secret_name": "BEARER_FORGERY"}},
            {"type": "webhook", "path": "/unset", "auth": {"type": "hmac_sha256", "secret_name": "NEVER_STORED"}},
        ], "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}
        r = call(api, "PUT", f"/workflows/{WORKFLOW}", body=doc)
        assert r.status == 201, r.text
        yield engine


def started(engine: Any) -> int:
    arn = call(api, "GET", f"/workflows/{WORKFLOW}").json["state_machine_arn"]
    return len(engine.sfn.list_executions(stateMachineArn=arn)["executions"])


# ---------------------------------------------------------------------- request builders


def github(body: str = BODY, *, delivery: str, secret: str = GH_SECRET, signed: str | None = None,
           signature: str | None = None) -> dict[str, Any]:
    sig = signature if signature is not None else sign_hmac_sha256(secret, body if signed is None else signed)
    return {"path": "/hooks/gh", "body": body, "headers": {
        "Content-Type": "application/json", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}}


def standard(body: str = BODY, *, msg_id: str, ts: int | None = None, secret: str = SW_SECRET,
             signed_id: str | None = None, signed_ts: int | None = None, signed_body: str | None = None,
             signature: str | None = None, drop: str | None = None) -> dict[str, Any]:
    ts = int(time.time()) if ts is None else ts
    sig = signature if signature is not None else sign_standard_webhooks(
        secret, signed_id or msg_id, signed_ts if signed_ts is not None else ts,
        body if signed_body is None else signed_body)
    headers = {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts),
               "webhook-signature": sig}
    headers.pop(drop or "", None)
    return {"path": "/hooks/std", "body": body, "headers": headers}


def bearer(value: str | None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": "bearer-forgery"}
    if value is not None:
        headers["Authorization"] = value
    return {"path": "/hooks/bearer", "body": BODY, "headers": headers}


def without(req: dict[str, Any], header: str) -> dict[str, Any]:
    return {**req, "headers": {k: v for k, v in req["headers"].items() if k != header}}


def post(req: dict[str, Any]) -> Any:
    return call(hook, "POST", req["path"], body=req["body"], headers=req["headers"])


def tampered(body: str) -> str:
    return body.replace('"n": 1', '"n": 2')


# ---------------------------------------------------------------------- forgeries: 401, nothing started

def now() -> int:
    # At send time, never at collection: a slow suite would age a module constant past the tolerance.
    return int(time.time())


FORGERIES: list[Any] = [
    # GitHub-style HMAC-SHA256 over the raw body
    pytest.param(lambda: without(github(delivery="g1"), "X-Hub-Signature-256"), id="hmac-missing-signature"),
    pytest.param(lambda: github(delivery="g2", signature=""), id="hmac-empty-signature"),
    pytest.param(lambda: github(delivery="g3", signature="sha256=" + "z" * 64), id="hmac-not-hex"),
    pytest.param(lambda: github(delivery="g4", signature=sign_hmac_sha256(GH_SECRET, BODY)[:-1]),
                 id="hmac-truncated"),
    pytest.param(lambda: github(delivery="g5", signature="sha1=" + "0" * 40), id="hmac-sha1-downgrade"),
    pytest.param(lambda: github(delivery="g6", signed='{"action": "closed"}'), id="hmac-signature-for-another-body"),
    pytest.param(lambda: github(tampered(BODY), delivery="g7", signed=BODY), id="hmac-valid-signature-tampered-body"),
    pytest.param(lambda: github(delivery="g8", secret="guessed-secret"), id="hmac-wrong-secret"),
    pytest.param(lambda: github(json.dumps(json.loads(BODY)), delivery="g9", signed=BODY.replace(" ", "")),
                 id="hmac-signed-reserialised-json"),
    pytest.param(lambda: {**github(delivery="g10"), "path": "/hooks/unset"}, id="hmac-secret-not-configured"),
    # Standard Webhooks: id, timestamp and body are signed together
    pytest.param(lambda: standard(msg_id="s1", drop="webhook-id"), id="std-missing-id"),
    pytest.param(lambda: standard(msg_id="s2", drop="webhook-timestamp"), id="std-missing-timestamp"),
    pytest.param(lambda: standard(msg_id="s3", drop="webhook-signature"), id="std-missing-signature"),
    pytest.param(lambda: standard(msg_id="s4", ts=now() - 301), id="std-stale-timestamp"),
    pytest.param(lambda: standard(msg_id="s5", ts=now() + 600), id="std-future-timestamp"),
    pytest.param(lambda: standard(msg_id="s6", ts=(t := now()), signed_ts=t - 1), id="std-timestamp-swapped"),
    pytest.param(lambda: standard(msg_id="s7", signed_id="s7-other"), id="std-signature-for-another-id"),
    pytest.param(lambda: standard(msg_id="s8", signed_body='{"action": "closed"}'),
                 id="std-signature-for-another-body"),
    pytest.param(lambda: standard(tampered(BODY), msg_id="s9", signed_body=BODY), id="std-valid-signature-tampered-body"),
    pytest.param(lambda: standard(msg_id="s10", secret=SW_OTHER), id="std-wrong-secret"),
    pytest.param(lambda: {**(r := standard(msg_id="s11")), "headers": {
        **r["headers"], "webhook-timestamp": "1.7e9"}}, id="std-timestamp-not-digits"),
    pytest.param(lambda: standard(msg_id="s12", ts=10 ** 13), id="std-timestamp-13-digits"),
    pytest.param(lambda: standard(msg_id="s13.1"), id="std-dot-in-id-resplit"),
    pytest.param(lambda: standard(msg_id="s14", signature="v1,"), id="std-empty-v1-entry"),
    pytest.param(lambda: standard(msg_id="s15", signature="v1a," + base64.b64encode(b"a" * 32).decode()),
                 id="std-only-other-versions"),
    pytest.param(lambda: standard(msg_id="s16", signature=" ".join(
        [sign_standard_webhooks(SW_OTHER, "s16", now(), BODY), "v1,AAAA", "v2,bm9wZQ=="])),
        id="std-signature-list-all-bad"),
    # Bearer token
    pytest.param(lambda: bearer(None), id="bearer-missing"),
    pytest.param(lambda: bearer("Bearer "), id="bearer-empty"),
    pytest.param(lambda: bearer("Bearer wrong-token"), id="bearer-wrong"),
    pytest.param(lambda: bearer(f"Bearer {BEARER[:-1]}"), id="bearer-prefix-of-token"),
    pytest.param(lambda: bearer(f"Bearer {BEARER}x"), id="bearer-token-plus-one"),
    pytest.param(lambda: bearer("Basic " + base64.b64encode(f"u:{BEARER}".encode()).decode()), id="bearer-basic-scheme"),
]


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_forged_delivery_is_401_and_starts_nothing(cloud, forge: Callable[[], dict[str, Any]]):
    before = started(cloud)
    r = post(forge())
    assert (r.status, r.error) == (401, UNAUTHORIZED), r.text
    assert started(cloud) == before


def test_an_oversized_body_is_413_before_its_signature_is_checked(cloud):
    before = started(cloud)
    body = json.dumps({"blob": "x" * (256 * 1024)})
    r = post(github(body, delivery="big"))
    assert (r.status, r.error["code"]) == (413, "payload_too_large")
    assert r.error["message"] == "the webhook body is larger than 256 KiB"
    assert started(cloud) == before


# ---------------------------------------------------------------------- genuine deliveries, then replays


def test_a_signature_list_with_one_bad_entry_and_one_good_is_accepted_once(cloud):
    before = started(cloud)
    t = now()
    good = sign_standard_webhooks(SW_SECRET, "mixed-1", t, BODY)
    r = post(standard(msg_id="mixed-1", ts=t, signature=f"v1,AAAA {good}"))
    assert r.status == 202, r.text
    assert started(cloud) == before + 1


REPLAYS = [
    pytest.param(lambda: github(delivery="replay-gh"), id="hmac-same-delivery-id"),
    pytest.param(lambda: standard(msg_id="replay-std"), id="std-same-webhook-id"),
    pytest.param(lambda: {**bearer(f"Bearer {BEARER}"), "headers": {
        **bearer(f"Bearer {BEARER}")["headers"], "Idempotency-Key": "replay-bearer"}}, id="bearer-same-idempotency-key"),
]


@pytest.mark.parametrize("request_of", REPLAYS)
def test_a_replayed_delivery_names_the_first_run_and_starts_nothing(cloud, request_of: Callable[[], dict[str, Any]]):
    before = started(cloud)
    first = post(request_of())
    assert first.status == 202, first.text
    for _ in range(3):
        again = post(request_of())
        assert (again.status, again.json) == (200, {"status": "duplicate", "run_id": first.json["run_id"],
                                                    "workflow": WORKFLOW})
    assert started(cloud) == before + 1


def test_a_validly_signed_replay_of_an_id_with_another_body_is_422(cloud):
    before = started(cloud)
    assert post(standard(msg_id="reused-id")).status == 202
    r = post(standard(tampered(BODY), msg_id="reused-id"))
    assert (r.status, r.error) == (422, {"code": "delivery_id_reused", "details": None,
                                         "message": "this delivery id was used with a different payload"})
    assert started(cloud) == before + 1
