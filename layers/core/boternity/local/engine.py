"""The local engine: the compiled state machine runs in moto's Step Functions interpreter, its
Lambda tasks dispatched in-process to the same handlers the cloud runs, its records written by the
same store code onto moto's DynamoDB. No AWS account, no Docker.
"""

from __future__ import annotations

import gc
import importlib
import io
import json
import os
import queue
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boternity.compiler import TaskTargets, compile_workflow
from boternity.compiler.records import flat_records
from boternity.compiler.targets import FUNCTIONS
from boternity.local import moto_patches
from boternity.store.run_records import RUN_FINAL, as_of, unwatch_steps, watch_steps

if TYPE_CHECKING:
    from collections.abc import Callable

    from boternity.model.workflow import Workflow

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "boternity-"
TABLE = "boternity"
APPROVAL_TOPIC = "boternity-approvals"
ROLE_NAME = "boternity-local"
# The collector's thresholds while an engine is open (generation 0 after this many allocations
# net of frees; Python's defaults are 700, 10, 10).
GC_THRESHOLDS = (100_000, 50, 1_000)


def _lazy_handler(kind: str) -> Callable[[dict[str, Any], Any], Any]:
    def call(event: dict[str, Any], context: Any) -> Any:
        module = importlib.import_module(f"boternity.handlers.{kind}")
        return module.lambda_handler(event, context)

    return call


@dataclass
class RunResult:
    run_id: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    steps: list[dict[str, Any]]
    record: dict[str, Any] | None
    execution_arn: str
    seconds: float


@dataclass
class _Watch:
    """One awaited run: step records pushed as they are written, and its end."""

    records: queue.SimpleQueue[dict[str, Any]] = field(default_factory=queue.SimpleQueue)
    ended: threading.Event = field(default_factory=threading.Event)
    settled: bool = False     # the events function handled the end event without error


