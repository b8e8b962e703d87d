"""Each store's methods, run once on moto's DynamoDB and once on fast_dynamodb, give the same
results and leave the same items; and the fast table answered every call (none went to moto)."""

from __future__ import annotations

import itertools
import json
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from boternity.local import fast_dynamodb
from tests.support.ddb_pair import FAST, MOTO, REGION, normalised, table_pair

if TYPE_CHECKING:
    from collections.abc import Callable

NOW = 1_796_000_000.0


@pytest.fixture(autouse=True)
def _fixed_world(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both runs must write the same timestamps and ids, so their items can be compared.
    monkeypatch.setattr(time, "time", lambda: NOW)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")


def _observe(fn: Callable[[], Any]) -> Any:
    """A call's result, or its exception as (class, message): both are compared."""
    try:
        return json.loads(json.dumps(fn(), default=str))
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return [type(exc).__name__, str(exc)]


def _same_on_both(scenario: Callable[[str], list[Any]], *, wall_clock: tuple[str, ...] = ()) -> list[Any]:
    """Run ``scenario(table)`` on the moto table, then on the fast one; compare everything but the
    ``wall_clock`` attributes (written from a clock the test cannot fix)."""
    with table_pair() as pair:
        moto_result = normalised(scenario(MOTO), MOTO)
        fast_result = normalised(scenario(FAST), FAST)
        assert fast_dynamodb.held_tables() == [FAST], fast_dynamodb.handovers()
        assert fast_result == moto_result
        moto_items, fast_items = ([_without(i, wall_clock) for i in items] for items in pair.scan_both())
        assert fast_items == moto_items
        assert fast_items, "the scenario wrote nothing: it proves nothing"
        return fast_result


def _without(item: dict[str, Any], wall_clock: tuple[str, ...]) -> dict[str, Any]:
    if not item["pk"]["S"].startswith("IDEM#"):
        return item
    return {k: v for k, v in item.items() if k not in wall_clock}


def test_run_store() -> None:
    from boternity.store.run_records import RunStore, unwatch_steps, watch_steps

    def scenario(table: str) -> list[Any]:
        store = RunStore(table, client=boto3.resource("dynamodb", region_name=REGION))
        seen: list[Any] = []
        watcher = (lambda run_id, record: seen.append([run_id, record]))  # noqa: E731 - a one-line watcher
        out = [_observe(lambda: store.run_started("r1", workflow="wf", trigger_type="api", trigger={"a": 1})),
               _observe(lambda: store.run_started("r1", workflow="wf", trigger_type="api"))]
        store.step_started("r1", "a")
        watch_steps(watcher)   # ReturnValues ALL_NEW while someone watches
        try:
            store.step_started("r1", "a", attempt=1, step_type="prompt")
            store.attempt_failed("r1", "a", iteration="", attempt=0, error="boom", extra={"x": 1})
            out.append(store.step_ended("r1", "a", status="completed", output={"o": [1, 2]}, step_type="prompt"))
            for i in range(12):
                store.step_started("r1", "each", iteration=f"i{i}")
                store.step_ended("r1", "each", iteration=f"i{i}", status="completed", output=i)
        finally:
            unwatch_steps(watcher)
        store.step_started("r1", "open")
        out += [store.step_ended("r1", "a", status="failed", only_if_not_final=True),
                store.attempts("r1", "a"), store.item_records("r1", "each"), store.steps("r1"),
                store.end_open_steps("r1", status="aborted", error="run aborted"),
                store.run_ended("r1", status="SUCCEEDED", output={"done": True}),
                store.run_ended("r1", status="FAILED", error="late"),
                store.get_run("r1"), store.get_run("nope"), store.list_runs("wf"), seen]
        return out

    result = _same_on_both(scenario)
    assert result[2] is True and result[3] is False   # ended once; a final status is never overwritten


class FakeStepFunctions:
    """Step Functions as the stores use it: tokens answered, or gone."""

    def __init__(self, gone: tuple[str, ...] = ()) -> None:
        self.sent: list[list[str]] = []
        self.gone = gone

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        if taskToken in self.gone:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "gone"}}, "SendTaskSuccess")
        self.sent.append([taskToken, output])
        return {}


