"""Fault injection on the local engine: step functions that raise, time out, are throttled or die
mid-step; triggers that die between claiming a start and starting it; status events delivered
twice, late or out of order. Each case checks the final records: nothing lost, nothing run twice.

A death is :class:`ProcessKilled`, a ``BaseException``: like a killed process, no ``except
Exception`` in the code under test sees it, so whatever it had written stays as it was.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

import boternity.handlers.http as http_handler
from boternity.errors import StartInProgress
from boternity.handlers.api import lambda_handler as api
from boternity.handlers.events import lambda_handler as events
from boternity.handlers.webhook import lambda_handler as hook
from boternity.model import parse_workflow
from boternity.service.runs import RunService
from boternity.service.trigger_resources import SCHEDULE_TRIGGER_KEY
from boternity.validate import check_workflow
from tests.support.apigw import Reply, call, local_cloud, rest_event, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class ProcessKilled(BaseException):
    """The function's process dies here (OOM, timeout kill, host loss)."""


class FakeContext:
    """A Lambda context whose invocation has ``remaining_ms`` left (0: its deadline has passed)."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms
        self.function_name = "boternity-api"
        self.aws_request_id = "fault-injection"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def send(handler: Callable[..., dict[str, Any]], method: str, path: str, *, context: Any, **kw: Any) -> Reply:
    resp = handler(rest_event(method, path, **kw), context)
    raw = resp.get("body") or ""
    text = base64.b64decode(raw).decode() if resp.get("isBase64Encoded") else raw
    headers = {k: str(v) for k, v in (resp.get("headers") or {}).items()}
    headers.update({k: ", ".join(map(str, vs)) for k, vs in (resp.get("multiValueHeaders") or {}).items()})
    return Reply(status=int(resp["statusCode"]), headers=headers, text=text)


def die_once(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """Make ``RunService.<method>`` kill the process on its first call only. Returns the call count."""
    original = getattr(RunService, method)
    calls = [0]

    def dying(self: RunService, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise ProcessKilled(method)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RunService, method, dying)
    return calls


def executions(engine: Any, workflow: str) -> list[dict[str, Any]]:
    arn = call(api, "GET", f"/workflows/{workflow}").json["state_machine_arn"]
    return engine.sfn.list_executions(stateMachineArn=arn)["executions"]


def finished(run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = call(api, "GET", f"/runs/{run_id}").json
        return body if body["run"]["status"] in FINAL else None

    return wait_for(done, timeout)


def running_slots(workflow: str) -> int:
    item = boto3.resource("dynamodb").Table("boternity").get_item(
        Key={"pk": f"CONC#{workflow}", "sk": "CONC"}, ConsistentRead=True).get("Item") or {}
    return int(item.get("running") or 0)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One engine for the module (starting one costs seconds); each test deploys its own workflow."""
    from boternity.local.engine import LocalEngine

    base = tmp_path_factory.mktemp("faults")
    with LocalEngine(base_dir=base, blob_dir=base / "blobs", fast_retry=True) as engine, local_cloud(engine):
        yield engine


@pytest.fixture
def engine(cloud: Any) -> Any:
    return cloud


@pytest.fixture
def once(cloud: Any, request: pytest.FixtureRequest) -> str:
    """A fresh one-slot workflow (its own name, webhook path, claims and slot counter) for this test."""
    name = "once-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]
    deploy({**ONE_SLOT, "name": name, "triggers": [{"type": "webhook", "path": f"/{name}"}]})
    return name


def deploy(doc: dict[str, Any]) -> None:
    r = call(api, "PUT", f"/workflows/{doc['name']}", body=doc)
    assert r.status in (200, 201), r.text


