"""No secret and no task token is ever written down: a scan of everything a run leaves behind.

Representative runs on the local engine: an http step sending a workflow secret in its URL,
headers and body to a server that echoes it back (once big enough to be claim-checked into a blob),
an approval step (its task token), a small echo kept inline in the run table, and a webhook-triggered run (the caller's bearer token). Then
every item of the run table, every blob file, every log record at DEBUG (message and extra
fields), every API response and the CLI's output (``boternity run --json`` and plain) are
searched for each value. The one place a task token must be is the approval item's ``token``
attribute (it is how the decision resumes the run); it is checked to be there and nowhere else.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from boternity.approvals import ApprovalStore
from boternity.cli.main import main
from boternity.model.workflow import Workflow
from tests.support.apigw import call, local_cloud, wait_for
from tests.support.http_target import HttpTarget

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PARTNER = "partner-s3cr3t-9f8e7d6c5b4a"
HOOK = "hook-bearer-7a6b5c4d3e2f1a0b"
BIG = 300_000   # over the state size limit: the echoed body is claim-checked into a blob


def workflow(url: str, *, big: int = BIG) -> dict[str, Any]:
    return {
        "name": "leaky",
        "allow_private_network": True,
        "steps": [
            {"id": "call", "type": "http", "config": {
                "method": "POST", "url": url + "/echo?key={{ secrets.PARTNER_TOKEN }}",
                "headers": {"Authorization": "Bearer {{ secrets.PARTNER_TOKEN }}"},
                "body": "{{ secrets.PARTNER_TOKEN }}" + "x" * big}},
            {"id": "ok", "type": "approval", "depends_on": ["call"],
             "config": {"prompt": "ship {{ steps.call.output.status }}?"}},
            {"id": "after", "type": "http", "depends_on": ["ok"], "config": {
                "method": "POST", "url": url + "/echo",
                "headers": {"X-Partner": "{{ secrets.PARTNER_TOKEN }}"},
                "body": {"status": "{{ steps.call.output.status }}", "ok": "{{ steps.ok.output.approved }}"}}},
        ],
    }


class Records(logging.Handler):
    """Every log record of the service's loggers at DEBUG, with its extra fields, as text. (The AWS
    SDK's own DEBUG wire logs are left out: they show every API call's parameters, the task token
    of SendTaskSuccess included, and are never on in the functions.)"""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.dumps({k: v for k, v in vars(record).items() if k != "exc_info"}, default=str))
        if record.exc_info:
            import traceback

            self.lines.append("".join(traceback.format_exception(*record.exc_info)))


@pytest.fixture
def logs() -> Iterator[Records]:
    handler = Records()
    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in ("boternity", "aws_lambda_powertools")]
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in names)]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG if lg.name != "root" else lg.level)
    yield handler
    for lg, level in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The task tokens the approval function is handed, as it stores them."""
    seen: list[str] = []
    create = ApprovalStore.create

    def recording(self: ApprovalStore, **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs["token"])
        return create(self, **kwargs)

    monkeypatch.setattr(ApprovalStore, "create", recording)
    return seen


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BOTERNITY_SECRET_PARTNER_TOKEN", PARTNER)
    return PARTNER


def table_text(engine: Any) -> tuple[str, list[str]]:
    """Every item of the run table as text, the approval items' tokens taken out (and returned)."""
    from boternity.local.engine import TABLE

    items: list[dict[str, Any]] = []
    for page in engine.ddb.get_paginator("scan").paginate(TableName=TABLE):
        items += page["Items"]
    stored = [i.pop("token")["S"] for i in items if i["sk"]["S"] == "APPROVAL" and "token" in i]
    return json.dumps(items), stored


def blob_text(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in files)


def assert_absent(values: list[str], **places: str) -> None:
    found = [(what, name, text.count(what)) for name, text in places.items() for what in values if what and what in text]
    assert not found, f"leaked: {found}"


def test_a_run_leaves_no_secret_and_no_task_token_behind(engine: Any, tmp_path: Path, secret: str,
                                                         tokens: list[str], logs: Records) -> None:
    from boternity.validate import check_workflow

    with HttpTarget() as web:
        w = Workflow.model_validate(workflow(web.url))
        check_workflow(w)
        result = engine.run(w, timeout=60, on_approval=lambda a: (True, "fine"))
        sent = web.requests
    assert result.status == "SUCCEEDED", result.cause
    assert sent[0].headers["authorization"] == f"Bearer {secret}" and sent[0].query["key"] == secret, "it was used"
    assert sent[1].headers["x-partner"] == secret
    assert len(tokens) == 1
    table, stored = table_text(engine)
    assert stored == tokens, "the task token lives in the approval item, where the decision needs it"
    blobs = blob_text(tmp_path / "blobs")
    assert "x" * 1000 in blobs, "the big echo was claim-checked: the blob scan saw it"
    assert_absent([secret, *tokens], table=table, blobs=blobs, logs="\n".join(logs.lines),
                  result=json.dumps([result.output, result.steps, result.record, result.cause], default=str),
                  history=json.dumps(engine.history(result.execution_arn), default=str).replace(tokens[0], ""))