def test_sync_store() -> None:
    from boternity.store.sync import SyncStore

    def scenario(table: str) -> list[Any]:
        sfn = FakeStepFunctions()
        store = SyncStore(table, dynamodb=boto3.client("dynamodb", region_name=REGION), sfn=sfn)
        out = [store.wait("r1", "a", "", "tok1"), store.wait("r1", "a", "", "tok2"),
               store.signal("r1", "a", "", {"status": "completed", "output": 1}),
               store.wait("r1", "a", "", "tok3"), store.signal("r1", "b", "i1", {"status": "failed"})]
        return [out, sorted(sfn.sent)]

    assert _same_on_both(scenario)[0] == [False, False, 2, True, 0]


def test_sync_store_gates_send_once_with_every_record() -> None:
    """A gate of three producers: one done before it opens, one signalling after, the last one
    completing it; and a gate whose producers were all done sends at once."""
    from boternity.store.sync import SyncStore

    def scenario(table: str) -> list[Any]:
        sfn = FakeStepFunctions()
        store = SyncStore(table, dynamodb=boto3.client("dynamodb", region_name=REGION), sfn=sfn)
        out = [store.signal("r1", "p1", "i2", {"status": "completed", "output": 1}),
               store.gate("r1", "c", "i2", ["p1", "p2", "p3"], "tok-c"),
               store.signal("r1", "p2", "i2", {"status": "completed", "output": 2}),
               len(sfn.sent),
               store.signal("r1", "p3", "i2", {"status": "skipped"}),
               store.signal("r1", "p3", "i2", {"status": "skipped"}),   # a retried signal
               store.gate("r1", "d", "i2", ["p1", "p2"], "tok-d")]
        return [out, sfn.sent]

    out, sent = _same_on_both(scenario)
    assert out == [0, False, 0, 0, 1, 1, True]
    everything = {"p1": {"status": "completed", "output": 1}, "p2": {"status": "completed", "output": 2},
                  "p3": {"status": "skipped"}}
    assert [[token, json.loads(body)] for token, body in sent] == [
        ["tok-c", everything], ["tok-c", everything], ["tok-d", {k: everything[k] for k in ("p1", "p2")}]]


def test_approval_store(monkeypatch: pytest.MonkeyPatch) -> None:
    import boternity.approvals as approvals

    def scenario(table: str) -> list[Any]:
        ids = itertools.count()
        monkeypatch.setattr(approvals.secrets, "token_urlsafe", lambda n: f"approval{next(ids):014d}")
        resource = boto3.resource("dynamodb", region_name=REGION)
        store = approvals.ApprovalStore(table, resource=resource, sfn=FakeStepFunctions(gone=("tok-gone",)))
        out = []
        for token, timeout in (("tok-a", 600), ("tok-b", 600), ("tok-gone", 600), ("tok-due", 0), ("tok-c", 600)):
            out.append(store.create(token=token, run_id="r1", step_id=token, workflow="wf", prompt="ok?",
                                    timeout_secs=timeout))
        first, _, gone, due, _ = (a["approval_id"] for a in out)
        out += [_observe(lambda: store.decide(first, approved=True, approver="ann", comment="fine")),
                _observe(lambda: store.decide(first, approved=False)),
                _observe(lambda: store.decide(gone, approved=True)),
                _observe(lambda: store.get(due)),
                _observe(lambda: store.decide(due, approved=True)),
                _observe(lambda: store.get("not-an-approval-id-at-all")),
                store.pending_for_run("r1"), store.close_for_run("r1", "ABORTED"), store.pending_for_run("r1"),
                [store.get(a["approval_id"]) for a in out[:5]]]
        return out

    result = _same_on_both(scenario)
    assert [a["status"] for a in result[-1]] == ["APPROVED", "CANCELLED", "EXPIRED", "EXPIRED", "CANCELLED"]