@dataclass
class LocalEngine:
    """A context manager holding one in-process emulated AWS (moto)."""

    base_dir: Path = field(default_factory=Path.cwd)
    blob_dir: Path | None = None
    fast_retry: bool = False
    env: dict[str, str] = field(default_factory=dict)
    # Where parsed state machines are kept between processes (None: in this process only). The CLI
    # passes user_cache_dir(); see moto_patches.ParsedPrograms.
    parse_cache_dir: Path | None = None
    # Whether the functions also exist in moto's Lambda (for invocations by name; see __enter__).
    lambda_api: bool = True
    # DynamoDB answered by local/fast_dynamodb.py (exact, 7x faster than moto's; docs/local-engine.md)
    # instead of moto's own; False runs on moto's DynamoDB, as the differential tests do.
    fast_tables: bool = True

    def __enter__(self) -> LocalEngine:
        # moto logs every failed state at ERROR with its whole parse tree; run records and the CLI
        # already say what failed, in a sentence.
        import logging

        from moto import mock_aws

        logging.getLogger("moto").setLevel(logging.CRITICAL)
        # A run allocates many short-lived containers (states, payloads, history events) while
        # its history stays alive: at the default thresholds the collector rescans that growing
        # history so often that a 500-step chain cost 3.3 ms a step against 2.6 for 50 steps
        # (`boternity run`, docs/local-engine.md). Fewer collections make the cost flat in N.
        self._saved_gc = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        self._saved_env = {k: os.environ.get(k) for k in self._env()}
        os.environ.update(self._env())
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                                      "lambda": {"use_docker": False}})
        self._mock.start()
        moto_patches.apply()
        if self.fast_tables:
            from boternity.local import fast_dynamodb

            fast_dynamodb.enable()   # before the run table is created: the tables created after it are its
        moto_patches.set_fast_retry(self.fast_retry)
        moto_patches.set_parse_cache_dir(str(self.parse_cache_dir) if self.parse_cache_dir else None)
        import boto3

        from boternity.store.run_records import RunStore, create_table

        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.ddb = create_table(TABLE, region_name=REGION)   # kept for tests that read the whole table
        # What `notify: sns` publishes to (the template's ApprovalTopic); tests subscribe queues to it.
        boto3.client("sns", region_name=REGION).create_topic(Name=APPROVAL_TOPIC)
        iam = boto3.client("iam", region_name=REGION)
        self.role_arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}],
        }))["Role"]["Arn"]
        # The state machine's lambda:invoke tasks reach the handlers directly (moto_patches);
        # moto's Lambda functions exist for everything else that invokes a function by name (S3,
        # SNS and EventBridge notifications, the Lambda API): `boternity serve` needs them,
        # `boternity run` does not (a fifth of its start-up).
        lam = boto3.client("lambda", region_name=REGION) if self.lambda_api else None
        for kind in FUNCTIONS:
            name = PREFIX + kind
            if lam is not None:
                lam.create_function(FunctionName=name, Runtime="python3.12", Role=self.role_arn,
                                    Handler="app.lambda_handler", Code={"ZipFile": _dummy_zip()})
            moto_patches.HANDLERS[name] = _lazy_handler(kind)
        self.runs = RunStore(TABLE)
        # What the template's EventBridge rule does in the cloud: status changes → the events function.
        moto_patches.STATUS_LISTENERS.append(self._deliver_status)
        self.targets = TaskTargets.local(region=REGION, account=ACCOUNT, prefix=PREFIX)
        self.machines: dict[str, str] = {}
        self._definitions: dict[str, str] = {}
        # Runs someone waits for (run(), wait()): their pushed step records and end.
        self._watches: dict[str, _Watch] = {}
        watch_steps(self._on_record)
        return self

    def __exit__(self, *exc: object) -> None:
        unwatch_steps(self._on_record)
        if self._deliver_status in moto_patches.STATUS_LISTENERS:
            moto_patches.STATUS_LISTENERS.remove(self._deliver_status)
        if self.fast_tables:
            from boternity.local import fast_dynamodb

            fast_dynamodb.disable()   # its items back into moto's tables, for whoever reads moto after
        self._mock.stop()
        gc.set_threshold(*self._saved_gc)
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def _env(self) -> dict[str, str]:
        blob_dir = self.blob_dir or (Path(self.base_dir) / ".boternity" / "blobs")
        env = {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "BOTERNITY_TABLE": TABLE,
            "BOTERNITY_APPROVAL_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:{APPROVAL_TOPIC}",
            "BOTERNITY_BLOB_DIR": str(blob_dir),
            "BOTERNITY_BASE_DIR": str(self.base_dir),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "ERROR"),
            # Metrics are EMF lines on stdout and traces go to X-Ray: neither means anything here.
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        env.update(self.env)
        return env

    # ------------------------------------------------------------------ workflows and runs
    def deploy(self, wf: Workflow) -> str:
        definition = json.dumps(compile_workflow(wf, targets=self.targets))
        name = PREFIX + wf.name
        if name in self.machines:
            # moto parses a definition on every create and update (about 7 s for 500 steps), so an
            # unchanged one is not sent again (`boternity run` deploys, then runs, the same workflow).
            if self._definitions.get(name) != definition:
                self.sfn.update_state_machine(stateMachineArn=self.machines[name], definition=definition)
        else:
            self.machines[name] = self.sfn.create_state_machine(
                name=name, definition=definition, roleArn=self.role_arn, type="STANDARD")["stateMachineArn"]
        self._definitions[name] = definition
        return self.machines[name]

    def start(self, wf: Workflow, payload: Any = None, *, run_id: str | None = None,
              trigger_type: str = "manual") -> tuple[str, str]:
        arn = self.machines.get(PREFIX + wf.name) or self.deploy(wf)
        run_id = run_id or uuid.uuid4().hex
        self.runs.run_started(run_id, workflow=wf.name, trigger_type=trigger_type)
        from boternity.store.blobs import execution_input

        ex = self.sfn.start_execution(stateMachineArn=arn, name=run_id,
                                      input=execution_input(json.dumps(payload if payload is not None else {})))
        return run_id, ex["executionArn"]

    def wait(self, run_id: str, execution_arn: str, *, timeout: float | None = None,
             on_step: Callable[[dict[str, Any]], None] | None = None, poll: float = 0.05,
             on_approval: Callable[[dict[str, Any]], tuple[bool, str | None] | None] | None = None) -> RunResult:
        """Wait for a run's end; its step records are pushed to ``on_step`` as they are written
        (``store.run_records.watch_steps``), not polled. The end is the status event the events function
        handles (as EventBridge delivers it in the cloud); ``describe_execution`` is asked only
        every ``_CHECK_EVERY`` seconds, in case that event never comes."""
        t0 = time.monotonic()
        seen: dict[str, str] = {}
        asked: set[str] = set()
        waiting_approval: set[str] = set()
        latest: dict[str, str] = {}
        watch = self._watches.get(run_id)
        if watch is None:   # started without run(): read what was written before watching began
            watch = self._watch(run_id)
            for rec in self.runs.steps(run_id, as_stored=True):
                watch.records.put(rec)
        approvals = None
        if on_approval is not None:
            from boternity.approvals import ApprovalStore

            approvals = ApprovalStore(TABLE)

        # Planned waits' records, written whole before they start (store/run_records.py: as_of):
        # each is told as it stands by the clock, when that changes.
        planned: dict[str, dict[str, Any]] = {}

        def drain() -> None:
            for key, raw in list(planned.items()):
                shown = as_of(raw)
                if shown is not None:
                    if shown["status"] != "running":
                        del planned[key]
                    tell(key, shown)
            while True:
                try:
                    rec = watch.records.get_nowait()
                except queue.Empty:
                    return
                key = str(rec.get("step_id")) + "#" + str(rec.get("iteration", ""))
                if rec.get("ends_at") and rec.get("status") == "running":
                    planned[key] = rec
                    shown = as_of(rec)
                    if shown is None:
                        continue
                    rec = shown
                    if rec["status"] != "running":
                        del planned[key]
                else:
                    planned.pop(key, None)
                tell(key, rec)

        def tell(key: str, rec: dict[str, Any]) -> None:
            status = str(rec.get("status", ""))
            # Records read when the wait began can arrive after newer pushed ones, and two
            # writers can push out of order: a status never goes back (running <
            # waiting_approval < final), so an older one is ignored.
            if _rank(status) < _rank(latest.get(key)):
                return
            latest[key] = status
            if status == "waiting_approval":
                waiting_approval.add(key)
            else:
                waiting_approval.discard(key)
            if on_step is not None and "step_id" in rec and seen.get(key) != status:
                seen[key] = status
                on_step(rec)

        try:
            checked = 0.0   # asked at once too: the run may have ended before this wait began
            stopping = False
            while not watch.ended.wait(poll):
                drain()
                if approvals is not None and on_approval is not None and waiting_approval:
                    self._approvals(approvals, run_id, asked, on_approval)
                now = time.monotonic()
                if timeout is not None and not stopping and now - t0 > timeout:
                    stopping = True
                    self.sfn.stop_execution(executionArn=execution_arn, error="Local.Timeout",
                                            cause=f"no result within {timeout} s")
                if now - checked >= self._CHECK_EVERY:
                    checked = now
                    if self.sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
                        # Ended: its status event is being handled (or was lost). Give that a
                        # while before settling the end here instead.
                        watch.ended.wait(self._END_GRACE)
                        break
            d = self.sfn.describe_execution(executionArn=execution_arn)
            if not (watch.ended.is_set() and watch.settled):
                self._finish(d)
            drain()
        finally:
            self._watches.pop(run_id, None)
        steps = self.runs.steps(run_id)
        if on_step is not None:
            for rec in steps:   # anything whose push this wait missed
                key = str(rec.get("step_id")) + "#" + str(rec.get("iteration", ""))
                if "step_id" in rec and seen.get(key) != rec.get("status"):
                    seen[key] = str(rec.get("status", ""))
                    on_step(rec)
        record = self.runs.get_run(run_id)
        output = flat_records(json.loads(d["output"])) if d.get("output") else None
        return RunResult(run_id=run_id, status=d["status"], output=output, error=d.get("error"),
                         cause=d.get("cause"), steps=steps, record=record,
                         execution_arn=execution_arn, seconds=time.monotonic() - t0)

    _CHECK_EVERY = 1.0
    _END_GRACE = 30.0

    def _watch(self, run_id: str) -> _Watch:
        return self._watches.setdefault(run_id, _Watch())

    def _on_record(self, run_id: str, record: dict[str, Any]) -> None:
        watch = self._watches.get(run_id)
        if watch is not None:
            watch.records.put(record)

    def run(self, wf: Workflow, payload: Any = None, *, timeout: float | None = None,
            on_step: Callable[[dict[str, Any]], None] | None = None,
            on_approval: Callable[[dict[str, Any]], tuple[bool, str | None] | None] | None = None) -> RunResult:
        self.deploy(wf)
        run_id = uuid.uuid4().hex
        self._watch(run_id)   # before the execution starts, so no record is missed
        try:
            run_id, arn = self.start(wf, payload, run_id=run_id)
        except BaseException:
            self._watches.pop(run_id, None)
            raise
        return self.wait(run_id, arn, timeout=timeout, on_step=on_step, on_approval=on_approval)

    def _approvals(self, store: Any, run_id: str, asked: set[str],
                   on_approval: Callable[[dict[str, Any]], tuple[bool, str | None] | None]) -> None:
        for a in store.pending_for_run(run_id):
            if a["approval_id"] in asked:
                continue
            asked.add(a["approval_id"])
            decision = on_approval(a)
            if decision is not None:
                store.decide(a["approval_id"], approved=decision[0], approver="local", comment=decision[1])

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn)["events"]

    def _deliver_status(self, event: dict[str, Any]) -> None:
        from boternity.handlers.events import lambda_handler

        detail = event.get("detail") or {}
        watch = self._watches.get(str(detail.get("name") or "")) if detail.get("status") in RUN_FINAL else None
        try:
            lambda_handler(event, None)
            if watch is not None:
                watch.settled = True
        except Exception:  # noqa: BLE001 - a listener thread must not die loudly after the mock stopped
            pass   # not settled: wait() settles the end itself
        finally:
            if watch is not None:
                watch.ended.set()

    def _finish(self, d: dict[str, Any]) -> None:
        """Deliver the end event synchronously too, so wait() returns with the final records written
        (the listener path may still be in flight; both writes are conditional, so once wins)."""
        from boternity.handlers.events import lambda_handler

        stop = d.get("stopDate")
        event = {
            "version": "0", "id": uuid.uuid4().hex, "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": ACCOUNT, "region": REGION, "resources": [d["executionArn"]],
            "detail": {
                "executionArn": d["executionArn"], "stateMachineArn": d["stateMachineArn"], "name": d["name"],
                "status": d["status"], "startDate": int(d["startDate"].timestamp() * 1000),
                "stopDate": int(stop.timestamp() * 1000) if stop else None,
                "input": d.get("input"), "output": d.get("output"), "error": d.get("error"), "cause": d.get("cause"),
            },
        }
        lambda_handler(event, None)


def _rank(status: str | None) -> int:
    return {None: -1, "running": 0, "waiting_approval": 1}.get(status, 2)


def user_cache_dir() -> Path | None:
    """``$BOTERNITY_CACHE_DIR``, else ``$XDG_CACHE_HOME/boternity``, else ``~/.cache/boternity``
    (None when set to ``off``): what the CLI keeps between runs, each kind in a folder of its own."""
    explicit = os.environ.get("BOTERNITY_CACHE_DIR", "").strip()
    if explicit.lower() in ("off", "none", "0"):
        return None
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "boternity"


def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
    return buf.getvalue()
