"""Approval items: ``APPROVAL#<approval>`` / ``APPROVAL`` (the task token lives only here), and a
pointer ``RUN#<run>`` / ``APPROVAL#<approval>`` so a run's approvals can be found.

Each approval item is also listed in the ``gsi1`` index under its status (``APPROVALS#<status>``,
sorted ``<workflow>#<created_at>#<approval>``): every write that changes the status moves the
item to its new status's partition in the same write, so "pending" is one query, never a scan.
The index holds the whole item (the table's only GSI projects ALL), so a reader of the index
must pass items through ``boternity.approvals.public``, which drops the token.

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
        """Store a new approval (refusing to overwrite one) and its pointer under the run.
        ``fields`` must hold ``run_id``, ``workflow``, ``status`` and ``created_at``: the status
        listing sorts by the last three."""
        item = {**keys.approval(approval_id), "approval_id": approval_id, **fields, "expires_at": expires_at,
                **keys.approval_index(str(fields["status"]), str(fields["workflow"]), str(fields["created_at"]),
                                      approval_id)}
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
                Key=key, UpdateExpression="SET #s = :new, closed_at = :t, reason = :r, gsi1pk = :listed",
                ConditionExpression="#s = :pending", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":new": status, ":t": closed_at, ":r": reason, ":pending": "PENDING",
                                           ":listed": keys.approvals_with_status(status)},
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
        status = "APPROVED" if approved else "REJECTED"
        try:
            return self.table.update_item(
                Key=keys.approval(approval_id),
                UpdateExpression="SET #s = :s, approved = :a, approver = :by, #c = :c, decided_at = :t, "
                                 "gsi1pk = :listed, delivering = :true",
                ConditionExpression="attribute_exists(pk) AND #s = :pending AND decide_by > :now",
                ExpressionAttributeNames={"#s": "status", "#c": "comment"},
                ExpressionAttributeValues={":s": status, ":a": approved,
                                           ":by": approver, ":c": comment, ":t": decided_at, ":pending": "PENDING",
                                           ":now": now, ":listed": keys.approvals_with_status(status),
                                           ":true": True},
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
            UpdateExpression="SET #s = :s, closed_at = :t, reason = :r, gsi1pk = :listed "
                             "REMOVE approved, approver, #c, decided_at, delivering",
            ExpressionAttributeNames={"#s": "status", "#c": "comment"},
            ExpressionAttributeValues={":s": status, ":t": closed_at, ":r": reason,
                                       ":listed": keys.approvals_with_status(status)},
            ReturnValues="ALL_NEW")["Attributes"]

    # ------------------------------------------------------------------ the status listing
    @staticmethod
    def listing(status: str) -> dict[str, str]:
        """What every page key of one listing carries (pins a page token to it)."""
        return {"gsi1pk": keys.approvals_with_status(status)}

    @staticmethod
    def starts_in_workflow(start: dict[str, Any], workflow: str) -> bool:
        """Whether a page key lies in ``workflow``'s part of a listing (a key from another
        workflow's listing would fall outside the query's range: DynamoDB refuses it)."""
        return str(start.get("gsi1sk") or "").startswith(keys.approvals_of_workflow(workflow))

    def page(self, *, status: str, workflow: str | None, limit: int,
             start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` approval items of one status (tokens included: the caller filters), by
        workflow then oldest first, only ``workflow``'s when given; and where the next page starts."""
        condition = Key("gsi1pk").eq(keys.approvals_with_status(status))
        if workflow is not None:
            condition &= Key("gsi1sk").begins_with(keys.approvals_of_workflow(workflow))
        kwargs: dict[str, Any] = {"IndexName": "gsi1", "KeyConditionExpression": condition, "Limit": limit}
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = self.table.query(**kwargs)
        return resp.get("Items", []), resp.get("LastEvaluatedKey")
