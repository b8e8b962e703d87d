"""Run control: start (idempotent, concurrency-limited, queued), read, list, cancel and redrive.

The items behind it (written only by ``boternity.store``: keys in ``store/keys.py``, the run
record's writes in ``store/run_records.py``, slots in ``store/slots.py``, the queue in ``store/queue.py``):

* ``RUN#<run>`` / ``RUN`` — the run record, the same shape ``RunStore.run_started`` writes, plus
  ``slot_held`` / ``slot_released`` (concurrency bookkeeping), ``queue_sk`` (while QUEUED),
  ``redrive_count``. Status ``QUEUED`` is new: a run waiting for a concurrency slot.
* ``CONC#<workflow>`` / ``CONC`` — ``running``: how many of the workflow's runs hold a slot.
* ``QUEUE#<workflow>`` / ``<queued_at>#<run>`` — a queued run's payload and trigger, oldest first.
* ``IDEM#<workflow>`` / ``<scope>#<sha256>`` — a start-once claim for an Idempotency-Key or a
  trigger's delivery id (``boternity.store.idempotency``).

Concurrency is a counter taken in the same transaction that writes the run record, and given
back exactly once per run (``release_slot`` flips ``slot_released`` in the same transaction as
the decrement), so repeated or late status events cannot free a slot twice. The events function
calls :func:`on_status_change` for every "Step Functions Execution Status Change" event: at a
run's end it releases the slot and starts queued runs (:func:`release_slot`, :func:`start_queued`).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from boternity.approvals import ApprovalStore
from boternity.errors import (
    Conflict,
    NotAvailable,
    NotFound,
    PayloadTooLarge,
    StartInProgress,
    TooManyRequests,
    Unprocessable,
)
from boternity.runtime.log import logger
from boternity.service.pages import decode_token, encode_token, short_hash
from boternity.service.registry import Registry
from boternity.store import dynamo
from boternity.store.blobs import execution_input
from boternity.store.dynamo import plain
from boternity.store.idempotency import (
    DELIVERY,
    IDEMPOTENCY_KEY,
    ClaimInProgress,
    ClaimReused,
    ClaimScope,
    start_once,
)
from boternity.store.keys import KEY_ATTRIBUTES
from boternity.store.queue import Dequeue, RunQueue
from boternity.store.run_records import RUN_FINAL, Reopen, RunStore, RunWrite, now_iso
from boternity.store.slots import Slots

# Step Functions refuses execution input over 256 KiB; refusing it here gives the caller a 413
# instead of a run that fails to start.
RUN_PAYLOAD_MAX = 256 * 1024
# How long one cancel request owns a run's cancellation (from its claim to StopExecution); a
# canceller that died in between frees the run for the next cancel after this.
CANCEL_CLAIM_SECS = 60
# What can name a Step Functions execution (1-80 characters, no spaces, separators or control
# characters): anything else is no run, answered before it reaches a DynamoDB key.
RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,80}")
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
# Fields of the run item that are bookkeeping, not part of the run's story.
_INTERNAL = ("slot_held", "slot_released", "queue_sk", "expires_at", "payload_sha256", "cancel_claim_until")


# A for_each item's iteration key (``i<n>``, or ``<loops>/i<n>``: store/keys.item_records_prefix).
_ITEM_ITERATION = re.compile(r"(?:^|/)i\d+$")
# The history read for running children: one page, newest first (a running child was submitted
# recently; a page holds 1,000 events, the most GetExecutionHistory returns at once).
CHILD_HISTORY_EVENTS = 1000


def running_children(sfn: Any, execution_arn: str) -> dict[str, str]:
    """The latest child execution each state of an execution started (``startExecution.sync``),
    by state name (a sub_workflow step's state is named after its step id), from one page of its
    history."""
    events = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True,
                                       maxResults=CHILD_HISTORY_EVENTS)["events"]
    by_id = {e["id"]: e for e in events}
    found: dict[str, tuple[int, str]] = {}
    for e in events:
        details = e.get("taskSubmittedEventDetails") or {}
        if e.get("type") != "TaskSubmitted" or not str(details.get("resource", "")).startswith("startExecution"):
            continue
        try:
            arn = json.loads(details.get("output") or "{}").get("ExecutionArn")
        except (ValueError, AttributeError):
            continue
        # TaskSubmitted -> TaskStarted -> TaskScheduled -> TaskStateEntered, which names the state.
        prev = by_id.get(e.get("previousEventId"))
        while prev is not None and prev.get("type") != "TaskStateEntered":
            prev = by_id.get(prev.get("previousEventId"))
        if prev is None or not isinstance(arn, str):
            continue
        state = str((prev.get("stateEnteredEventDetails") or {}).get("name") or "")
        if state and (state not in found or found[state][0] < e["id"]):
            found[state] = (e["id"], arn)
    return {state: arn for state, (_, arn) in found.items()}


def execution_arn_for(state_machine_arn: str, run_id: str) -> str:
    """The ARN Step Functions gives an execution named ``run_id`` (fixed by AWS's naming)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + run_id


def payload_text(payload: Any) -> str:
    text = json.dumps({} if payload is None else payload, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode("utf-8")) > RUN_PAYLOAD_MAX:
        raise PayloadTooLarge(f"the payload is larger than {RUN_PAYLOAD_MAX // 1024} KiB",
                              details={"limit_bytes": RUN_PAYLOAD_MAX})
    return text


def public_run(item: dict[str, Any], *, with_input: bool = True) -> dict[str, Any]:
    """A run item as the API shows it. ``with_input`` False (the listings) leaves out the input,
    which may be 32 KiB a run."""
    out = {k: v for k, v in plain(item).items() if k not in _INTERNAL and k not in KEY_ATTRIBUTES}
    if not with_input:
        out.pop("input", None)
        out.pop("input_preview", None)
        out.pop("input_size", None)
    for k in ("output", "trigger", "input"):
        if isinstance(out.get(k), str):
            try:
                out[k] = json.loads(out[k])
            except ValueError:
                pass
    return out


@dataclass
class StartResult:
    run_id: str
    status: str
    workflow: str
    execution_arn: str | None = None
    duplicate: bool = False       # the run already existed (same delivery, same run id)
    replayed: bool = False        # returned for a repeated Idempotency-Key


class RunService:
    """Run control over one table; the Step Functions client is created on first use."""

    def __init__(self, table_name: str, *, sfn: Any = None, resource: Any = None, context: Any = None) -> None:
        """``context``: the Lambda context of the invocation (its deadline bounds start claims)."""
        self.table_name = table_name
        self._context = context
        self._resource = resource
        self._sfn = sfn
        self._ddb: Any = None

    # ------------------------------------------------------------------ plumbing
    @property
    def resource(self) -> Any:
        # One DynamoDB resource for every store this service uses (created on first use).
        if self._resource is None:
            self._resource = dynamo.resource()
        return self._resource

    @property
    def low_level_client(self) -> Any:
        # Powertools writes typed attribute values ({"S": ...}); the resource's client would
        # serialise them a second time.
        if self._ddb is None:
            self._ddb = dynamo.client()
        return self._ddb

    @property
    def sfn(self) -> Any:
        if self._sfn is None:
            self._sfn = boto3.client("stepfunctions")
        return self._sfn

    @property
    def registry(self) -> Registry:
        return Registry(self.table_name, resource=self._resource)

    @property
    def runs(self) -> RunStore:
        return RunStore(self.table_name, client=self.resource)

    @property
    def queue(self) -> RunQueue:
        return RunQueue(self.table_name, resource=self.resource)

    @property
    def slots(self) -> Slots:
        return Slots(self.table_name, resource=self.resource)

    # ------------------------------------------------------------------ start
    def start(self, workflow: str, payload: Any, *, trigger_type: str, trigger: Any = None,
              run_id: str | None = None, idempotency_key: str | None = None,
              record: dict[str, Any] | None = None) -> StartResult:
        """Start (or queue) a run of a registered workflow. Never waits for the run.

        ``run_id`` becomes the execution name: a deterministic id (a webhook delivery) makes a
        repeated start a duplicate instead of a second run. A start with an ``idempotency_key``
        or a ``run_id`` runs under a claim (``boternity.store.idempotency``): a repeat while the
        first is starting is a 409, after it the first run (same payload) or a 422 (another one).
        """
        text = payload_text(payload)
        record = record or self.registry.get(workflow)
        if record is None:
            raise NotFound(f"workflow '{workflow}' is not registered")
        if idempotency_key is None and run_id is None:
            return self._start(workflow, record, text, run_id=uuid.uuid4().hex, trigger_type=trigger_type,
                               trigger=trigger)
        digest = short_hash(text, 64)
        if idempotency_key is not None:
            scope, key = IDEMPOTENCY_KEY, idempotency_key
            # Derived, not random: an attempt that takes over a dead one's claim finds the run
            # record the dead one may have written, and finishes that start instead of adding a
            # second run (and a second concurrency slot) beside it.
            run_id = run_id or short_hash(f"{workflow}\n{idempotency_key}\n{digest}", 32)
        else:
            scope, key = DELIVERY, str(run_id)
        final_run_id = str(run_id)

        def claimed() -> dict[str, Any]:
            started = self._start(workflow, record, text, run_id=final_run_id, trigger_type=trigger_type,
                                  trigger=trigger)
            # A duplicate whose execution this call had to start is this call's start, not a repeat.
            resumed = started.duplicate and self._finish_interrupted_start(started, record, text)
            return {"run_id": started.run_id, "duplicate": started.duplicate and not resumed,
                    "status": started.status, "execution_arn": started.execution_arn}

        try:
            claim = start_once(self.table_name, client=self.low_level_client, scope=scope, workflow=workflow, key=key,
                               payload_hash=digest, context=self._context, start=claimed)
        except ClaimInProgress as exc:
            raise StartInProgress(
                f"a run for this {scope.noun} is being started; retry after {exc.retry_after_secs} s",
                code=f"{_code(scope)}_in_progress", details={"retry_after_secs": exc.retry_after_secs},
                retry_after=exc.retry_after_secs) from None
        except ClaimReused:
            raise Unprocessable(f"this {scope.noun} was used with a different payload",
                                code=f"{_code(scope)}_reused") from None
        first_id = str(claim.result.get("run_id") or final_run_id)
        if not claim.replayed and not claim.result.get("duplicate"):
            # What this start did (RUNNING or QUEUED), not what the run has become since: a short
            # run can have ended before this answer is made.
            if claim.result.get("status"):
                return StartResult(run_id=first_id, status=str(claim.result["status"]), workflow=workflow,
                                   execution_arn=claim.result.get("execution_arn"))
            rec = self.runs.get_run(first_id) or {}
            return StartResult(run_id=first_id, status=str(rec.get("status") or "RUNNING"), workflow=workflow,
                               execution_arn=rec.get("execution_arn"))
        result = self._duplicate(first_id, workflow)
        result.replayed = idempotency_key is not None
        return result

    def _finish_interrupted_start(self, started: StartResult, record: dict[str, Any], text: str) -> bool:
        """The run record existed when this claim was taken: the previous holder may have died
        after writing it and before StartExecution. Start the execution if it does not exist;
        True when this call started it."""
        if started.status != "RUNNING" or not started.execution_arn:
            return False   # queued (the queue starts it) or already final
        try:
            self.sfn.describe_execution(executionArn=started.execution_arn)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                raise
        logger.warning("finishing an interrupted start", extra={"run_id": started.run_id,
                                                                "workflow": started.workflow})
        self._start_execution(started.workflow, str(record["state_machine_arn"]), started.run_id, text,
                              slot=bool(int(record.get("concurrency") or 0)))
        return True

    def _start(self, workflow: str, record: dict[str, Any], text: str, *, run_id: str, trigger_type: str,
               trigger: Any) -> StartResult:
        sm_arn = str(record["state_machine_arn"])
        exec_arn = execution_arn_for(sm_arn, run_id)
        limit = int(record.get("concurrency") or 0)
        created = self.runs.create_run(run_id, workflow, trigger_type=trigger_type, execution_arn=exec_arn,
                                       trigger=trigger, slot_limit=limit, input_text=text)
        if created is RunWrite.DUPLICATE:
            return self._duplicate(run_id, workflow)
        if created is RunWrite.SLOT_TAKEN:
            if record.get("on_limit") == "reject":
                raise TooManyRequests(
                    f"workflow '{workflow}' already runs {limit} run{'s' if limit != 1 else ''} "
                    "(concurrency limit; on_limit: reject)", code="concurrency_limit",
                    details={"limit": limit}) from None
            return self._enqueue(workflow, run_id, text, trigger_type=trigger_type, trigger=trigger)
        self._start_execution(workflow, sm_arn, run_id, text, slot=bool(limit))
        logger.info("run started", extra={"run_id": run_id, "workflow": workflow, "trigger_type": trigger_type})
        return StartResult(run_id=run_id, status="RUNNING", workflow=workflow, execution_arn=exec_arn)

    def _start_execution(self, workflow: str, sm_arn: str, run_id: str, text: str, *, slot: bool) -> None:
        try:
            self.sfn.start_execution(stateMachineArn=sm_arn, name=run_id, input=execution_input(text))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ExecutionAlreadyExists":
                return  # a retry after a crash between the record and the start: the run exists
            self.runs.run_ended(run_id, status="FAILED", error="Boternity.StartFailed", cause=code,
                                workflow=workflow)
            if slot:
                release_slot(self.table_name, workflow, run_id, resource=self._resource)
            if code in ("StateMachineDoesNotExist", "StateMachineDeleting"):
                raise Conflict(f"the state machine of workflow '{workflow}' is gone; PUT the workflow again",
                                    code="state_machine_missing") from None
            if code in ("ExecutionLimitExceeded", "ThrottlingException"):
                raise TooManyRequests("Step Functions refused a new execution (limit); retry later",
                                      code="execution_limit") from None
            raise

    def _duplicate(self, run_id: str, workflow: str) -> StartResult:
        rec = self.runs.get_run(run_id) or {}
        return StartResult(run_id=run_id, status=str(rec.get("status") or "RUNNING"),
                           workflow=str(rec.get("workflow") or workflow),
                           execution_arn=rec.get("execution_arn"), duplicate=True)

    # ------------------------------------------------------------------ queue
    def _enqueue(self, workflow: str, run_id: str, text: str, *, trigger_type: str, trigger: Any) -> StartResult:
        if self.queue.enqueue(run_id, workflow, text, trigger_type=trigger_type,
                              trigger=trigger) is RunWrite.DUPLICATE:
            return self._duplicate(run_id, workflow)
        logger.info("run queued", extra={"run_id": run_id, "workflow": workflow})
        # A run may have ended between the refused slot and the enqueue: without this, the new
        # run would wait for the *next* run end (or forever, if none is running any more).
        start_queued(self.table_name, workflow, resource=self._resource, sfn=self._sfn)
        rec = self.runs.get_run(run_id) or {}
        return StartResult(run_id=run_id, status=str(rec.get("status") or "QUEUED"), workflow=workflow,
                           execution_arn=rec.get("execution_arn"))

    # ------------------------------------------------------------------ read
    def get(self, run_id: str) -> dict[str, Any]:
        runs = self.runs
        item = runs.run_item(run_id)
        if not item:
            raise NotFound(f"run '{run_id}' not found")
        steps = [s for s in runs.steps(run_id) if "step_id" in s]
        errors: dict[str, list[dict[str, Any]]] = {}
        for a in runs.attempt_items(run_id):
            a = plain(a)
            errors.setdefault(str(a.get("step_id")), []).append(
                {"attempt": a.get("attempt"), "error": a.get("error"), "at": a.get("at")})
        for s in steps:
            s.pop("expires_at", None)
            if s["step_id"] in errors:
                s["attempt_errors"] = errors[s["step_id"]]
        steps.sort(key=lambda s: (str(s.get("started_at") or s.get("ended_at") or "~"), str(s.get("step_id"))))
        self._name_running_children(run_id, str(item.get("execution_arn") or ""), steps)
        return {"run": public_run(item), "steps": steps}

    def _name_running_children(self, run_id: str, execution_arn: str, steps: list[dict[str, Any]]) -> None:
        """Name the child run of each running sub_workflow step whose record names none yet.

        The parent's state machine names its child itself (``States.UUID()``), and the step's
        record is told only when the child ends; meanwhile the child's ARN is in the parent's
        history (the task's ``TaskSubmitted`` event). Read once, then written into the record, so
        later reads find it there. ``for_each`` items run side by side under one state name and
        are left to their ends."""
        waiting = [s for s in steps if s.get("step_type") == "sub_workflow" and s.get("status") == "running"
                   and not s.get("child_run_id") and not _ITEM_ITERATION.search(str(s.get("iteration") or ""))]
        if not waiting or not execution_arn:
            return
        try:
            children = running_children(self.sfn, execution_arn)
        except ClientError as exc:
            # The answer does without the link (the record names it when the child ends).
            logger.warning("child runs not read", extra={"run_id": run_id,
                                                         "code": exc.response.get("Error", {}).get("Code")})
            return
        for s in waiting:
            arn = children.get(str(s["step_id"]))
            if arn and self.runs.note_child(run_id, str(s["step_id"]), iteration=str(s.get("iteration") or ""),
                                            execution_arn=arn):
                s["child_execution_arn"], s["child_run_id"] = arn, arn.rsplit(":", 1)[-1]

    def list(self, workflow: str, *, status: str | None = None, limit: int = 20,
             next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """A workflow's runs, newest first, optionally of one status; paged by ``next_token``."""
        start = decode_token(next_token, expect=RunStore.runs_listing(workflow))
        items, last = self.runs.page_of_runs(workflow, status=status, limit=limit, start=start)
        return [public_run(item, with_input=False) for item in items], encode_token(last)

    # ------------------------------------------------------------------ cancel
    def cancel(self, run_id: str, *, by: str | None = None) -> dict[str, Any]:
        """Stop a run. Exactly one cancel wins (a conditional write claims it before StopExecution):
        it answers; every other one, concurrent or later, gets 409 ``already_cancelled`` (or
        ``run_ended`` when the run ended on its own), as Temporal answers a second cancel request."""
        cause = f"cancelled by {by}" if by else "cancelled through the API"
        item = self._claim_cancel(run_id, by)
        status = item.get("status")
        workflow = str(item.get("workflow") or "")
        if status == "QUEUED" and item.get("queue_sk"):
            if not self.queue.remove(workflow, str(item["queue_sk"])):
                # start_queued took it first; its claim refuses a run being cancelled, so the run
                # is either still QUEUED (never to start) or RUNNING (stop it below).
                item = self.runs.run_item(run_id) or {}
            if item.get("status") == "QUEUED":
                self.runs.run_ended(run_id, status="ABORTED", error="Boternity.Cancelled", cause=cause)
                return {"run_id": run_id, "status": "ABORTED", "cancelled_approvals": 0}

        # Approvals first: a decision landing while the run is being stopped then gets 409 instead
        # of resuming a run on its way out (and the count is ours, not the end event's).
        approvals = ApprovalStore(self.table_name, resource=self.resource, sfn=self.sfn)
        since = now_iso()
        approvals.cancel_for_run(run_id)
        final = "ABORTED"
        arn = item.get("execution_arn")
        if arn:
            try:
                self.sfn.stop_execution(executionArn=arn, error="Boternity.Cancelled", cause=cause)
                d = self.sfn.describe_execution(executionArn=arn)
                # A run that ended on its own just before the stop keeps its real end.
                final = d["status"] if d["status"] in RUN_FINAL else "ABORTED"
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("ExecutionDoesNotExist", "StateMachineDoesNotExist"):
                    raise
        if final == "ABORTED" and not self.runs.run_ended(run_id, status=final, error="Boternity.Cancelled",
                                                          cause=cause):
            # The end event won the race; say who stopped the run where it said nothing.
            self.runs.note_cancel_cause(run_id, error="Boternity.Cancelled", cause=cause)
        elif final != "ABORTED":
            self.runs.run_ended(run_id, status=final)
        if final == "ABORTED":
            # The events function does this too when the ABORTED event arrives (in the cloud, a
            # while later); the caller reading the run right after this answer sees it done.
            self.runs.end_open_steps(run_id, status="aborted", error="run aborted")
        # The events function does the same when the ABORTED event arrives; both are idempotent,
        # and doing it here frees the slot without waiting for the event.
        if workflow:
            release_slot(self.table_name, workflow, run_id, resource=self._resource)
            start_queued(self.table_name, workflow, resource=self._resource, sfn=self._sfn)
        if final != "ABORTED":
            raise Conflict(f"run '{run_id}' ended ({final}) before it could be stopped; nothing was cancelled",
                                code="run_ended", details={"status": final})
        # Counted after the stop: a decision claimed just before the approvals were closed is
        # undone if the stop overtook it, and its approval then ended because of this cancel too.
        cancelled = approvals.cancelled_by_cancel(run_id, since)
        rec = self.runs.get_run(run_id) or {}
        return {"run_id": run_id, "status": rec.get("status", final), "cancelled_approvals": cancelled}

    def _claim_cancel(self, run_id: str, by: str | None) -> dict[str, Any]:
        """The one conditional write that makes this request the run's canceller; returns the run.

        The claim lapses after ``CANCEL_CLAIM_SECS``, so a canceller that died before
        StopExecution does not leave a run nobody can cancel."""
        if not RUN_ID.fullmatch(run_id):
            raise NotFound("run not found")
        now = int(time.time())
        claimed = self.runs.claim_cancel(run_id, by=by or "the API", requested_at=now_iso(), now=now,
                                         until=now + CANCEL_CLAIM_SECS)
        if claimed is not None:
            return claimed
        item = self.runs.run_item(run_id)
        if not item:
            raise NotFound(f"run '{run_id}' not found")
        status = str(item.get("status"))
        if "cancel_requested_at" in item and status in ("ABORTED", "QUEUED", "RUNNING"):
            when = "was already cancelled" if status == "ABORTED" else "is already being cancelled"
            raise Conflict(f"run '{run_id}' {when} (by {item.get('cancelled_by')} at "
                                f"{item.get('cancel_requested_at')})", code="already_cancelled",
                                details={"status": status, "cancelled_by": item.get("cancelled_by"),
                                         "cancel_requested_at": item.get("cancel_requested_at")})
        raise Conflict(f"run '{run_id}' already ended ({status}); there is nothing to cancel",
                            code="run_ended", details={"status": status})

    # ------------------------------------------------------------------ redrive
    def redrive(self, run_id: str) -> dict[str, Any]:
        """RedriveExecution: the same execution resumes from the step that failed.

        The run record is reopened (RUNNING) *before* the redrive, since a final status can never
        be overwritten afterwards; if the redrive is refused, the record is put back.
        """
        item = self.runs.run_item(run_id)
        if not item:
            raise NotFound(f"run '{run_id}' not found")
        status = str(item.get("status"))
        if status not in REDRIVABLE or not item.get("execution_arn"):
            raise Conflict(f"run '{run_id}' is {status}: only failed, timed-out or aborted runs can be redriven",
                                code="not_redrivable")
        workflow = str(item.get("workflow") or "")
        wf = self.registry.get(workflow) if workflow else None
        limit = int((wf or {}).get("concurrency") or 0)
        reopened = self.runs.reopen_for_redrive(run_id, status=status, workflow=workflow, slot_limit=limit,
                                                at=now_iso())
        if reopened is not Reopen.REOPENED:
            if reopened is Reopen.RUN_CHANGED:
                raise Conflict(f"run '{run_id}' changed while being redriven; try again") from None
            if reopened is Reopen.NO_SLOT:
                raise TooManyRequests(f"workflow '{workflow}' has no free concurrency slot to redrive into",
                                      code="concurrency_limit", details={"limit": limit}) from None
        try:
            resp = self.sfn.redrive_execution(executionArn=item["execution_arn"])
        except NotImplementedError:
            self._restore(item, limit)
            raise NotAvailable("RedriveExecution is not available here: the emulated Step Functions (moto) does not "
                               "implement it; the local engine provides it when boternity.local.cloud_patches is "
                               "applied, and AWS always does", code="redrive_unavailable") from None
        except ClientError as exc:
            self._restore(item, limit)
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ExecutionNotRedrivable", "ExecutionDoesNotExist", "StateMachineDoesNotExist"):
                raise Conflict(f"run '{run_id}' cannot be redriven: {code}", code="not_redrivable") from None
            if code == "ExecutionLimitExceeded":
                raise TooManyRequests("Step Functions refused the redrive (limit); retry later",
                                      code="execution_limit") from None
            raise
        redrive_date = resp.get("redriveDate")
        logger.info("run redriven", extra={"run_id": run_id, "workflow": workflow})
        return {"run_id": run_id, "status": "RUNNING", "redrive_count": int(item.get("redrive_count") or 0) + 1,
                "redrive_date": redrive_date.isoformat() if hasattr(redrive_date, "isoformat") else redrive_date}

    def _restore(self, item: dict[str, Any], limit: int) -> None:
        """Undo a reopen whose redrive was refused: the record's end as it was, the slot given back."""
        self.runs.restore_after_redrive(item)
        if limit:
            self.slots.give_back(str(item.get("workflow")))


def _code(scope: ClaimScope) -> str:
    return "idempotency_key" if scope is IDEMPOTENCY_KEY else "delivery_id"


# ---------------------------------------------------------------------- for the events function


def release_slot(table: str, workflow: str, run_id: str, *, resource: Any = None) -> bool:
    """Give back the concurrency slot ``run_id`` holds, once. Returns False when it held none
    (no limit, a queued run, or already released): safe to call for every end event."""
    return Slots(table, resource=resource).release(workflow, run_id)


def start_queued(table: str, workflow: str, *, max_starts: int = 25, resource: Any = None,
                 sfn: Any = None) -> list[str]:
    """Start queued runs of ``workflow``, oldest first, while slots are free. Returns their ids.

    Each start takes the slot, removes the queue item and marks the run RUNNING in one
    transaction, so two callers (two run ends at once) never start the same run.
    """
    svc = RunService(table, sfn=sfn, resource=resource)
    queue = svc.queue
    started: list[str] = []
    record: dict[str, Any] | None = None
    while len(started) < max_starts:
        queued = queue.oldest(workflow)
        if queued is None:
            break
        record = record or svc.registry.get(workflow)
        if record is None:
            break  # deleting a workflow aborts its queue; nothing to start
        limit = int(record.get("concurrency") or 0)
        run_id = queued.run_id
        exec_arn = execution_arn_for(str(record["state_machine_arn"]), run_id)
        taken = queue.dequeue(queued, workflow=workflow, execution_arn=exec_arn, slot_limit=limit)
        if taken is Dequeue.NO_SLOT:
            break  # no free slot: the next run end tries again
        if taken is Dequeue.NOT_QUEUED:
            # The run is no longer QUEUED (cancelled): drop its stale queue item and go on.
            queue.drop(queued)
            continue
        if taken is Dequeue.TAKEN:
            continue  # another caller took this one
        try:
            svc._start_execution(workflow, str(record["state_machine_arn"]), run_id, queued.payload,
                                 slot=bool(limit))
        except Exception:  # noqa: BLE001 - the run is recorded FAILED; keep starting the others
            logger.exception("queued run failed to start", extra={"run_id": run_id, "workflow": workflow})
            continue
        logger.info("queued run started", extra={"run_id": run_id, "workflow": workflow})
        started.append(run_id)
    return started


def on_status_change(event: dict[str, Any], table: str | None = None, *, prefix: str | None = None,
                     resource: Any = None, sfn: Any = None) -> dict[str, Any]:
    """What the events function does with each "Step Functions Execution Status Change" event,
    besides ``finish_run``: record runs that started without the API (cron schedules and event
    rules start executions directly), and at a run's end give back its slot and start queued runs.
    Idempotent: EventBridge may deliver an event twice, or out of order."""

    detail = event.get("detail") or {}
    run_id = detail.get("name")
    status = detail.get("status")
    table = table or os.environ.get("BOTERNITY_TABLE") or ""
    if not run_id or not table:
        return {"run_id": run_id, "status": status}
    prefix = prefix if prefix is not None else (os.environ.get("BOTERNITY_STATE_MACHINE_PREFIX") or "boternity-")
    machine = str(detail.get("stateMachineArn") or "").rsplit(":", 1)[-1]
    derived = machine[len(prefix):] if machine.startswith(prefix) else machine
    runs = RunStore(table, client=resource or dynamo.resource())
    if status == "RUNNING":
        _record_external_start(runs, run_id, derived, detail)
        return {"run_id": run_id, "status": status}
    if status not in RUN_FINAL:
        return {"run_id": run_id, "status": status}
    item = runs.run_item(run_id) or {}
    workflow = str(item.get("workflow") or derived)
    released = release_slot(table, workflow, run_id, resource=resource)
    started = start_queued(table, workflow, resource=resource, sfn=sfn) if workflow else []
    return {"run_id": run_id, "status": status, "released": released, "started": started}


def _record_external_start(runs: RunStore, run_id: str, workflow: str, detail: dict[str, Any]) -> None:
    """Fill in the record of a run the API did not start; never touches a run that has one.

    Every attribute uses if_not_exists, so an API-started run, or an end event that arrived
    first and already wrote a final status, is left as it is.
    """
    started = now_iso()
    try:
        payload = json.loads(detail.get("input") or "{}")
    except ValueError:
        payload = None
    kind = "external"
    if isinstance(payload, dict):
        if "scheduled_time" in payload:
            kind = "cron"
        elif "detail-type" in payload and "source" in payload:
            kind = "event"
    text = detail.get("input")
    runs.record_external_start(run_id, workflow=workflow, trigger_type=kind, started_at=started,
                               execution_arn=detail.get("executionArn"),
                               input_text=text if isinstance(text, str) and payload is not None else None)
