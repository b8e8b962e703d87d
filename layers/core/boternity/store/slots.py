"""Concurrency slots: ``CONC#<workflow>`` / ``CONC`` counts the workflow's runs that hold one.

A slot is taken in the same transaction that writes (or reopens, or dequeues) the run record, so
:func:`take` is a transaction element, not a write of its own. It is given back exactly once per
run: :meth:`Slots.release` flips the run's ``slot_released`` in the same transaction as the
decrement, so repeated or late status events cannot free a slot twice.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from boternity.store import dynamo, keys
from boternity.store.dynamo import is_conditional_failure


def take(table_name: str, workflow: str, limit: int) -> dict[str, Any]:
    """The TransactWriteItems element that takes one of ``limit`` slots (fails when all are held)."""
    return {"Update": {
        "TableName": table_name, "Key": keys.slots(workflow),
        "UpdateExpression": "ADD running :one SET #w = :w",
        "ConditionExpression": "attribute_not_exists(running) OR running < :limit",
        "ExpressionAttributeNames": {"#w": "workflow"},
        "ExpressionAttributeValues": {":one": 1, ":limit": limit, ":w": workflow},
    }}


class Slots:
    """The concurrency counters of one table."""

    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self.table_name = table_name
        self.table = (resource or dynamo.resource()).Table(table_name)

    def release(self, workflow: str, run_id: str) -> bool:
        """Give back the slot ``run_id`` holds, once. False when it held none (no limit, a queued
        run, or released already)."""
        run = self.table.get_item(Key=keys.run(run_id), ConsistentRead=True,
                                  ProjectionExpression="slot_held, slot_released").get("Item") or {}
        if not run.get("slot_held") or run.get("slot_released"):
            return False   # the common case (no limit, or released already) without a failing transaction
        try:
            self.table.meta.client.transact_write_items(TransactItems=[
                {"Update": {"TableName": self.table_name, "Key": keys.run(run_id),
                            "UpdateExpression": "SET slot_released = :t",
                            "ConditionExpression": "slot_held = :t AND attribute_not_exists(slot_released)",
                            "ExpressionAttributeValues": {":t": True}}},
                {"Update": {"TableName": self.table_name, "Key": keys.slots(workflow),
                            "UpdateExpression": "ADD running :m", "ConditionExpression": "running > :z",
                            "ExpressionAttributeValues": {":m": -1, ":z": 0}}},
            ])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise
        return True

    def give_back(self, workflow: str) -> None:
        """Decrement the counter, never below zero (for a run whose ``slot_released`` is already
        set: a redrive that was refused after taking a slot)."""
        try:
            self.table.update_item(Key=keys.slots(workflow), UpdateExpression="ADD running :m",
                                   ConditionExpression="running > :z", ExpressionAttributeValues={":m": -1, ":z": 0})
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def forget(self, workflow: str) -> None:
        """Delete the workflow's counter (the workflow is being deleted)."""
        self.table.delete_item(Key=keys.slots(workflow))
