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
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

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
            "pk": f"RUN#{run_id}", "sk": "RUN", "run_id": run_id, "workflow": workflow, "status": "RUNNING",
            "trigger_type": trigger_type, "started_at": started, "execution_arn": execution_arn,
            "gsi1pk": f"WF#{workflow}", "gsi1sk": f"{started}#{run_id}",
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
                  output: Any = None, ended_at: str | None = None, workflow: str | None = None) -> bool:
        """Record a final status once. Returns False if the run was already final."""
        fields: dict[str, Any] = {"status": status, "ended_at": ended_at or now_iso()}
        for key, val in (("error", error), ("cause", cause), ("workflow", workflow)):
            if val is not None:
                fields[key] = val
        if output is not None:
            fields["output"] = json.dumps(output)
        expr, names, values = _set_expression(fields)
        finals = {f":f{i}": v for i, v in enumerate(RUN_FINAL)}
        values.update(finals)
        try:
            self.table.update_item(
                Key={"pk": f"RUN#{run_id}", "sk": "RUN"}, UpdateExpression=expr,
                ConditionExpression=f"attribute_not_exists(#status) OR NOT #status IN ({', '.join(finals)})",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": f"RUN#{run_id}", "sk": "RUN"}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def list_runs(self, workflow: str, *, limit: int = 20) -> list[dict[str, Any]]:
        resp = self.table.query(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(f"WF#{workflow}"),
                                ScanIndexForward=False, Limit=limit)
        return [_plain(i) for i in resp.get("Items", [])]

    # ------------------------------------------------------------------ steps
    def _step_key(self, run_id: str, step_id: str, iteration: str) -> dict[str, str]:
        return {"pk": f"RUN#{run_id}", "sk": f"STEP#{step_id}" + (f"#{iteration}" if iteration else "")}

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

    def step_ended(self, run_id: str, step_id: str, *, status: str, iteration: str = "", output: Any = None,
                   error: str | None = None, attempt: int | None = None, step_type: str | None = None,
                   only_if_not_final: bool = False) -> bool:
        fields: dict[str, Any] = {"status": status, "ended_at": now_iso(), "step_id": step_id, "iteration": iteration,
                                  "expires_at": int(time.time()) + RECORD_TTL_SECS}
        if output is not None:
            fields["output"] = json.dumps(output)
        if error is not None:
            fields["error"] = error
        if attempt is not None:
            fields["attempts"] = attempt + 1
        if step_type:
            fields["step_type"] = step_type
        expr, names, values = _set_expression(fields)
        kwargs: dict[str, Any] = {}
        if only_if_not_final:
            finals = {f":f{i}": v for i, v in enumerate(STEP_FINAL)}
            values.update(finals)
            kwargs["ConditionExpression"] = f"attribute_not_exists(#status) OR NOT #status IN ({', '.join(finals)})"
        try:
            resp = self.table.update_item(Key=self._step_key(run_id, step_id, iteration), UpdateExpression=expr,
                                          ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                          ReturnValues="ALL_NEW" if _watchers else "NONE", **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        _tell_watchers(run_id, resp.get("Attributes"))
        return True

    def end_open_steps(self, run_id: str, *, status: str, error: str) -> int:
        """End every step record still open (running, or waiting for an approval) of a run that
        ended without them: a stopped run's Lambdas never report back. Returns how many."""
        n = 0
        for rec in self.steps(run_id):
            if rec.get("status") in STEP_OPEN and "step_id" in rec and self.step_ended(
                    run_id, rec["step_id"], iteration=str(rec.get("iteration") or ""), status=status,
                    error=error, only_if_not_final=True):
                n += 1
        return n

    def attempt_failed(self, run_id: str, step_id: str, *, iteration: str, attempt: int, error: str,
                       extra: dict[str, Any] | None = None) -> None:
        item = {"pk": f"RUN#{run_id}", "sk": f"ATTEMPT#{step_id}#{iteration}#{attempt:03d}", "step_id": step_id,
                "attempt": attempt + 1, "error": error, "at": now_iso(), "expires_at": int(time.time()) + RECORD_TTL_SECS}
        if extra:
            item["extra"] = json.dumps(extra)
        self.table.put_item(Item=item)

    def attempts(self, run_id: str, step_id: str, *, iteration: str = "") -> list[dict[str, Any]]:
        resp = self.table.query(KeyConditionExpression=Key("pk").eq(f"RUN#{run_id}")
                                & Key("sk").begins_with(f"ATTEMPT#{step_id}#{iteration}#"), ConsistentRead=True)
        return [_plain(i) for i in resp.get("Items", [])]

    def _query_run(self, run_id: str, sk_prefix: str) -> Iterator[dict[str, Any]]:
        """Every item of a run whose sort key starts with ``sk_prefix``, across pages, as stored."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(f"RUN#{run_id}")
                                  & Key("sk").begins_with(sk_prefix), "ConsistentRead": True}
        while True:
            resp = self.table.query(**kwargs)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def item_records(self, run_id: str, step_id: str, *, loops: str = "") -> dict[int, dict[str, Any]]:
        """A for_each step's item records (iteration ``<loops>/i<index>``), by index."""
        prefix = f"STEP#{step_id}#" + (f"{loops}/i" if loops else "i")
        out: dict[int, dict[str, Any]] = {}
        for item in self._query_run(run_id, prefix):
            index = str(item["sk"])[len(prefix):]
            if index.isdigit():
                out[int(index)] = _plain(item)
        return out

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        return [_plain(i) for i in self._query_run(run_id, "STEP#")]

def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's Decimals and JSON-encoded fields back to plain values."""
    out: dict[str, Any] = {}
    for k, v in item.items():
        if k in ("pk", "sk", "gsi1pk", "gsi1sk"):
            continue
        if k in ("output", "trigger", "extra") and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        elif hasattr(v, "as_integer_ratio") and not isinstance(v, bool | int | float):
            v = int(v) if v == int(v) else float(v)
        out[k] = v
    return out