@pytest.mark.parametrize("json_output", [True, False], ids=["json", "plain"])
def test_the_cli_prints_no_secret_and_no_task_token(tmp_path: Path, secret: str, tokens: list[str], logs: Records,
                                                    capsys: pytest.CaptureFixture[str], json_output: bool) -> None:
    with HttpTarget() as web:
        path = tmp_path / "leaky.yaml"
        path.write_text(yaml.safe_dump(workflow(web.url), sort_keys=False))
        code = main(["run", str(path), "--approve", *(["--json"] if json_output else [])])
        assert web.requests[0].headers["authorization"] == f"Bearer {secret}"
    out = capsys.readouterr()
    assert code == 0, out.err
    assert len(tokens) == 1
    assert ("SUCCEEDED" in out.out) if json_output else ("SUCCEEDED" in out.err)
    assert_absent([secret, *tokens], stdout=out.out, stderr=out.err, logs="\n".join(logs.lines),
                  blobs=blob_text(tmp_path / ".boternity"))


def test_a_webhook_run_keeps_the_callers_token_and_the_secret_out_of_every_record(
        engine: Any, secret: str, tokens: list[str], logs: Records, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    from boternity.handlers.api import lambda_handler as api
    from boternity.handlers.webhook import lambda_handler as hook

    monkeypatch.setenv("BOTERNITY_SECRET_HOOK_TOKEN", HOOK)
    with HttpTarget() as web, local_cloud(engine):
        doc = workflow(web.url, big=1000)   # a workflow sent to the API is at most 256 KiB
        doc["steps"] = [doc["steps"][0]]
        doc["triggers"] = [{"type": "webhook", "path": "/leaky",
                            "auth": {"type": "bearer_token", "secret_name": "HOOK_TOKEN"}}]
        replies = [call(api, "PUT", "/workflows/leaky", body=doc)]
        assert replies[0].status == 201, replies[0].text
        replies.append(call(hook, "POST", "/hooks/leaky", body={"n": 1},
                            headers={"Authorization": f"Bearer {HOOK}", "X-Echo": HOOK}))
        assert replies[-1].status == 202, replies[-1].text
        run_id = replies[-1].json["run_id"]
        replies.append(wait_for(lambda: (r := call(api, "GET", f"/runs/{run_id}")).json["run"]["status"]
                                != "RUNNING" and r, timeout=60))
        replies.append(call(api, "GET", "/workflows/leaky/runs"))
        assert replies[2].json["run"]["status"] == "SUCCEEDED", replies[2].text
        assert replies[2].json["run"]["input"] == {"n": 1}, "the run's input is in the reply the scan reads"
        assert web.requests[0].headers["authorization"] == f"Bearer {secret}"
        table, _ = table_text(engine)
        history = json.dumps(engine.history(replies[2].json["run"]["execution_arn"]), default=str)
    assert_absent([secret, HOOK], table=table, blobs=blob_text(tmp_path / "blobs"), history=history,
                  logs="\n".join(logs.lines), api="\n".join(r.text for r in replies))


def test_the_approvals_listing_and_a_runs_input_carry_no_task_token(engine: Any, tokens: list[str]) -> None:
    """The replies the console reads for its approvals page and run page: the listing of every
    status and the run with its input, while the approval waits and after it was decided."""
    from boternity.handlers.api import lambda_handler as api

    doc = {"name": "asks", "steps": [{"id": "ok", "type": "approval", "config": {"prompt": "{{ trigger.q }}"}}]}
    with local_cloud(engine):
        assert call(api, "PUT", "/workflows/asks", body=doc).status == 201
        run_id = call(api, "POST", "/workflows/asks/runs", body={"q": "ship?"}).json["run_id"]
        pending = wait_for(lambda: call(api, "GET", "/approvals").json["approvals"] or None, timeout=60)
        replies = [call(api, "GET", "/approvals?workflow=asks"), call(api, "GET", f"/runs/{run_id}")]
        assert replies[1].json["run"]["input"] == {"q": "ship?"}
        decided = call(api, "POST", f"/approvals/{pending[0]['approval_id']}/decision", body={"approved": True})
        assert decided.status == 200, decided.text
        replies += [call(api, "GET", f"/approvals?status={s}") for s in ("approved", "pending", "expired")]
        assert [a["approval_id"] for a in replies[2].json["approvals"]] == [pending[0]["approval_id"]]
    assert len(tokens) == 1
    assert_absent(tokens, api="\n".join(r.text for r in replies))
