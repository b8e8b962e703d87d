"""Run records in one DynamoDB table (single-table design), shared by every function.

Items (``pk`` / ``sk``):

* ``RUN#<run>`` / ``RUN`` — the run: workflow, status, timings, error, output. ``gsi1pk`` =
  ``WF#<workflow>``, ``gsi1sk`` = ``<started_at>#<run>`` lists a workflow's runs newest first.
* ``RUN#<run>`` / ``STEP#<step>[#<iteration>]`` — a step: status, attempts, timings, output or its
  reference, error.
* ``RUN#<run>`` / ``SYNC#<step>[#<iteration>]`` — cross-branch signals (see store/sync.py).

Statuses only move forward: a conditional write refuses to overwrite a final status, so a late or
repeated event never undoes an end.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from boternity.store import dynamo, keys, slots
from boternity.store.blobs import reference_to
from boternity.store.dynamo import cancellation_codes, is_conditional_failure

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# Functions told of every step record this process writes, as stored after the write: the local
# engine's live progress (the CLI's lines, `boternity serve`) is pushed from here instead of
# polled from the table. Nothing watches in the cloud, where writes cost what they always did.
_watchers: list[Callable[[str, dict[str, Any]], None]] = []


def watch_steps(watcher: Callable[[str, dict[str, Any]], None]) -> None:
    """Call ``watcher(run_id, record)`` after each step record written in this process."""
    _watchers.append(watcher)


def unwatch_steps(watcher: Callable[[str, dict[str, Any]], None]) -> None:
    if watcher in _watchers:
        _watchers.remove(watcher)


def _tell_watchers(run_id: str, attributes: dict[str, Any] | None) -> None:
    if not attributes or not _watchers:
        return
    record = _plain(attributes)
    for watcher in list(_watchers):
        watcher(run_id, record)

# A run's input (its trigger payload) is kept in its record up to the size an execution starts
# with inline (compiler.limits.TRIGGER_INLINE_BYTES); above it, the record keeps the claim-check
# reference the execution starts with (store/blobs.py: the same content, the same reference) and
# the first RUN_INPUT_PREVIEW_BYTES of the text, so a reader without the bucket sees how it begins.
RUN_INPUT_PREVIEW_BYTES = 4 * 1024
# Attributes of a run item that hold JSON text (decoded on the way out).
_JSON_FIELDS = ("output", "trigger", "extra", "input")

RUN_FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
STEP_FINAL = ("completed", "skipped", "failed", "aborted", "timed_out")
STEP_OPEN = ("running", "waiting_approval")
DEFAULT_RETENTION_DAYS = 90  # as long as Step Functions keeps execution history


def _retention_days() -> int:
    """How long every record of a run is kept: BOTERNITY_RECORD_RETENTION_DAYS (the stack's
    RecordRetentionDays), else 90 days. Read once per process: a Lambda's environment is fixed."""
    text = os.environ.get("BOTERNITY_RECORD_RETENTION_DAYS", "").strip()
    try:
        days = int(text) if text else DEFAULT_RETENTION_DAYS
    except ValueError:
        days = DEFAULT_RETENTION_DAYS
    return days if 1 <= days <= 3650 else DEFAULT_RETENTION_DAYS


# Every item a run writes (the run, its steps, attempts, signals, approvals) expires this long
# after it was last written; DynamoDB's TTL on `expires_at` deletes it.
RECORD_TTL_SECS = _retention_days() * 86_400


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def iso_ms(text: str) -> str:
    """An ISO time as the run records write it (:func:`now_iso`: UTC, milliseconds)."""
    t = _instant(text)
    if t is None or t.tzinfo is None:
        return text
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def as_of(rec: dict[str, Any], now: datetime | None = None) -> dict[str, Any] | None:
    """A step record as it stands at ``now``. A static wait planned ahead (compiler/waits.py) is
    written once, with its start and end (``started_at``, ``ends_at``) before either happens, as
    ``running``: before its start there is no such step yet (None); from its end it is
    ``completed``, ended at ``ends_at``. Nothing else changes a static wait's times; a run that
    stops in the middle settles its records (runtime/finish.py). Any other record is as stored."""
    ends = rec.get("ends_at")
    if not ends or rec.get("status") != "running":
        return rec
    now = now or datetime.now(UTC)
    start, end = _instant(rec.get("started_at")), _instant(ends)
    if start is not None and start > now:
        return None
    if end is not None and end <= now:
        return {**rec, "status": "completed", "ended_at": ends}
    return rec


