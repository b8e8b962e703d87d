"""Human approvals: a `.waitForTaskToken` task whose token never leaves the backend.

The approval function stores ``{approval_id (random, 128 bits), task token, run, step, rendered
prompt, expiry}`` and hands out only the approval id. A decision is one conditional write
(PENDING → APPROVED | REJECTED), so exactly one decision wins; then SendTaskSuccess resumes the run
with ``{approved, approver, comment, feedback, decided_at}``. A second decision gets "already decided".

An approval leaves PENDING exactly once, and never stays there after it stopped mattering:

* EXPIRED: its deadline (``decide_by``) passed. Step Functions times the step out on its own and
  sends no event for it, so whoever notices first closes the record: a read of the approval
  (page, API, the local engine's poll), a decision, or the end of its run.
* CANCELLED: its run was cancelled, or ended another way while the approval was still open.

Each close is a conditional write from PENDING, so a close and a decision racing each other
cannot both win.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from boternity import metrics
from boternity.errors import Conflict, NotFound
from boternity.store import dynamo
from boternity.store.approvals import ApprovalRecords
from boternity.store.run_records import RECORD_TTL_SECS, RunStore, now_iso

PUBLIC_FIELDS = ("approval_id", "run_id", "step_id", "workflow", "prompt", "status", "created_at", "decide_by",
                 "approved", "approver", "comment", "decided_at", "closed_at", "reason")
DECIDED = ("APPROVED", "REJECTED")
# Runs whose end leaves an open approval EXPIRED rather than CANCELLED: they did not stop early,
# the approval simply was not answered in time.
_RUN_ENDS_THAT_EXPIRE = ("SUCCEEDED", "TIMED_OUT")
CANCELLED_REASON = "the run was cancelled"
# How long a cancel waits for a decision claimed just before it to reach the run or be undone
# (one SendTaskSuccess call and one DynamoDB write; a decider that died leaves it unsettled).
DELIVERY_SETTLE_S = 2.0
# What Step Functions answers for a token whose task is gone (timed out, run stopped).
_TOKEN_GONE = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


# What ``secrets.token_urlsafe(16)`` makes. Anything else is refused before it reaches a key:
# an id over DynamoDB's 2 KiB key limit would otherwise be an AWS error (a 500), and a
# message echoing control characters or kilobytes back helps nobody.
APPROVAL_ID = re.compile(r"[A-Za-z0-9_-]{22}")
#: The largest prompt (UTF-8 bytes) an approval stores: DynamoDB items hold at most 400 KB with the
#: task token, the decision and its comment beside it, and the prompt is also sent in its SNS
#: notification (256 KiB a message) and shown on its page: 64 KiB leaves room for all of them.
MAX_PROMPT_BYTES = 64 * 1024


def _iso(epoch: Any) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def is_due(item: dict[str, Any], now: float | None = None) -> bool:
    """Whether a PENDING approval's deadline has passed."""
    decide_by = item.get("decide_by")
    return decide_by is not None and int(decide_by) <= int(now if now is not None else time.time())