ONE_SLOT = {"name": "once", "concurrency": 1, "on_limit": "reject",
            "triggers": [{"type": "webhook", "path": "/once"}],
            "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}

# Where the start dies: before anything but the claim is written, or after the run record
# (and its concurrency slot) and before StartExecution.
DEATHS = [pytest.param("_start", id="after-the-claim"),
          pytest.param("_start_execution", id="after-the-run-record")]


def api_start(workflow: str, context: Any, *, key: str = "order-1", payload: Any = None) -> Reply:
    return send(api, "POST", f"/workflows/{workflow}/runs", context=context, body=payload or {"n": 1},
                headers={"Idempotency-Key": key})


def hook_start(workflow: str, context: Any, *, delivery: str = "d-1", payload: Any = None) -> Reply:
    return send(hook, "POST", f"/hooks/{workflow}", context=context, body=payload or {"n": 1},
                headers={"Idempotency-Key": delivery})


# ---------------------------------------------------------------------- a trigger dies between claim and start


@pytest.mark.parametrize("where", DEATHS)
@pytest.mark.parametrize("route,code", [pytest.param(api_start, "idempotency_key_in_progress", id="api-key"),
                                        pytest.param(hook_start, "delivery_id_in_progress", id="webhook-delivery")])
def test_a_retry_while_a_dead_start_holds_its_claim_is_409_with_retry_after(cloud, once, monkeypatch, where, route, code):
    die_once(monkeypatch, where)
    with pytest.raises(ProcessKilled):
        route(once, FakeContext(remaining_ms=20_000))
    retry = route(once, FakeContext(remaining_ms=20_000))
    assert retry.status == 409, retry.text
    assert retry.error["code"] == code
    assert retry.error["message"].startswith("a run for this ") and "is being started; retry after" in \
        retry.error["message"]
    assert 1 <= int(retry.headers["Retry-After"]) <= 20
    assert executions(cloud, once) == []


@pytest.mark.parametrize("where", DEATHS)
def test_an_api_retry_after_the_deadline_takes_over_and_starts_exactly_one_run(cloud, once, monkeypatch, where):
    die_once(monkeypatch, where)
    with pytest.raises(ProcessKilled):
        api_start(once, FakeContext(remaining_ms=0))
    time.sleep(0.01)   # past the dead invocation's deadline (millisecond resolution)
    retry = api_start(once, FakeContext(remaining_ms=20_000))
    assert retry.status == 202, retry.text
    assert finished(retry.json["run_id"])["run"]["status"] == "SUCCEEDED"
    again = api_start(once, FakeContext(remaining_ms=20_000))
    assert again.status == 202 and again.json["run_id"] == retry.json["run_id"] and again.json["replayed"] is True
    assert len(executions(cloud, once)) == 1
    # The slot the dead start took was given back once: the workflow takes a new run.
    assert running_slots(once) == 0
    other = api_start(once, FakeContext(remaining_ms=20_000), key="order-2")
    # Started, not queued behind a leaked slot (a run this short may already be over when answered).
    assert other.status == 202 and other.json["status"] in ("RUNNING", "SUCCEEDED"), other.text


@pytest.mark.parametrize("where", DEATHS)
def test_a_webhook_redelivery_after_the_deadline_takes_over_and_starts_exactly_one_run(cloud, once, monkeypatch, where):
    die_once(monkeypatch, where)
    with pytest.raises(ProcessKilled):
        hook_start(once, FakeContext(remaining_ms=0))
    time.sleep(0.01)
    retry = hook_start(once, FakeContext(remaining_ms=20_000))
    assert retry.status == 202, retry.text
    assert finished(retry.json["run_id"])["run"]["status"] == "SUCCEEDED"
    again = hook_start(once, FakeContext(remaining_ms=20_000))
    assert again.status == 200 and again.json == {"status": "duplicate", "run_id": retry.json["run_id"],
                                                  "workflow": once}
    assert len(executions(cloud, once)) == 1 and running_slots(once) == 0


def test_ten_concurrent_starts_with_one_key_start_one_run(cloud, once):
    replies: list[Reply] = []

    def one() -> None:
        replies.append(api_start(once, FakeContext(remaining_ms=20_000), key="burst"))

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(replies) == 10
    accepted = [r for r in replies if r.status == 202]
    # Each request either started the run, was given that run back, or was told to retry.
    assert {r.status for r in replies} <= {202, 409}
    assert len({r.json["run_id"] for r in accepted}) == 1
    assert sum(1 for r in accepted if not r.json["replayed"]) == 1
    assert all(r.error["code"] == "idempotency_key_in_progress" for r in replies if r.status == 409)
    finished(accepted[0].json["run_id"])
    assert len(executions(cloud, once)) == 1


def test_a_key_reused_with_another_payload_is_422_and_starts_nothing(cloud, once):
    first = api_start(once, FakeContext(remaining_ms=20_000), payload={"n": 1})
    assert first.status == 202
    reused = api_start(once, FakeContext(remaining_ms=20_000), payload={"n": 2})
    assert reused.status == 422 and reused.error["code"] == "idempotency_key_reused"
    assert reused.error["message"] == "this Idempotency-Key was used with a different payload"
    finished(first.json["run_id"])
    assert len(executions(cloud, once)) == 1


CRON = {"name": "nightly", "triggers": [{"type": "cron", "schedule": "0 3 * * *"}],
        "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}


def test_a_schedule_invocation_that_died_is_retried_by_the_platform_and_starts_one_run(cloud, monkeypatch):
    deploy(CRON)
    monkeypatch.setenv("BOTERNITY_CLAIM_IN_PROGRESS_SECS", "1")   # no Lambda context here: the default deadline
    event = {SCHEDULE_TRIGGER_KEY: {"workflow": "nightly", "index": 0}, "scheduled_time": "2026-12-01T03:00:00Z"}
    die_once(monkeypatch, "_start_execution")
    with pytest.raises(ProcessKilled):
        hook(event, None)
    # An early retry must fail the invocation (so Scheduler retries again), never drop the occurrence.
    with pytest.raises(StartInProgress):
        hook(event, None)
    time.sleep(1.1)
    retried = hook(event, None)
    assert retried["status"] in ("RUNNING", "SUCCEEDED"), retried   # started (it may be over already)
    assert finished(retried["run_id"])["run"]["status"] == "SUCCEEDED"
    assert hook(event, None) == {"status": "duplicate", "run_id": retried["run_id"], "workflow": "nightly"}
    assert len(executions(cloud, "nightly")) == 1


# ---------------------------------------------------------------------- step functions that fail


def faulty_workflow() -> Any:
    w = parse_workflow({"name": "faulty", "steps": [
        {"id": "fetch", "type": "http", "config": {"url": "http://127.0.0.1:9/never-called"}},
        {"id": "after", "type": "wait", "depends_on": ["fetch"], "config": {"seconds": 0}}]})
    check_workflow(w)
    return w


def lambda_error(name: str, message: str) -> BaseException:
    # The local Lambda runtime reports type(exc).__name__ as the error, as AWS's does: a class
    # named like the platform's own errors makes Step Functions see exactly what AWS sends.
    return type(name, (Exception,), {})(message)


def throttle(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "Converse")


FAILING = [
    pytest.param(lambda: RuntimeError("boom in the step"), "step fetch failed (RuntimeError): boom in the step",
                 id="raises"),
    pytest.param(lambda: lambda_error("Sandbox.Timedout", "Task timed out after 3.00 seconds"),
                 "step fetch failed (Sandbox.Timedout): Task timed out after 3.00 seconds", id="times-out"),
    pytest.param(lambda: lambda_error("Runtime.ExitError", "Runtime exited with error: signal: killed"),
                 "step fetch failed (Runtime.ExitError): Runtime exited with error: signal: killed",
                 id="killed-between-started-and-ended"),
]


@pytest.mark.parametrize("fault,cause", FAILING)
def test_a_step_function_that_fails_fails_the_run_once_with_final_records(engine, monkeypatch, fault, cause):
    calls: list[str] = []

    def execute(sc: Any) -> Any:
        calls.append(sc.step_id)   # step_started is already written: the fault hits mid-step
        raise fault()

    monkeypatch.setattr(http_handler, "execute", execute)
    result = engine.run(faulty_workflow(), {}, timeout=60)
    assert (result.status, result.record["status"], result.record["cause"]) == ("FAILED", "FAILED", cause)
    steps = {s["step_id"]: s for s in result.steps}
    assert steps["fetch"]["status"] == "failed", "a step that died must not stay 'running'"
    assert steps.get("after", {}).get("status") != "completed"
    assert calls == ["fetch"], "a failure that is not transient is not retried"


THROTTLES = [
    pytest.param(lambda: lambda_error("Lambda.TooManyRequestsException", "Rate Exceeded."), id="lambda-invoke-throttled"),
    pytest.param(lambda: throttle("ThrottlingException"), id="boto-ThrottlingException"),
    pytest.param(lambda: throttle("TooManyRequestsException"), id="boto-TooManyRequestsException"),
]


@pytest.mark.parametrize("fault", THROTTLES)
def test_a_throttled_step_is_retried_and_completes_once(engine, monkeypatch, fault):
    calls: list[int] = []

    def execute(sc: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise fault()
        return {"fetched": True}

    monkeypatch.setattr(http_handler, "execute", execute)
    result = engine.run(faulty_workflow(), {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    steps = {s["step_id"]: s for s in result.steps}
    assert (steps["fetch"]["status"], steps["fetch"]["attempts"], steps["fetch"]["output"]) == \
        ("completed", 3, {"fetched": True})
    assert steps["after"]["status"] == "completed" and len(calls) == 3


def test_a_step_throttled_beyond_its_retries_fails_naming_the_throttle(engine, monkeypatch):
    monkeypatch.setattr(http_handler, "execute", lambda sc: (_ for _ in ()).throw(throttle("ThrottlingException")))
    result = engine.run(faulty_workflow(), {}, timeout=60)
    assert result.status == "FAILED"
    assert result.record["cause"] == "step fetch failed (StepRetryable): [throttled] AWS throttled the step " \
                                     "(ThrottlingException)"
    attempts = engine.runs.attempts(result.run_id, "fetch")
    assert [a["extra"]["code"] for a in attempts] == ["throttled"] * 3


# ---------------------------------------------------------------------- status events twice, late, out of order


# Long enough that the second run still holds the slot while the stale events arrive.
QUEUED = {"name": "queued", "concurrency": 1, "steps": [{"id": "nap", "type": "wait", "config": {"seconds": 4}}]}


def end_event(engine: Any, run_id: str, status: str | None = None) -> dict[str, Any]:
    d = engine.sfn.describe_execution(executionArn=call(api, "GET", f"/runs/{run_id}").json["run"]["execution_arn"])
    stop = d.get("stopDate")
    return {"version": "0", "id": f"evt-{run_id}-{status}", "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": "123456789012", "region": "us-east-1",
            "resources": [d["executionArn"]],
            "detail": {"executionArn": d["executionArn"], "stateMachineArn": d["stateMachineArn"], "name": d["name"],
                       "status": status or d["status"], "startDate": int(d["startDate"].timestamp() * 1000),
                       "stopDate": int(stop.timestamp() * 1000) if stop else None, "input": d.get("input"),
                       "output": d.get("output") if (status or d["status"]) == "SUCCEEDED" else None,
                       "error": "States.Timeout" if status == "TIMED_OUT" else None, "cause": None}}


def test_repeated_late_and_out_of_order_status_events_change_no_final_record(cloud):
    deploy(QUEUED)
    first = call(api, "POST", "/workflows/queued/runs", body={}).json
    second = call(api, "POST", "/workflows/queued/runs", body={}).json
    third = call(api, "POST", "/workflows/queued/runs", body={}).json
    assert [first["status"], second["status"], third["status"]] == ["RUNNING", "QUEUED", "QUEUED"]
    done = finished(first["run_id"])
    wait_for(lambda: call(api, "GET", f"/runs/{second['run_id']}").json["run"]["status"] == "RUNNING")
    # The first run's end again (EventBridge delivers at least once), its start late, then a
    # contradicting end out of order: none may free the second run's slot or touch the record.
    for event in [end_event(cloud, first["run_id"])] * 3 + [end_event(cloud, first["run_id"], "RUNNING"),
                                                            end_event(cloud, first["run_id"], "TIMED_OUT")]:
        events(event, None)
    assert call(api, "GET", f"/runs/{first['run_id']}").json == done
    assert running_slots("queued") == 1
    assert call(api, "GET", f"/runs/{third['run_id']}").json["run"]["status"] == "QUEUED"
    for run in (second, third):
        assert finished(run["run_id"])["run"]["status"] == "SUCCEEDED"
    names = sorted(e["name"] for e in executions(cloud, "queued"))
    assert names == sorted(r["run_id"] for r in (first, second, third)), "each run executed exactly once"
    assert running_slots("queued") == 0


# ---------------------------------------------------------------------- a decision racing a timeout


def test_a_decision_racing_the_approval_timeout_changes_nothing(engine, monkeypatch):
    import boternity.approvals as approvals_module
    from boternity.approvals import ApprovalStore
    from boternity.errors import Conflict

    w = parse_workflow({"name": "race", "steps": [
        # 3 s: the engine must see the approval PENDING before it times out, on a loaded machine too.
        {"id": "review", "type": "approval", "config": {"prompt": "Ship?", "timeout_secs": 3}},
        {"id": "ship", "type": "wait", "depends_on": ["review"], "condition": "steps.review.output.approved",
         "config": {"seconds": 0}}]})
    check_workflow(w)
    store = ApprovalStore("boternity")
    seen: dict[str, Any] = {}
    real_time = approvals_module.time

    class ClockBehind:
        """Our clock says the stored deadline is still ahead: the decision passes the store's
        check while Step Functions has already timed the task out."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        @staticmethod
        def time() -> float:
            return real_time.time() - 30

    def decide_late(approval: dict[str, Any]) -> None:
        seen["id"] = approval["approval_id"]
        # The decision arrives the moment Step Functions has timed the task out.
        wait_for(lambda: any(e["type"] == "TaskTimedOut"
                             for e in engine.history(engine.runs.get_run(approval["run_id"])["execution_arn"])),
                 timeout=20, poll=0.005)
        monkeypatch.setattr(approvals_module, "time", ClockBehind())
        try:
            seen["decided"] = store.decide(approval["approval_id"], approved=True, approver="late")
        except Conflict as exc:
            seen["error"] = str(exc)
        finally:
            monkeypatch.setattr(approvals_module, "time", real_time)

    result = engine.run(w, {}, timeout=30, on_approval=decide_late)
    assert "id" in seen, "the engine never saw the approval pending"
    assert "error" in seen, f"the late decision was accepted: {seen}"
    assert seen["error"].startswith(f"approval '{seen['id']}' ") and "expired" in seen["error"]
    record = store.get(seen["id"])
    assert record["status"] == "EXPIRED" and "approver" not in record and "decided_at" not in record
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["review"]["output"]["approved"] is False
    assert result.output["review"]["output"]["timed_out"] is True
    assert result.output["ship"]["status"] == "skipped"
    review = next(r for r in result.steps if r["step_id"] == "review")
    assert review["output"]["approved"] is False and review["output"]["timed_out"] is True
