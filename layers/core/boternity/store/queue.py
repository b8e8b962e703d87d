"""Runs waiting for a concurrency slot: ``QUEUE#<workflow>`` / ``<queued_at>#<run>``, oldest first.

A queued run has two items: its run record (status ``QUEUED``, ``queue_sk`` naming its queue
item) and the queue item (payload and trigger), written in one transaction. A dequeue removes the
queue item, marks the run RUNNING and takes the slot in one transaction, so two callers (two run
ends at once) never start the same run, and a run being cancelled never starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from boternity.store import dynamo, keys, slots
from boternity.store.dynamo import cancellation_codes, is_conditional_failure
from boternity.store.run_records import RECORD_TTL_SECS, RunWrite, new_run_item, now_iso, put_new

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class QueuedRun:
    run_id: str
    payload: str                                    # the execution input, as sent
    key: dict[str, Any] = field(repr=False)         # the queue item's own key


class Dequeue(Enum):
    """What :meth:`RunQueue.dequeue` did."""

    DEQUEUED = "dequeued"        # the run is RUNNING and holds a slot: start its execution
    NO_SLOT = "no_slot"          # every slot is held: the next run end tries again
    NOT_QUEUED = "not_queued"    # the run is no longer QUEUED (cancelled): its queue item is stale
    TAKEN = "taken"              # another caller dequeued it first


class RunQueue:
    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self.table_name = table_name
        self.table = (resource or dynamo.resource()).Table(table_name)

    def enqueue(self, run_id: str, workflow: str, payload: str, *, trigger_type: str, trigger: Any) -> RunWrite:
        """Write a QUEUED run record and its queue item together. DUPLICATE when the run exists."""
        item = new_run_item(run_id, workflow, status="QUEUED", trigger_type=trigger_type, execution_arn=None,
                            trigger=trigger, slot_held=False, input_text=payload)
        qsk = keys.queue_sk(item["started_at"], run_id)
        item["queue_sk"] = qsk
        queued = {**keys.queued(workflow, qsk), "run_id": run_id, "workflow": workflow, "payload": payload,
                  "expires_at": int(time.time()) + RECORD_TTL_SECS}
        try:
            self.table.meta.client.transact_write_items(TransactItems=[put_new(self.table_name, item),
                                                                       put_new(self.table_name, queued)])
        except ClientError as exc:
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return RunWrite.DUPLICATE
            raise
        return RunWrite.CREATED

    def oldest(self, workflow: str) -> QueuedRun | None:
        resp = self.table.query(KeyConditionExpression=Key("pk").eq(keys.queue_pk(workflow)), Limit=1,
                                ConsistentRead=True)
        items = resp.get("Items", [])
        if not items:
            return None
        q = items[0]
        return QueuedRun(run_id=str(q["run_id"]), payload=str(q["payload"]), key={"pk": q["pk"], "sk": q["sk"]})

    def dequeue(self, queued: QueuedRun, *, workflow: str, execution_arn: str, slot_limit: int) -> Dequeue:
        """Remove the queue item, mark the run RUNNING as ``execution_arn`` and take one of
        ``slot_limit`` slots (0: no limit), all or nothing."""
        claim = [
            {"Delete": {"TableName": self.table_name, "Key": queued.key,
                        "ConditionExpression": "attribute_exists(pk)"}},
            {"Update": {"TableName": self.table_name, "Key": keys.run(queued.run_id),
                        "UpdateExpression": "SET #s = :running, execution_arn = :arn, started_at = :now, "
                                            "slot_held = :held REMOVE queue_sk",
                        # A run being cancelled must not start (see RunService.cancel).
                        "ConditionExpression": "#s = :queued AND attribute_not_exists(cancel_requested_at)",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":running": "RUNNING", ":arn": execution_arn, ":now": now_iso(),
                                                      ":held": bool(slot_limit), ":queued": "QUEUED"}}},
        ]
        if slot_limit:
            claim.append(slots.take(self.table_name, workflow, slot_limit))
        try:
            self.table.meta.client.transact_write_items(TransactItems=claim)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if slot_limit and len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                return Dequeue.NO_SLOT
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed" and codes[0] != "ConditionalCheckFailed":
                return Dequeue.NOT_QUEUED
            if codes[:1] == ["ConditionalCheckFailed"]:
                return Dequeue.TAKEN
            raise
        return Dequeue.DEQUEUED

    def drop(self, queued: QueuedRun) -> None:
        """Delete a stale queue item (its run is no longer QUEUED)."""
        self.table.delete_item(Key=queued.key)

    def remove(self, workflow: str, queue_sk: str) -> bool:
        """Delete a queued run's queue item; False when a dequeue took it first."""
        try:
            self.table.delete_item(Key=keys.queued(workflow, queue_sk), ConditionExpression="attribute_exists(pk)")
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            return False
        return True

    def drain(self, workflow: str) -> Iterator[str]:
        """Delete every queue item of the workflow, yielding each run id just after its deletion."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(keys.queue_pk(workflow)),
                                  "ConsistentRead": True}
        while True:
            resp = self.table.query(**kwargs)
            for q in resp.get("Items", []):
                self.table.delete_item(Key={"pk": q["pk"], "sk": q["sk"]})
                yield str(q["run_id"])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