@dataclass
class ApprovalStore:
    table_name: str
    resource: Any = None
    sfn: Any = None

    def __post_init__(self) -> None:
        self.resource = self.resource or dynamo.resource()
        self.records = ApprovalRecords(self.table_name, resource=self.resource)
        self.sfn = self.sfn or boto3.client("stepfunctions")

    def create(self, *, token: str, run_id: str, step_id: str, workflow: str, prompt: str,
               timeout_secs: int, iteration: str = "", on_timeout: str = "reject") -> dict[str, Any]:
        approval_id = secrets.token_urlsafe(16)
        now = int(time.time())
        item = self.records.create(approval_id, {
            "token": token, "run_id": run_id, "step_id": step_id, "workflow": workflow, "prompt": prompt,
            "status": "PENDING", "iteration": iteration, "on_timeout": on_timeout, "timeout_secs": timeout_secs,
            "created_at": now_iso(), "decide_by": now + timeout_secs,
        }, expires_at=now + timeout_secs + RECORD_TTL_SECS)
        metrics.approval("requested", workflow)
        return public(item)

    # ------------------------------------------------------------------ reads
    def item(self, approval_id: str) -> dict[str, Any]:
        """The stored approval, task token included (for the backend only), closed if it is past due."""
        if not APPROVAL_ID.fullmatch(approval_id):
            raise NotFound("approval not found")
        item = self.records.get(approval_id)
        if not item:
            raise NotFound(f"approval '{approval_id}' not found")
        if item.get("status") == "PENDING" and is_due(item):
            return self.close(item, "EXPIRED", "no decision before its deadline")
        return item

    def get(self, approval_id: str) -> dict[str, Any]:
        return public(self.item(approval_id))

    def for_run(self, run_id: str) -> list[dict[str, Any]]:
        """Every approval of a run (stored items), past-due ones closed on the way."""
        out = []
        for approval_id in self.records.ids_for_run(run_id):
            try:
                out.append(self.item(approval_id))
            except NotFound:
                continue
        return out

    def pending_for_run(self, run_id: str) -> list[dict[str, Any]]:
        return [public(a) for a in self.for_run(run_id) if a.get("status") == "PENDING"]

    # ------------------------------------------------------------------ closing
    def close(self, item: dict[str, Any], status: str, reason: str) -> dict[str, Any]:
        """PENDING → EXPIRED | CANCELLED, once. Returns the item as it is afterwards (another
        writer's decision or close, if that came first)."""
        won, closed = self.records.close_pending(str(item["approval_id"]), status=status, closed_at=now_iso(),
                                                 reason=reason)
        if not won or closed is None:
            return closed or item   # another writer's decision or close came first
        metrics.approval("closed", str(closed.get("workflow") or ""))
        if status == "EXPIRED":
            self._settle_timed_out_step(closed)
        return closed

    def _settle_timed_out_step(self, item: dict[str, Any]) -> None:
        """The step's record says what its state machine did at the timeout (see the compiler's
        approval states), instead of ``waiting_approval`` until the run ends."""
        timeout_secs = int(item.get("timeout_secs") or 0)
        kwargs: dict[str, Any] = {"iteration": str(item.get("iteration") or ""), "step_type": "approval",
                                  "only_if_not_final": True}
        if item.get("on_timeout") == "fail":
            kwargs.update(status="failed", error=f"no decision within {timeout_secs} s")
        else:
            kwargs.update(status="completed", output={"approved": False, "approver": None, "comment": "timed out",
                                                      "feedback": "timed out", "timed_out": True,
                                                      "decided_at": None})
        RunStore(self.table_name, client=self.resource).step_ended(str(item["run_id"]), str(item["step_id"]),
                                                                   **kwargs)

    def close_for_run(self, run_id: str, run_status: str = "ABORTED") -> int:
        """Close every open approval of a run that ended (or is being cancelled). Returns how many
        this call cancelled (those past due expire instead, and are not counted)."""
        status = "EXPIRED" if run_status in _RUN_ENDS_THAT_EXPIRE else "CANCELLED"
        reason = (CANCELLED_REASON if run_status == "ABORTED"
                  else f"the run ended ({run_status.lower().replace('_', ' ')}) before a decision")
        n = 0
        for a in self.for_run(run_id):
            if a.get("status") == "PENDING" and self.close(a, status, reason).get("status") == "CANCELLED":
                n += 1
        return n

    def cancel_for_run(self, run_id: str) -> int:
        return self.close_for_run(run_id, "ABORTED")

    def cancelled_by_cancel(self, run_id: str, since: str, *, settle_s: float = DELIVERY_SETTLE_S) -> int:
        """How many of a cancelled run's approvals ended because it was cancelled.

        Called after the execution was stopped. A decision claimed just before the cancel closed
        the approvals is still being delivered; the stop either came after its token was accepted
        (the decision stands) or before (the decision is undone, and the approval is cancelled).
        Wait up to ``settle_s`` for such decisions to settle, so that the cancel's answer and the
        decision's (409 ``approval_cancelled``) tell the same story. Only one cancel of a run can
        win at a time, so every approval closed for that reason since it began (``since``, an
        ISO time taken before it closed any; earlier ones were closed by an earlier attempt's
        cancel) was closed by it.
        """
        deadline = time.monotonic() + settle_s
        items = self.for_run(run_id)
        while any(a.get("delivering") for a in items) and time.monotonic() < deadline:
            time.sleep(0.02)
            items = self.for_run(run_id)
        return sum(a.get("status") == "CANCELLED" and a.get("reason") == CANCELLED_REASON
                   and str(a.get("closed_at") or "") >= since for a in items)

    # ------------------------------------------------------------------ deciding
    def decide(self, approval_id: str, *, approved: bool, approver: str | None = None,
               comment: str | None = None) -> dict[str, Any]:
        """Record a decision and resume the run. Raises Conflict if it was decided, expired or cancelled."""
        decided_at = now_iso()
        if not APPROVAL_ID.fullmatch(approval_id):
            raise NotFound("approval not found")
        item = self.records.decide(approval_id, approved=approved, approver=approver, comment=comment,
                                   decided_at=decided_at, now=int(time.time()))
        if item is None:   # not PENDING, past its deadline, or never there
            raise refusal(self.item(approval_id)) from None  # NotFound if it never existed
        # "feedback" is the reference format's name for the comment (its templates read it).
        output = {"approved": approved, "approver": approver, "comment": comment, "feedback": comment,
                  "decided_at": decided_at}
        try:
            self.sfn.send_task_success(taskToken=item["token"],
                                       output=_json({"status": "completed", "output": output}))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _TOKEN_GONE:
                # The step timed out, or its run ended before its end event closed this approval:
                # the decision changed nothing, so the record must not claim it did.
                raise refusal(self._undo_decision(item)) from None
            raise
        self.records.delivered(approval_id)
        RunStore(self.table_name, client=self.resource).step_ended(
            item["run_id"], item["step_id"], status="completed", output=output,
            iteration=str(item.get("iteration") or ""), step_type="approval")
        metrics.approval("closed", str(item.get("workflow") or ""))
        return public(item)


    def _undo_decision(self, item: dict[str, Any]) -> dict[str, Any]:
        run = RunStore(self.table_name, client=self.resource).get_run(str(item["run_id"])) or {}
        run_status = str(run.get("status") or "")
        if run_status in ("ABORTED", "FAILED"):
            status, reason = "CANCELLED", (CANCELLED_REASON if run_status == "ABORTED"
                                           else "the run ended (failed) before a decision")
        else:
            status, reason = "EXPIRED", "its step timed out before the decision"
        return self.records.undo_decision(str(item["approval_id"]), status=status, closed_at=now_iso(), reason=reason)


def refusal(item: dict[str, Any]) -> Conflict:
    """Why a decision on this (no longer PENDING) approval is refused, in a sentence."""
    aid, status = item.get("approval_id"), str(item.get("status"))
    if status in DECIDED:
        return Conflict(f"approval '{aid}' was already decided ({status.lower()} at {item.get('decided_at')})",
                        code="already_decided")
    if status == "CANCELLED":
        return Conflict(f"approval '{aid}' was cancelled ({item.get('reason') or 'its run ended'}): "
                        "there is nothing to decide", code="approval_cancelled")
    deadline = f" at {_iso(item['decide_by'])}" if item.get("decide_by") is not None else ""
    return Conflict(f"approval '{aid}' expired{deadline}: a decision can no longer change its run",
                    code="approval_expired")


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