def table_name_from_env() -> str:
    name = os.environ.get("BOTERNITY_TABLE")
    if not name:
        raise RuntimeError("BOTERNITY_TABLE is not set: it names the DynamoDB table for run records")
    return name


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments; template.yaml declares the same keys."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": "gsi1",
            "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                          {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    }


def _set_expression(values: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """SET a = :a, ... with every attribute name aliased (DynamoDB reserves words like 'output')."""
    names = {f"#{k}": k for k in values}
    vals = {f":{k}": v for k, v in values.items()}
    return "SET " + ", ".join(f"#{k} = :{k}" for k in values), names, vals


@dataclass
class RunStore:
    table_name: str
    client: Any = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = boto3.resource("dynamodb")
        self.table = self.client.Table(self.table_name)

    @classmethod
    def from_env(cls) -> RunStore:
        return cls(table_name_from_env())

    # ------------------------------------------------------------------ runs
    def run_started(self, run_id: str, *, workflow: str, trigger_type: str, execution_arn: str | None = None,
                    trigger: Any = None) -> None:
        started = now_iso()
        item = {
            **keys.run(run_id), "run_id": run_id, "workflow": workflow, "status": "RUNNING",
            "trigger_type": trigger_type, "started_at": started, "execution_arn": execution_arn,
            **keys.run_index(workflow, started, run_id),
            "expires_at": int(time.time()) + RECORD_TTL_SECS,
        }
        if trigger is not None:
            item["trigger"] = json.dumps(trigger)
        try:
            self.table.put_item(Item={k: v for k, v in item.items() if v is not None},
                                ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def run_ended(self, run_id: str, *, status: str, error: str | None = None, cause: str | None = None,
                  output: Any = None, ended_at: str | None = None, workflow: str | None = None,
                  attempt: int | None = None) -> bool:
        """Record a final status once. Returns False if the run was already final, or (given the
        execution ``attempt``, its redrive count) if the run has been redriven past that attempt."""
        fields: dict[str, Any] = {"status": status, "ended_at": ended_at or now_iso()}
        for key, val in (("error", error), ("cause", cause), ("workflow", workflow)):
            if val is not None:
                fields[key] = val
        if output is not None:
            fields["output"] = json.dumps(output)
        expr, names, values = _set_expression(fields)
        finals = {f":f{i}": v for i, v in enumerate(RUN_FINAL)}
        values.update(finals)
        condition = f"(attribute_not_exists(#status) OR NOT #status IN ({', '.join(finals)}))"
        if attempt is not None:
            names["#redrives"] = "redrive_count"
            values[":attempt"] = attempt
            condition += " AND (attribute_not_exists(#redrives) OR #redrives <= :attempt)"
        try:
            self.table.update_item(
                Key=keys.run(run_id), UpdateExpression=expr, ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key=keys.run(run_id), ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def list_runs(self, workflow: str, *, limit: int = 20) -> list[dict[str, Any]]:
        resp = self.table.query(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(keys.runs_of_workflow(workflow)),
                                ScanIndexForward=False, Limit=limit)
        return [_plain(i) for i in resp.get("Items", [])]

    # ------------------------------------------------------------------ steps
    def _step_key(self, run_id: str, step_id: str, iteration: str) -> dict[str, str]:
        return keys.step(run_id, step_id, iteration)

    def step_record(self, run_id: str, step_id: str, *, iteration: str = "",
                    as_stored: bool = False) -> dict[str, Any] | None:
        """One step record as it stands now (:func:`as_of`; ``as_stored``: as written), or None."""
        item = self.table.get_item(Key=self._step_key(run_id, step_id, iteration), ConsistentRead=True).get("Item")
        if not item:
            return None
        return _plain(item) if as_stored else as_of(_plain(item))

    def step_started(self, run_id: str, step_id: str, *, iteration: str = "", attempt: int = 0,
                     step_type: str | None = None) -> None:
        t = now_iso()
        expr, names, values = _set_expression({"status": "running", "attempts": attempt + 1, "last_attempt_at": t,
                                               "iteration": iteration, "step_id": step_id,
                                               "step_type": step_type or "",
                                               "expires_at": int(time.time()) + RECORD_TTL_SECS})
        names["#started_at"] = "started_at"
        values[":started_at"] = t
        resp = self.table.update_item(
            Key=self._step_key(run_id, step_id, iteration),
            UpdateExpression=expr + ", #started_at = if_not_exists(#started_at, :started_at)",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW" if _watchers else "NONE",
        )
        _tell_watchers(run_id, resp.get("Attributes"))

    def step_planned(self, run_id: str, step_id: str, *, iteration: str = "", started_at: str, ends_at: str,
                     output: Any) -> bool:
        """A static wait planned ahead, whole: from ``started_at`` to ``ends_at`` (either may be
        to come), with the output it ends with; read back by the clock (:func:`as_of`). A record
        already final is left as it is (False)."""
        fields: dict[str, Any] = {"status": "running", "started_at": iso_ms(started_at), "ends_at": iso_ms(ends_at),
                                  "output": json.dumps(output), "step_type": "wait", "attempts": 1,
                                  "last_attempt_at": now_iso(), "iteration": iteration, "step_id": step_id,
                                  "expires_at": int(time.time()) + RECORD_TTL_SECS}
        return self._write_step(run_id, step_id, iteration, fields, unless_final=True)

    def forget_planned(self, run_id: str, step_id: str, *, iteration: str = "") -> bool:
        """Delete a planned wait's record that never started (its run stopped first)."""
        try:
            self.table.delete_item(
                Key=self._step_key(run_id, step_id, iteration),
                ConditionExpression="#s = :running AND attribute_exists(ends_at)",
                ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":running": "running"})
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def step_ended(self, run_id: str, step_id: str, *, status: str, iteration: str = "", output: Any = None,
                   error: str | None = None, attempt: int | None = None, step_type: str | None = None,
                   only_if_not_final: bool = False, child_execution_arn: str | None = None,
                   ended_at: str | None = None) -> bool:
        """``child_execution_arn``: a sub_workflow step's child execution; the record names it
        and the child's run id (the execution's name, the last part of its ARN). ``ended_at``:
        when the step ended, if not now (a record settled at its run's end: the run's stop)."""
        fields: dict[str, Any] = {"status": status, "ended_at": ended_at or now_iso(), "step_id": step_id,
                                  "iteration": iteration,
                                  "expires_at": int(time.time()) + RECORD_TTL_SECS}
        if child_execution_arn:
            fields["child_execution_arn"] = child_execution_arn
            fields["child_run_id"] = child_execution_arn.rsplit(":", 1)[-1]
        if output is not None:
            fields["output"] = json.dumps(output)
        if error is not None:
            fields["error"] = error
        if attempt is not None:
            fields["attempts"] = attempt + 1
        if step_type:
            fields["step_type"] = step_type
        return self._write_step(run_id, step_id, iteration, fields, unless_final=only_if_not_final)

    def _write_step(self, run_id: str, step_id: str, iteration: str, fields: dict[str, Any], *,
                    unless_final: bool) -> bool:
        """Set ``fields`` on a step record (``unless_final``: only while it is not final; False
        when it was). Watchers are told what the record became."""
        expr, names, values = _set_expression(fields)
        kwargs: dict[str, Any] = {}
        if unless_final:
            finals = {f":f{i}": v for i, v in enumerate(STEP_FINAL)}
            values.update(finals)
            kwargs["ConditionExpression"] = f"attribute_not_exists(#status) OR NOT #status IN ({', '.join(finals)})"
        try:
            resp = self.table.update_item(Key=self._step_key(run_id, step_id, iteration), UpdateExpression=expr,
                                          ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                          ReturnValues="ALL_NEW" if _watchers else "NONE", **kwargs)
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        _tell_watchers(run_id, resp.get("Attributes"))
        return True

    def note_child(self, run_id: str, step_id: str, *, iteration: str, execution_arn: str) -> bool:
        """Name the child run of a sub_workflow step record that is still running and names none
        yet (its end names it anyway). False when the record is no longer so."""
        try:
            self.table.update_item(
                Key=self._step_key(run_id, step_id, iteration),
                UpdateExpression="SET child_execution_arn = :arn, child_run_id = :id",
                ConditionExpression="#s = :running AND attribute_not_exists(child_run_id)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":arn": execution_arn, ":id": execution_arn.rsplit(":", 1)[-1],
                                           ":running": "running"})
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            return False
        return True

    def end_open_steps(self, run_id: str, *, status: str, error: str) -> int:
        """End every step record still open (running, or waiting for an approval) of a run that
        ended without them: a stopped run's Lambdas never report back. Returns how many."""
        n = 0
        for rec in self.steps(run_id, as_stored=True):
            if rec.get("status") not in STEP_OPEN or "step_id" not in rec:
                continue
            if rec.get("ends_at"):
                if self.settle_planned(rec, run_id=run_id, stop=None, status=status, error=error) == "ended":
                    n += 1
            elif self.step_ended(run_id, rec["step_id"], iteration=str(rec.get("iteration") or ""), status=status,
                                 error=error, only_if_not_final=True):
                n += 1
        return n

    def settle_planned(self, rec: dict[str, Any], *, run_id: str, stop: str | None, status: str,
                       error: str | None) -> str:
        """Settle a planned wait's record (as stored) when its run stopped at ``stop`` (ISO;
        None: now): completed at its end if it ended first (or ``status`` is "completed": its
        run succeeded), deleted if it had not started, else ended with ``status``. Returns what it did: "completed", "forgotten" or "ended"."""
        at = _instant(stop) if stop else datetime.now(UTC)
        at = at or datetime.now(UTC)
        step_id, iteration = str(rec["step_id"]), str(rec.get("iteration") or "")
        start, end = _instant(rec.get("started_at")), _instant(rec.get("ends_at"))
        if status == "completed" or (end is not None and end <= at):
            self.step_ended(run_id, step_id, iteration=iteration, status="completed", output=rec.get("output"),
                            only_if_not_final=True, ended_at=str(rec["ends_at"]))
            return "completed"
        if start is not None and start > at:
            self.forget_planned(run_id, step_id, iteration=iteration)
            return "forgotten"
        self.step_ended(run_id, step_id, iteration=iteration, status=status, error=error,
                        only_if_not_final=True, ended_at=stop)
        return "ended"

    def attempt_failed(self, run_id: str, step_id: str, *, iteration: str, attempt: int, error: str,
                       extra: dict[str, Any] | None = None) -> None:
        item = {**keys.attempt(run_id, step_id, iteration, attempt), "step_id": step_id,
                "attempt": attempt + 1, "error": error, "at": now_iso(), "expires_at": int(time.time()) + RECORD_TTL_SECS}
        if extra:
            item["extra"] = json.dumps(extra)
        self.table.put_item(Item=item)

    def attempts(self, run_id: str, step_id: str, *, iteration: str = "") -> list[dict[str, Any]]:
        resp = self.table.query(KeyConditionExpression=Key("pk").eq(keys.run_pk(run_id))
                                & Key("sk").begins_with(keys.attempts_prefix(step_id, iteration)), ConsistentRead=True)
        return [_plain(i) for i in resp.get("Items", [])]

    def _query_run(self, run_id: str, sk_prefix: str) -> Iterator[dict[str, Any]]:
        """Every item of a run whose sort key starts with ``sk_prefix``, across pages, as stored."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(keys.run_pk(run_id))
                                  & Key("sk").begins_with(sk_prefix), "ConsistentRead": True}
        while True:
            resp = self.table.query(**kwargs)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def item_records(self, run_id: str, step_id: str, *, loops: str = "") -> dict[int, dict[str, Any]]:
        """A for_each step's item records (iteration ``<loops>/i<index>``), by index."""
        prefix = keys.item_records_prefix(step_id, loops)
        out: dict[int, dict[str, Any]] = {}
        for item in self._query_run(run_id, prefix):
            index = str(item["sk"])[len(prefix):]
            if index.isdigit():
                out[int(index)] = _plain(item)
        return out

    def steps(self, run_id: str, *, as_stored: bool = False) -> list[dict[str, Any]]:
        """A run's step records as they stand now (:func:`as_of`: planned waits by the clock), or
        ``as_stored``, as written (for the code that settles them)."""
        recs = [_plain(i) for i in self._query_run(run_id, keys.STEP_PREFIX)]
        if as_stored:
            return recs
        now = datetime.now(UTC)
        return [r for r in (as_of(rec, now) for rec in recs) if r is not None]

    # ------------------------------------------------------------------ run control (service/runs.py)
    # The conditional writes behind start, cancel and redrive. Each returns what happened, in the
    # service's words; a DynamoDB failure that is not one of those outcomes propagates.

    def run_item(self, run_id: str) -> dict[str, Any] | None:
        """The run item exactly as stored (bookkeeping attributes included), read consistently."""
        item = self.table.get_item(Key=keys.run(run_id), ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def create_run(self, run_id: str, workflow: str, *, trigger_type: str, execution_arn: str, trigger: Any,
                   slot_limit: int, input_text: str | None = None) -> RunWrite:
        """Write a RUNNING run record, taking one of ``slot_limit`` concurrency slots in the same
        transaction when there is a limit (0: none). Never overwrites an existing run."""
        item = new_run_item(run_id, workflow, status="RUNNING", trigger_type=trigger_type,
                            execution_arn=execution_arn, trigger=trigger, slot_held=bool(slot_limit),
                            input_text=input_text)
        if not slot_limit:
            try:
                self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            except ClientError as exc:
                if is_conditional_failure(exc):
                    return RunWrite.DUPLICATE
                raise
            return RunWrite.CREATED
        try:
            self.table.meta.client.transact_write_items(TransactItems=[
                slots.take(self.table_name, workflow, slot_limit), put_new(self.table_name, item)])
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if len(codes) < 2:
                raise
            if codes[1] == "ConditionalCheckFailed":
                return RunWrite.DUPLICATE
            if codes[0] != "ConditionalCheckFailed":
                raise
            return RunWrite.SLOT_TAKEN
        return RunWrite.CREATED

    def attempt_items(self, run_id: str) -> list[dict[str, Any]]:
        """Every failed-attempt item of a run, as stored."""
        return list(self._query_run(run_id, keys.ATTEMPT_PREFIX))

    @staticmethod
    def runs_listing(workflow: str) -> dict[str, str]:
        """What every page key of a workflow's run listing carries (pins a page token to it)."""
        return {"gsi1pk": keys.runs_of_workflow(workflow)}

    def page_of_runs(self, workflow: str, *, status: str | None, limit: int,
                     start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` run items of a workflow, newest first, optionally of one status, from
        ``start`` on; and the key the next page starts after (None at the end)."""
        kwargs: dict[str, Any] = {"IndexName": "gsi1",
                                  "KeyConditionExpression": Key("gsi1pk").eq(keys.runs_of_workflow(workflow)),
                                  "ScanIndexForward": False}
        if status:
            kwargs["FilterExpression"] = Attr("status").eq(status.upper())
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            # With a filter, a page may hold fewer matches than asked: read on until full or done.
            kwargs["Limit"] = limit - len(out) if not status else max(limit, 25)
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self.table.query(**kwargs)
            items = resp.get("Items", [])
            for i, item in enumerate(items):
                out.append(item)
                if len(out) == limit:
                    # Stop inside the page: the next page starts just after the last run returned.
                    if i == len(items) - 1 and "LastEvaluatedKey" not in resp:
                        return out, None
                    return out, {k: item[k] for k in keys.KEY_ATTRIBUTES}
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        return out, None

    def claim_cancel(self, run_id: str, *, by: str, requested_at: str, now: int,
                     until: int) -> dict[str, Any] | None:
        """Make the caller the run's one canceller: the run item afterwards, or None when the run
        is missing, final, or another canceller's claim has not lapsed (``until`` > ``now``)."""
        finals = {f":f{i}": v for i, v in enumerate(RUN_FINAL)}
        try:
            return dict(self.table.update_item(
                Key=keys.run(run_id),
                UpdateExpression="SET cancel_requested_at = :t, cancel_claim_until = :until, cancelled_by = :by",
                ConditionExpression=f"attribute_exists(pk) AND NOT #s IN ({', '.join(finals)}) "
                                    "AND (attribute_not_exists(cancel_claim_until) OR cancel_claim_until < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":t": requested_at, ":until": until, ":now": now, ":by": by, **finals},
                ReturnValues="ALL_NEW")["Attributes"])
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        return None

    def note_cancel_cause(self, run_id: str, *, error: str, cause: str) -> bool:
        """Say who stopped an ABORTED run whose end said nothing. False if it was not so."""
        try:
            self.table.update_item(
                Key=keys.run(run_id), UpdateExpression="SET #e = :e, #c = :c",
                ConditionExpression="#s = :aborted AND attribute_not_exists(#e)",
                ExpressionAttributeNames={"#e": "error", "#c": "cause", "#s": "status"},
                ExpressionAttributeValues={":e": error, ":c": cause, ":aborted": "ABORTED"})
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            return False
        return True

    def reopen_for_redrive(self, run_id: str, *, status: str, workflow: str, slot_limit: int,
                           at: str) -> Reopen:
        """Make a run that ended ``status`` RUNNING again, its end cleared, with one of
        ``slot_limit`` slots taken in the same transaction (0: no limit)."""
        reopen: dict[str, Any] = {"Update": {
            "TableName": self.table_name, "Key": keys.run(run_id),
            "UpdateExpression": "SET #s = :running, redriven_at = :now, slot_held = :held "
                                "ADD redrive_count :one REMOVE ended_at, #e, #c, #o, slot_released, "
                                "cancel_requested_at, cancel_claim_until, cancelled_by",
            "ConditionExpression": "#s = :old",
            "ExpressionAttributeNames": {"#s": "status", "#e": "error", "#c": "cause", "#o": "output"},
            "ExpressionAttributeValues": {":running": "RUNNING", ":now": at, ":held": bool(slot_limit), ":one": 1,
                                          ":old": status},
        }}
        items = [reopen] + ([slots.take(self.table_name, workflow, slot_limit)] if slot_limit else [])
        try:
            self.table.meta.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return Reopen.RUN_CHANGED
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return Reopen.NO_SLOT
            raise
        return Reopen.REOPENED

    def restore_after_redrive(self, item: dict[str, Any]) -> None:
        """Put back the end of a run item as it was before :meth:`reopen_for_redrive`; its slot
        is marked released (the caller gives the counter back)."""
        names = {"#s": "status"}
        values: dict[str, Any] = {":old": item["status"], ":one": -1}
        sets = ["#s = :old"]
        for i, field in enumerate(("ended_at", "error", "cause", "output")):
            if field in item:
                names[f"#f{i}"] = field
                values[f":f{i}"] = item[field]
                sets.append(f"#f{i} = :f{i}")
        self.table.update_item(
            Key=keys.run(str(item["run_id"])),
            UpdateExpression="SET " + ", ".join(sets) + ", slot_released = :t ADD redrive_count :one REMOVE redriven_at",
            ExpressionAttributeNames=names, ExpressionAttributeValues={**values, ":t": True})

    def record_external_start(self, run_id: str, *, workflow: str, trigger_type: str, started_at: str,
                              execution_arn: str | None, input_text: str | None = None) -> None:
        """Fill in the record of a run started without the API; every attribute only where it is
        missing, so a record the API (or an earlier end event) wrote is left as it is.
        ``input_text``: the execution's input (a schedule's or rule's event, a child's input)."""
        values = {"run_id": run_id, "workflow": workflow, "status": "RUNNING", "trigger_type": trigger_type,
                  "started_at": started_at, "execution_arn": execution_arn,
                  **keys.run_index(workflow, started_at, run_id), "expires_at": int(time.time()) + RECORD_TTL_SECS,
                  # Started by Step Functions itself: a large input was not claim-checked.
                  **(input_fields(input_text, claim_checked=False) if input_text is not None else {})}
        values = {k: v for k, v in values.items() if v is not None}
        self.table.update_item(
            Key=keys.run(run_id),
            UpdateExpression="SET " + ", ".join(f"#{k} = if_not_exists(#{k}, :{k})" for k in values),
            ExpressionAttributeNames={f"#{k}": k for k in values},
            ExpressionAttributeValues={f":{k}": v for k, v in values.items()})

def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's Decimals and JSON-encoded fields back to plain values."""
    out: dict[str, Any] = {}
    for k, v in item.items():
        if k in keys.KEY_ATTRIBUTES:
            continue
        if k in _JSON_FIELDS and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        elif hasattr(v, "as_integer_ratio") and not isinstance(v, bool | int | float):
            v = int(v) if v == int(v) else float(v)
        out[k] = v
    return out


class RunWrite(Enum):
    """What :meth:`RunStore.create_run` did."""

    CREATED = "created"          # the run record is written (and its slot taken)
    DUPLICATE = "duplicate"      # a run with this id exists: nothing written
    SLOT_TAKEN = "slot_taken"    # every concurrency slot is held: nothing written


class Reopen(Enum):
    """What :meth:`RunStore.reopen_for_redrive` did."""

    REOPENED = "reopened"
    RUN_CHANGED = "run_changed"  # the run's status is no longer the one read
    NO_SLOT = "no_slot"          # every concurrency slot is held


def input_fields(text: str, *, claim_checked: bool = True) -> dict[str, Any]:
    """The run item's record of its input: ``input_size`` (bytes), and ``input`` (JSON text: the
    payload itself up to TRIGGER_INLINE_BYTES). Above that, ``input_preview`` (the first
    RUN_INPUT_PREVIEW_BYTES, cut at a character boundary) and, when the execution started from a
    claim-checked copy (``claim_checked``: every start through the API), ``input`` is that copy's
    reference; a run started elsewhere with a large input keeps only the preview."""
    # Here, not at the top: the compiler package stays out of the webhook function's cold start
    # (execution_input, which every start calls too, imports it the same way).
    from boternity.compiler.limits import TRIGGER_INLINE_BYTES

    data = text.encode()
    out: dict[str, Any] = {"input_size": len(data)}
    if len(data) <= TRIGGER_INLINE_BYTES:
        out["input"] = text
        return out
    out["input_preview"] = data[:RUN_INPUT_PREVIEW_BYTES].decode("utf-8", "ignore")
    if claim_checked:
        out["input"] = json.dumps(reference_to(data), separators=(",", ":"))
    return out


def new_run_item(run_id: str, workflow: str, *, status: str, trigger_type: str, execution_arn: str | None,
                 trigger: Any, slot_held: bool, input_text: str | None = None) -> dict[str, Any]:
    """A run item as a start writes it (the shape :meth:`RunStore.run_started` writes, plus the
    concurrency bookkeeping), so it can join a transaction with a slot or a queue item.
    ``input_text``: the payload the run starts with, as JSON text (see :func:`input_fields`)."""
    started = now_iso()
    item: dict[str, Any] = {
        **keys.run(run_id), "run_id": run_id, "workflow": workflow, "status": status,
        "trigger_type": trigger_type, "started_at": started, **keys.run_index(workflow, started, run_id),
        "expires_at": int(time.time()) + RECORD_TTL_SECS,
    }
    if execution_arn:
        item["execution_arn"] = execution_arn
    if trigger is not None:
        item["trigger"] = json.dumps(trigger)
    if slot_held:
        item["slot_held"] = True
    if input_text is not None:
        item.update(input_fields(input_text))
    if status == "QUEUED":
        item["queued_at"] = started
    return item


def put_new(table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    """A transaction's Put that never overwrites an existing item."""
    return {"Put": {"TableName": table_name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def create_table(name: str, **client_kwargs: Any) -> Any:
    """Create the run table as :func:`table_definition` describes it (the local engine's moto
    table; in the cloud, template.yaml creates it). Returns the low-level client that made it."""
    client = dynamo.client(**client_kwargs)
    client.create_table(**table_definition(name))
    return client
