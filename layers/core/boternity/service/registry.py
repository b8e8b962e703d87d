"""The workflow registry: what ``PUT /workflows/{name}`` stores, and the deploy that goes with it.

Table items (written only by ``boternity.store.workflows``; key shapes in ``store/keys.py``):

* ``WF#<name>`` / ``WF`` — a registered workflow: ``source`` (the YAML or JSON exactly as sent),
  ``source_format``, ``state_machine_arn``, ``triggers`` (JSON: one descriptor per trigger, with
  the names of the AWS resources made for it), ``concurrency``, ``on_limit``, ``version``
  (optimistic locking), timestamps. ``gsi1pk = WORKFLOWS``, ``gsi1sk = <name>`` lists them.
* ``HOOK#<path>`` / ``HOOK`` — which workflow a webhook path belongs to, its ``auth`` and
  ``when``: the webhook function's one lookup per request. Claimed with a conditional put, so two
  workflows can never share a path (409).
* ``FILEWATCH`` / ``<workflow>#<index>`` — a file-watch trigger (bucket, prefixes, patterns,
  ``when``): the S3 notification handler reads the whole (small) partition per event.

Only boto3 at import time; the workflow model, validator and compiler load inside ``deploy``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boternity.errors import (
    BadRequest,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    WorkflowError,
)
from boternity.parsing import decode_utf8, loads_json
from boternity.service.pages import decode_token, encode_token
from boternity.store.dynamo import plain
from boternity.store.workflows import WorkflowRecords

if TYPE_CHECKING:
    from boternity.model.loader import LoadedWorkflow

WORKFLOW_BODY_MAX = 256 * 1024   # the stored source must fit a 400 KB DynamoDB item with room to spare
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    mt = _media_type(content_type)
    return mt in ("", "application/json") or mt.endswith("+json")


class Registry:
    """The registry as the service sees it: workflows, webhook paths, file watchers
    (stored by ``boternity.store.workflows``), and the conflicts they answer."""

    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self.table_name = table_name
        self.records = WorkflowRecords(table_name, resource=resource)

    # ------------------------------------------------------------------ workflows
    def get(self, name: str) -> dict[str, Any] | None:
        item = self.records.get(name)
        return _workflow(item) if item else None

    def list(self, *, limit: int = 50, next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        start = decode_token(next_token, expect=self.records.listing())
        items, last = self.records.page(limit=limit, start=start)
        # The API answers summaries of these (handlers/api.py, list_workflows).
        return [_workflow(i) for i in items], encode_token(last)

    def put(self, item: dict[str, Any], *, expected_version: int | None) -> None:
        """Write a workflow item; ``expected_version`` None means "must not exist yet"."""
        if not self.records.put(item, expected_version=expected_version):
            raise Conflict(f"workflow '{item['name']}' was changed by another request; try again",
                                code="concurrent_update") from None

    def delete(self, name: str) -> None:
        self.records.delete(name)

    # ------------------------------------------------------------------ webhook index
    def hook(self, path_key: str) -> dict[str, Any] | None:
        return self.records.hook(path_key)

    def claim_hooks(self, workflow: str, hooks: list[dict[str, Any]]) -> list[str]:
        """Point each webhook path at ``workflow``. Returns the paths newly claimed; on a path
        owned by another workflow, undoes those and raises 409."""
        claimed: list[str] = []
        for h in hooks:
            if not self.records.claim_hook(workflow, h):
                self.release_hooks(workflow, claimed)
                owner = (self.hook(h["path"]) or {}).get("workflow")
                raise Conflict(f"webhook path '{h['path']}' belongs to workflow '{owner}'",
                                    code="webhook_path_taken", details={"path": h["path"], "workflow": owner}) from None
            claimed.append(h["path"])
        return claimed

    def release_hooks(self, workflow: str, paths: list[str]) -> None:
        for path in paths:
            self.records.release_hook(workflow, path)

    # ------------------------------------------------------------------ file-watch index
    def file_watchers(self) -> list[dict[str, Any]]:
        return self.records.file_watchers()

    def set_file_watchers(self, workflow: str, watchers: list[dict[str, Any]]) -> None:
        """Replace the workflow's file-watch items by ``watchers``."""
        self.records.set_file_watchers(workflow, watchers)


def _workflow(item: dict[str, Any]) -> dict[str, Any]:
    out = plain(item)
    for k in ("pk", "sk", "gsi1pk", "gsi1sk"):
        out.pop(k, None)
    if isinstance(out.get("triggers"), str):
        out["triggers"] = json.loads(out["triggers"])
    return out


# ---------------------------------------------------------------------- parsing a PUT body


@dataclass
class ParsedWorkflow:
    loaded: LoadedWorkflow
    source: str
    source_format: str   # "json" | "yaml"


def parse_body(name: str, body: bytes | None, content_type: str | None) -> ParsedWorkflow:
    """The request body (JSON, or YAML by Content-Type) → a validated workflow named ``name``.

    Raises 413/415/400 for the body itself and ``ValidationFailed`` (400, every problem at once)
    for the workflow.
    """
    # The model and validator load pydantic: only for a deploy, never in the webhook function.
    from boternity.model.loader import LoadedWorkflow, SourceMap, parse_workflow, parse_yaml
    from boternity.validate import check_workflow

    if body is not None and len(body) > WORKFLOW_BODY_MAX:
        raise PayloadTooLarge(f"a workflow may be at most {WORKFLOW_BODY_MAX // 1024} KiB",
                              details={"limit_bytes": WORKFLOW_BODY_MAX})
    if not body or not body.strip():
        raise BadRequest("the request body is empty: send the workflow as JSON, or as YAML with "
                         "Content-Type: application/yaml", code="empty_body")
    mt = _media_type(content_type)
    if not is_json_type(content_type) and mt not in YAML_TYPES:
        raise UnsupportedMediaType(f"Content-Type '{mt}' is not accepted: send application/json or "
                                   "application/yaml", details={"accepted": ["application/json", *YAML_TYPES]})
    text = decode_utf8(body, what="the request body")   # ParseError: 400 invalid_encoding
    if mt in YAML_TYPES:
        data, source = parse_yaml(text)
        fmt = "yaml"
    else:
        data = loads_json(text, what="the request body", unique_keys=True)   # ParseError: 400 with line, column
        source = SourceMap()
        fmt = "json"
    if isinstance(data, dict):
        body_name = data.get("name")
        if body_name is None:
            data = {"name": name, **data}   # the path names it
        elif body_name != name:
            raise ValidationFailed([WorkflowError(
                f"the workflow is named '{body_name}' but was sent to /workflows/{name}", code="name_mismatch",
                field="name", line=source.line_of(("name",)))])
    wf = parse_workflow(data, source=source)
    loaded = LoadedWorkflow(workflow=wf, source=source, raw=data)
    check_workflow(loaded)
    return ParsedWorkflow(loaded=loaded, source=text, source_format=fmt)
