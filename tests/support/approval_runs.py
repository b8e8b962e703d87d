"""Runs with a pending approval on the emulated cloud, for the approval and cancel hostile suites.

One engine serves a whole test module (starting moto costs seconds; each case still gets its own
run), and every helper reads state through the API a caller would use, plus the stored records a
caller cannot see (the task token, the step records) to prove nothing changed.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boternity.handlers.api import lambda_handler as api
from tests.support.apigw import Reply, call, local_cloud, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}


@contextmanager
def module_cloud(base_dir: Path) -> Iterator[Any]:
    """A local engine with the api function's environment, for one test module."""
    from boternity.local.engine import LocalEngine

    env = {"BOTERNITY_SKILLS_DIR": str(EXAMPLES / "skills"), "BOTERNITY_BOTS_DIR": str(EXAMPLES / "bots")}
    with LocalEngine(base_dir=base_dir, blob_dir=base_dir / "blobs", fast_retry=True, env=env) as eng, \
            local_cloud(eng):
        yield eng


def deploy(doc: dict[str, Any]) -> None:
    r = call(api, "PUT", f"/workflows/{doc['name']}", body=doc)
    assert r.status in (200, 201), r.text


def gate_workflow(name: str, *, timeout_secs: int = 3600, on_timeout: str = "reject") -> dict[str, Any]:
    """An approval, then a step that runs only when it was approved."""
    return {"name": name, "steps": [
        {"id": "review", "type": "approval",
         "config": {"prompt": "Ship {{ trigger.what }}?", "timeout_secs": timeout_secs, "on_timeout": on_timeout}},
        {"id": "ship", "type": "wait", "depends_on": ["review"], "condition": "steps.review.output.approved",
         "config": {"seconds": 0}},
    ]}


def start(name: str, payload: Any = None) -> str:
    r = call(api, "POST", f"/workflows/{name}/runs", body=payload if payload is not None else {"what": "v1"})
    assert r.status == 202, r.text
    return str(r.json["run_id"])


def run_detail(run_id: str) -> dict[str, Any]:
    r = call(api, "GET", f"/runs/{run_id}")
    assert r.status == 200, r.text
    return r.json


def steps(run_id: str) -> dict[str, dict[str, Any]]:
    return {s["step_id"]: s for s in run_detail(run_id)["steps"]}


def finished(run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    return wait_for(lambda: (d := run_detail(run_id)) and d["run"]["status"] in FINAL and d, timeout)


def pending_approval(run_id: str, step_id: str = "review") -> str:
    """The approval id once the run waits for it."""
    def ready() -> str | None:
        rec = steps(run_id).get(step_id) or {}
        out = rec.get("output")
        return out.get("approval_id") if rec.get("status") == "waiting_approval" and isinstance(out, dict) else None

    return str(wait_for(ready))


def stored(approval_id: str) -> dict[str, Any]:
    """The approval item as stored (task token included): what only the backend sees."""
    import boto3

    item = boto3.resource("dynamodb").Table("boternity").get_item(
        Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"}, ConsistentRead=True).get("Item")
    assert item is not None, approval_id
    return item


def approval(approval_id: str) -> dict[str, Any]:
    r = call(api, "GET", f"/approvals/{approval_id}", headers={"Accept": "application/json"})
    assert r.status == 200, r.text
    return r.json


def page(approval_id: str) -> Reply:
    return call(api, "GET", f"/approvals/{approval_id}", headers={"Accept": "text/html"})


def csrf_of(html_page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html_page)
    assert found, "the page has no decision form"
    return found.group(1)


@dataclass
class Snapshot:
    """What a refused request must leave exactly as it was."""

    run_status: str
    step_status: str
    approval: dict[str, Any]

    @classmethod
    def take(cls, run_id: str, approval_id: str) -> Snapshot:
        item = dict(stored(approval_id))
        return cls(run_status=run_detail(run_id)["run"]["status"],
                   step_status=str(steps(run_id)["review"]["status"]), approval=item)
