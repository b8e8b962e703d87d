"""Approval items: ``APPROVAL#<approval>`` / ``APPROVAL`` (the task token lives only here), and a
pointer ``RUN#<run>`` / ``APPROVAL#<approval>`` so a run's approvals can be found.

An approval leaves PENDING exactly once: every write here that moves it is conditional on
PENDING (see ``boternity.approvals`` for the policy: who closes, decides, or undoes a decision).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from boternity.store import dynamo, keys
from boternity.store.dynamo import is_conditional_failure, query_all


class ApprovalRecords:
    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self.table_name = table_name
        self.table = (resource or dynamo.resource()).Table(table_name)

    def create(self, approval_id: str, fields: dict[str, Any], *, expires_at: int) -> dict[str, Any]:
        """Store a new approval (refusing to overwrite one) and its pointer under the run."""
        item = {**keys.approval(approval_id), "approval_id": approval_id, **fields, "expires_at": expires_at}
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        # A pointer under the run, so a cancelled run can find its pending approvals.
        self.table.put_item(Item={**keys.approval_pointer(str(fields["run_id"]), approval_id),
                                  "approval_id": approval_id, "expires_at": expires_at})
        return item

    def get(self, approval_id: str) -> dict[str, Any] | None:
        return self.table.get_item(Key=keys.approval(approval_id), ConsistentRead=True).get("Item")

    def ids_for_run(self, run_id: str) -> list[str]:
        """The ids of every approval a run opened (from its pointers)."""
        ptrs = query_all(self.table, KeyConditionExpression=Key("pk").eq(keys.run_pk(run_id))
                         & Key("sk").begins_with(keys.APPROVAL_POINTER_PREFIX), ConsistentRead=True)
        return [str(p["approval_id"]) for p in ptrs]

    def close_pending(self, approval_id: str, *, status: str, closed_at: str,
                      reason: str) -> tuple[bool, dict[str, Any] | None]:
        """PENDING → ``status``, once. Returns (closed by this call?, the item afterwards); the
        item is None only if it vanished meanwhile."""
        key = keys.approval(approval_id)
        try:
            resp = self.table.update_item(
                Key=key, UpdateExpression="SET #s = :new, closed_at = :t, reason = :r",
                ConditionExpression="#s = :pending", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":new": status, ":t": closed_at, ":r": reason, ":pending": "PENDING"},
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            return False, self.table.get_item(Key=key, ConsistentRead=True).get("Item")
        return True, resp["Attributes"]

    def decide(self, approval_id: str, *, approved: bool, approver: str | None, comment: str | None,
               decided_at: str, now: int) -> dict[str, Any] | None:
        """PENDING → APPROVED | REJECTED while ``decide_by`` is after ``now``. The item afterwards,
        or None when the approval is missing, no longer PENDING, or past its deadline.

        The decision is marked ``delivering`` until :meth:`delivered` or :meth:`undo_decision`:
        a cancel racing it waits for that to know whether the decision reached the run."""
        try:
            return self.table.update_item(
                Key=keys.approval(approval_id),
                UpdateExpression="SET #s = :s, approved = :a, approver = :by, #c = :c, decided_at = :t, "
                                 "delivering = :true",
                ConditionExpression="attribute_exists(pk) AND #s = :pending AND decide_by > :now",
                ExpressionAttributeNames={"#s": "status", "#c": "comment"},
                ExpressionAttributeValues={":s": "APPROVED" if approved else "REJECTED", ":a": approved,
                                           ":by": approver, ":c": comment, ":t": decided_at, ":pending": "PENDING",
                                           ":now": now, ":true": True},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        return None

    def delivered(self, approval_id: str) -> None:
        """The decision reached the run (its task token was accepted)."""
        self.table.update_item(Key=keys.approval(approval_id), UpdateExpression="REMOVE delivering")

    def undo_decision(self, approval_id: str, *, status: str, closed_at: str, reason: str) -> dict[str, Any]:
        """Replace a decision that resumed nothing by a close (``status``, ``reason``)."""
        return self.table.update_item(
            Key=keys.approval(approval_id),
            UpdateExpression="SET #s = :s, closed_at = :t, reason = :r "
                             "REMOVE approved, approver, #c, decided_at, delivering",
            ExpressionAttributeNames={"#s": "status", "#c": "comment"},
            ExpressionAttributeValues={":s": status, ":t": closed_at, ":r": reason},
            ReturnValues="ALL_NEW")["Attributes"]
