"""The approval function: store the pending approval (the token stays here) and notify."""

from __future__ import annotations

import json
from typing import Any

from boternity.approvals import MAX_PROMPT_BYTES, ApprovalStore
from boternity.errors import StepFailed
from boternity.runtime.context import StepContext
from boternity.runtime.log import traced
from boternity.runtime.step import Services
from boternity.store.run_records import RUN_FINAL, table_name_from_env

services = Services()
_store: ApprovalStore | None = None


def store() -> ApprovalStore:
    global _store
    if _store is None:
        _store = ApprovalStore(table_name_from_env())
    return _store


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    sc = StepContext(spec=event["step"], state=event.get("state", {}))
    token = event["token"]
    iteration = sc.iteration_key()
    reason = sc.skip_reason(per_item=sc.index is not None)
    if reason is not None:
        services.runs.step_ended(sc.run_id, sc.step_id, status="skipped", iteration=iteration,
                                 output={"reason": reason}, step_type="approval")
        store().sfn.send_task_success(taskToken=token, output=json.dumps({"status": "skipped", "output": None}))
        return {}
    cfg = sc.spec["config"]
    prompt = sc.render(cfg["prompt"], field_name="config.prompt")
    prompt = prompt if isinstance(prompt, str) else json.dumps(prompt)
    size = len(prompt.encode("utf-8", "surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        # Before the approval is stored: DynamoDB would refuse the item with a bare ValidationException.
        error = StepFailed(f"step '{sc.step_id}', field 'config.prompt': the prompt renders to {size:,} bytes; an "
                           f"approval prompt holds at most {MAX_PROMPT_BYTES:,} (it is stored with the approval and "
                           "shown on its page and in its notification): show a summary or a link instead",
                           code="approval.prompt_too_large")
        services.runs.step_ended(sc.run_id, sc.step_id, status="failed", iteration=iteration, error=str(error),
                                 step_type="approval")
        raise error
    services.runs.step_started(sc.run_id, sc.step_id, iteration=iteration, step_type="approval")
    approval = store().create(token=token, run_id=sc.run_id, step_id=sc.step_id,
                              workflow=str(sc.ctx.get("workflow", {}).get("name")), prompt=prompt,
                              timeout_secs=int(cfg.get("timeout_secs", 86_400)), iteration=iteration,
                              on_timeout=str(cfg.get("on_timeout") or "reject"))
    services.runs.step_ended(sc.run_id, sc.step_id, status="waiting_approval", iteration=iteration,
                             output={"approval_id": approval["approval_id"]}, step_type="approval")
    run = services.runs.get_run(sc.run_id) or {}
    if run.get("status") in RUN_FINAL:
        # The run was cancelled (or ended) while this function ran: whoever closed the run's
        # approvals and steps did not see these yet, and nobody will ever decide them.
        store().close_for_run(sc.run_id, str(run["status"]))
        services.runs.end_open_steps(sc.run_id, status="aborted" if run["status"] == "ABORTED" else "failed",
                                     error=f"run {str(run['status']).lower().replace('_', ' ')}")
        return {"approval_id": approval["approval_id"]}
    if cfg.get("notify"):
        from boternity.notify import notify_approval
        from boternity.service.approval_page import link_key

        notify_approval(cfg["notify"], approval, link_key=link_key(token, approval["approval_id"]),
                        allow_private=bool(sc.ctx.get("workflow", {}).get("allow_private_network")))
    return {"approval_id": approval["approval_id"]}