def test_approval_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The status listing is one index query on both back ends: each approval under its current
    status, one workflow's by key prefix, paged by token, a past-due one closed instead of listed."""
    import boternity.approvals as approvals
    from boternity.service.approvals import list_approvals

    def scenario(table: str) -> list[Any]:
        ids = itertools.count()
        monkeypatch.setattr(approvals.secrets, "token_urlsafe", lambda n: f"approval{next(ids):014d}")
        store = approvals.ApprovalStore(table, resource=boto3.resource("dynamodb", region_name=REGION),
                                        sfn=FakeStepFunctions())
        made = [store.create(token=f"tok-{i}", run_id=run, step_id=f"s{i}", workflow=wf, prompt="ok?",
                             timeout_secs=timeout)
                for i, (run, wf, timeout) in enumerate((("r1", "wf-a", 600), ("r2", "wf-b", 600), ("r3", "wf-a", 0),
                                                        ("r4", "wf-a", 600), ("r5", "wf-ab", 600)))]
        a0, b1, _due, a3, ab4 = (m["approval_id"] for m in made)
        store.decide(a3, approved=False, comment="no")
        store.close_for_run("r2", "ABORTED")

        def ids_of(**kw: Any) -> list[Any]:
            page, token = list_approvals(store, **kw)
            return [[a["approval_id"] for a in page], token is not None]

        first, token = list_approvals(store, workflow="wf-a", limit=1)
        out = [ids_of(), ids_of(workflow="wf-a"), ids_of(workflow="wf-ab"), ids_of(status="rejected"),
               ids_of(status="cancelled"), ids_of(status="expired"),
               [a["approval_id"] for a in first], ids_of(workflow="wf-a", limit=1, next_token=token),
               _observe(lambda: list_approvals(store, workflow="wf-b", next_token=token)),
               _observe(lambda: list_approvals(store, status="later")),
               json.dumps(list_approvals(store, status="pending")[0] + list_approvals(store, status="rejected")[0])]
        assert [a0, ab4, b1] and out
        return out

    result = _same_on_both(scenario)
    a0, b1, due, a3, ab4 = (f"approval{i:014d}" for i in range(5))
    # wf-a before wf-ab ("wf-a#" < "wf-ab#"); the past-due one is closed as the first listing reads it.
    assert result[0] == [[a0, ab4], False]
    assert result[1] == [[a0], False], "decided, cancelled and expired approvals are not pending"
    assert result[2] == [[ab4], False], "wf-a's prefix does not match wf-ab's approvals"
    assert result[3] == [[a3], False] and result[4] == [[b1], False] and result[5] == [[due], False]
    assert result[6] == [a0]
    assert result[7][0] == [], "the second page of wf-a's pending approvals is empty"
    assert result[8] == ["BadRequest", "next_token belongs to another listing"]
    assert result[9][0] == "BadRequest"
    assert "tok-" not in result[10], "a listing never carries a task token"


