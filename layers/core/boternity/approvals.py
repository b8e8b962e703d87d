"""Human approvals: a `.waitForTaskToken` task whose token never leaves the backend.

The approval function stores ``{approval_id (random, 128 bits), task token, run, step, rendered
prompt, expiry}`` and hands out only the approval id. A decision is one conditional write
(PENDING → APPROVED | REJECTED), so exactly one decision wins; then SendTaskSuccess resumes the run
with ``{approved, approver, comment, feedback, decided_at}``. A second decision gets "already decided".
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from boternity.errors import Conflict, NotFound
from boternity.store.runs import RECORD_TTL_SECS, now_iso

PUBLIC_FIELDS = ("approval_id", "run_id", "step_id", "workflow", "prompt", "status", "created_at", "decide_by",
                 "approved", "approver", "comment", "decided_at")


@dataclass
class ApprovalStore:
    table_name: str
    resource: Any = None
    sfn: Any = None

    def __post_init__(self) -> None:
        self.table = (self.resource or boto3.resource("dynamodb")).Table(self.table_name)
        self.sfn = self.sfn or boto3.client("stepfunctions")

    def create(self, *, token: str, run_id: str, step_id: str, workflow: str, prompt: str,
               timeout_secs: int, iteration: str = "") -> dict[str, Any]:
        approval_id = secrets.token_urlsafe(16)
        now = int(time.time())
        item = {"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL", "approval_id": approval_id, "token": token,
                "run_id": run_id, "step_id": step_id, "workflow": workflow, "prompt": prompt, "status": "PENDING", "iteration": iteration,
                "created_at": now_iso(), "decide_by": now + timeout_secs,
                "expires_at": now + timeout_secs + RECORD_TTL_SECS}
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        # A pointer under the run, so a cancelled run can find its pending approvals.
        self.table.put_item(Item={"pk": f"RUN#{run_id}", "sk": f"APPROVAL#{approval_id}", "approval_id": approval_id,
                                  "expires_at": now + timeout_secs + RECORD_TTL_SECS})
        return public(item)

    def get(self, approval_id: str) -> dict[str, Any]:
        item = self.table.get_item(Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
                                   ConsistentRead=True).get("Item")
        if not item:
            raise NotFound(f"approval '{approval_id}' not found")
        return public(item)

    def pending_for_run(self, run_id: str) -> list[dict[str, Any]]:
        resp = self.table.query(KeyConditionExpression=Key("pk").eq(f"RUN#{run_id}") & Key("sk").begins_with("APPROVAL#"),
                                ConsistentRead=True)
        out = []
        for ptr in resp.get("Items", []):
            try:
                a = self.get(ptr["approval_id"])
            except NotFound:
                continue
            if a["status"] == "PENDING":
                out.append(a)
        return out

    def decide(self, approval_id: str, *, approved: bool, approver: str | None = None,
               comment: str | None = None) -> dict[str, Any]:
        """Record a decision and resume the run. Raises Conflict if it was already decided or expired."""
        decided_at = now_iso()
        try:
            resp = self.table.update_item(
                Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
                UpdateExpression="SET #s = :s, approved = :a, approver = :by, #c = :c, decided_at = :t",
                ConditionExpression="attribute_exists(pk) AND #s = :pending AND decide_by > :now",
                ExpressionAttributeNames={"#s": "status", "#c": "comment"},
                ExpressionAttributeValues={":s": "APPROVED" if approved else "REJECTED", ":a": approved,
                                           ":by": approver, ":c": comment, ":t": decided_at, ":pending": "PENDING",
                                           ":now": int(time.time())},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            current = self.get(approval_id)  # NotFound if it never existed
            if current["status"] != "PENDING":
                raise Conflict(f"approval '{approval_id}' was already decided ({current['status'].lower()})") from None
            raise Conflict(f"approval '{approval_id}' has expired") from None
        item = resp["Attributes"]
        # "feedback" is the reference format's name for the comment (its templates read it).
        output = {"approved": approved, "approver": approver, "comment": comment, "feedback": comment,
                  "decided_at": decided_at}
        try:
            self.sfn.send_task_success(taskToken=item["token"],
                                       output=_json({"status": "completed", "output": output}))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                # The step timed out (or its run ended) just before the deadline we store: the
                # decision changed nothing, so the record must not claim it did.
                self.table.update_item(
                    Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
                    UpdateExpression="SET #s = :e REMOVE approved, approver, #c, decided_at",
                    ExpressionAttributeNames={"#s": "status", "#c": "comment"},
                    ExpressionAttributeValues={":e": "EXPIRED"})
                raise Conflict(f"approval '{approval_id}' has expired (its step timed out or its run ended)") from None
            raise
        from boternity.store.runs import RunStore

        RunStore(self.table_name).step_ended(
            item["run_id"], item["step_id"], status="completed", output=output,
            iteration=str(item.get("iteration") or ""), step_type="approval")
        return public(item)

    def cancel_for_run(self, run_id: str) -> int:
        n = 0
        for a in self.pending_for_run(run_id):
            try:
                self.table.update_item(
                    Key={"pk": f"APPROVAL#{a['approval_id']}", "sk": "APPROVAL"},
                    UpdateExpression="SET #s = :c", ConditionExpression="#s = :p",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":c": "CANCELLED", ":p": "PENDING"})
                n += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        return n


def public(item: dict[str, Any]) -> dict[str, Any]:
    """What may leave the backend: never the task token."""
    out = {k: item.get(k) for k in PUBLIC_FIELDS if k in item}
    for k, v in list(out.items()):
        if hasattr(v, "as_integer_ratio") and not isinstance(v, bool | int | float):
            out[k] = int(v)
    return out


def _json(v: Any) -> str:
    import json

    return json.dumps(v)
