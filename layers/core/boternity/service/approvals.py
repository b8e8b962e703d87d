"""The approvals listing: ``GET /approvals?status=&workflow=&limit=&next_token=``.

One query of the table's ``gsi1`` index per page (``store/approvals.py`` keeps every approval
listed under its current status), never a scan of runs. What it answers is what may leave the
backend (``boternity.approvals.public``): never a task token.

A PENDING approval whose deadline has passed is still PENDING in the table until someone notices
(Step Functions sends no event when the step times out). The listing notices: such an item is
closed as EXPIRED on the way (the same conditional write every other reader makes) and left out
of a pending page, so a page may hold fewer than ``limit`` approvals while ``next_token`` says
more may follow.
"""

from __future__ import annotations

from typing import Any

from boternity.approvals import ApprovalStore, is_due, public
from boternity.errors import BadRequest
from boternity.service.pages import decode_token, encode_token
from boternity.store.approvals import ApprovalRecords

STATUSES = ("PENDING", "APPROVED", "REJECTED", "EXPIRED", "CANCELLED")


def list_approvals(store: ApprovalStore, *, status: str = "PENDING", workflow: str | None = None, limit: int = 50,
                   next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of approvals of one ``status`` (by workflow, then oldest first), only ``workflow``'s
    when given; and the token of the next page (None at the end).

    Raises BadRequest for an unknown status or a token from another listing."""
    status = status.upper()
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(s.lower() for s in STATUSES)}", code="invalid_status")
    start = decode_token(next_token, expect=ApprovalRecords.listing(status))
    if start is not None and workflow is not None and not ApprovalRecords.starts_in_workflow(start, workflow):
        raise BadRequest("next_token belongs to another listing", code="invalid_next_token")
    items, last = store.records.page(status=status, workflow=workflow, limit=limit, start=start)
    out = []
    for item in items:
        if status == "PENDING" and is_due(item):
            # Past its deadline: closed now (EXPIRED, or whatever a racing writer made it), not listed.
            store.close(item, "EXPIRED", "no decision before its deadline")
            continue
        out.append(public(item))
    return out, encode_token(last)