def test_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from boternity.service.registry import Registry

    def scenario(table: str) -> list[Any]:
        reg = Registry(table, resource=boto3.resource("dynamodb", region_name=REGION))
        out = []
        for name in ("alpha", "beta", "gamma"):
            item = {"pk": f"WF#{name}", "sk": "WF", "name": name, "version": 1, "gsi1pk": "WORKFLOWS",
                    "gsi1sk": name, "triggers": json.dumps([]), "concurrency": 0}
            out.append(_observe(lambda i=item: reg.put(i, expected_version=None)))
        out += [_observe(lambda: reg.put({"pk": "WF#alpha", "sk": "WF", "name": "alpha", "version": 2},
                                         expected_version=None)),
                _observe(lambda: reg.put({"pk": "WF#alpha", "sk": "WF", "name": "alpha", "version": 2,
                                          "gsi1pk": "WORKFLOWS", "gsi1sk": "alpha"}, expected_version=1)),
                _observe(lambda: reg.put({"pk": "WF#beta", "sk": "WF", "name": "beta", "version": 9},
                                         expected_version=5))]
        page, token = reg.list(limit=2)
        out += [page, token, reg.list(limit=2, next_token=token), reg.get("alpha"), reg.get("nope")]
        hooks = [{"path": "in/a", "index": 0}, {"path": "in/b", "index": 1, "auth_type": "hmac", "secret_name": "s"}]
        out += [reg.claim_hooks("alpha", hooks), reg.claim_hooks("alpha", hooks),
                _observe(lambda: reg.claim_hooks("beta", [{"path": "in/c", "index": 0}, {"path": "in/a", "index": 1}])),
                reg.hook("in/a"), reg.hook("in/c")]
        reg.release_hooks("beta", ["in/a"])    # not beta's: left alone
        reg.release_hooks("alpha", ["in/b"])
        watchers = [{"index": i, "bucket": "b", "paths": ["in/"], "patterns": ["*.json"]} for i in range(3)]
        reg.set_file_watchers("alpha", watchers)
        reg.set_file_watchers("alpha", watchers[:1])
        reg.delete("gamma")
        out += [reg.file_watchers(), reg.hook("in/b"), reg.get("gamma")]
        return out

    _same_on_both(scenario)


def test_run_service_transactions_and_claims() -> None:
    from boternity.service.runs import RunService, release_slot, start_queued

    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})

    def scenario(table: str) -> list[Any]:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name=f"sm-{table}", definition=definition,
                                       roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        record = {"state_machine_arn": arn, "concurrency": 1, "on_limit": "queue"}
        resource = boto3.resource("dynamodb", region_name=REGION)
        svc = RunService(table, sfn=sfn, resource=resource)
        out: list[Any] = []
        for run_id in ("run-1", "run-2", "run-3"):   # one slot: the others queue
            out.append(_observe(lambda r=run_id: vars(svc.start("wf", {"n": r}, trigger_type="webhook",
                                                               run_id=r, record=record))))
        out.append(_observe(lambda: vars(svc.start("wf", {"n": "run-1"}, trigger_type="webhook", run_id="run-1",
                                                   record=record))))   # a repeated delivery
        out.append(_observe(lambda: vars(svc.start("wf", {"k": 1}, trigger_type="api", idempotency_key="key-1",
                                                   record=record))))
        out.append(_observe(lambda: vars(svc.start("wf", {"k": 1}, trigger_type="api", idempotency_key="key-1",
                                                   record=record))))   # replayed
        out.append(_observe(lambda: vars(svc.start("wf", {"k": 2}, trigger_type="api", idempotency_key="key-1",
                                                   record=record))))   # reused with another payload
        out.append(_observe(lambda: svc.cancel("run-3", by="test")))   # a queued run
        out.append(_observe(lambda: svc.cancel("run-3", by="test")))
        out.append(release_slot(table, "wf", "run-1", resource=resource))
        out.append(release_slot(table, "wf", "run-1", resource=resource))   # once only
        out.append(start_queued(table, "wf", resource=resource, sfn=sfn))
        svc.runs.run_ended("run-1", status="FAILED", error="boom")
        out.append(_observe(lambda: svc.redrive("run-1")))   # moto has no RedriveExecution: reopened, then put back
        out.append(svc.list("wf"))
        out.append(svc.list("wf", status="queued"))
        out.append(_observe(lambda: svc.get("run-2")))
        return out

    # Powertools dates its claims (IDEM# items) with datetime.now(), not time.time()
    _same_on_both(scenario, wall_clock=("expires_at", "in_progress_expires_ms"))
