"""The webhook function: ``POST /hooks/{path+}`` (a public route: it authenticates every request
itself), plus the two trigger events delivered straight to it: S3 ObjectCreated notifications
(file-watch triggers) and event-trigger events whose ``when`` an EventBridge pattern cannot express.

Order of the checks on a webhook request, cheapest and least revealing first: method, size,
path lookup, signature over the raw bytes (before any parsing), ``when``, then the start: the
delivery id names the run and is claimed once (``RunService.start``, boternity.store.idempotency),
so a replay is a duplicate and a replay racing the first start a 409. A 401 says only "webhook authentication failed"; why goes to
the log. Light imports only (boto3, stdlib): no pydantic, no compiler, no PyYAML.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import parse_qsl

from boternity.errors import MethodNotAllowed, NotFound, PayloadTooLarge, SignatureError, WorkflowError
from boternity.handlers.rest import FORM, Request, is_json, proxy_response, read_request, to_http
from boternity.parsing import ParseError, decode_utf8, loads_json
from boternity.runtime.log import logger, traced
from boternity.runtime.secrets import lookup_secret
from boternity.service.links import api_base_url, run_links
from boternity.service.registry import Registry
from boternity.service.runs import RunService
from boternity.service.trigger_resources import (
    EVENT_TRIGGER_KEY,
    SCHEDULE_TRIGGER_KEY,
    handle_event_trigger,
    handle_s3_event,
    handle_schedule_trigger,
    when_matches,
)
from boternity.triggers.matching import webhook_path_key
from boternity.webhooks import execution_name_for_delivery, verify

WEBHOOK_BODY_MAX = 256 * 1024
NOT_FOUND_MESSAGE = "no webhook at this path"
HOOK_PATH_MAX = 1024   # boternity.model.workflow.WebhookTrigger.path's max_length (not imported: cold start)


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and any(isinstance(r, dict) and r.get("eventSource") == "aws:s3"
                                             for r in records):
            return handle_s3_event(event)
        if EVENT_TRIGGER_KEY in event:
            return handle_event_trigger(event)
        if SCHEDULE_TRIGGER_KEY in event:
            return handle_schedule_trigger(event)
    logger.set_correlation_id(((event or {}).get("requestContext") or {}).get("requestId"))
    try:
        return _hook(event, context)
    except Exception as exc:  # noqa: BLE001 - the API boundary: every failure becomes a JSON error
        status, body, headers = to_http(exc)
        if status >= 500:
            logger.exception("webhook failed")
        return proxy_response(status, body, headers)


def _hook(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if str(event.get("httpMethod") or "").upper() != "POST":
        raise MethodNotAllowed("webhooks take POST", allowed=("POST",))
    req = read_request(event)
    if len(req.body) > WEBHOOK_BODY_MAX:
        raise PayloadTooLarge(f"the webhook body is larger than {WEBHOOK_BODY_MAX // 1024} KiB",
                              details={"limit_bytes": WEBHOOK_BODY_MAX})
    raw_path = _hook_path(event)
    if len(raw_path) > HOOK_PATH_MAX:
        # No webhook path is this long (WebhookTrigger.path), and HOOK#<path> past 2,048 bytes is a
        # key DynamoDB refuses (ValidationException, a 500): answer before reading the store.
        raise NotFound(NOT_FOUND_MESSAGE)
    try:
        path = webhook_path_key(raw_path)
    except WorkflowError:
        raise NotFound(NOT_FOUND_MESSAGE) from None
    table = os.environ.get("BOTERNITY_TABLE") or ""
    hook = Registry(table).hook(path)
    if hook is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    auth_type = str(hook.get("auth_type") or "none")
    secret = _secret(str(hook["secret_name"]), auth_type) if hook.get("secret_name") else None
    try:
        verified = verify(auth_type, secret, req.body, req.headers)
    except SignatureError as exc:
        # The reason is safe to log (it never describes the secret) and useless to a prober:
        # the answer is the same 401 for every failed check (boternity.handlers.rest).
        logger.info("webhook rejected", extra={"path": path, "reason": str(exc)})
        raise SignatureError("webhook rejected") from None
    workflow = str(hook["workflow"])
    payload = _payload(req)
    if hook.get("when") and not when_matches(str(hook["when"]), {
            "event": payload, "trigger": {"type": "webhook", "path": path}}):
        return proxy_response(202, {"status": "filtered", "workflow": workflow})
    delivery_id = verified.delivery_id or req.header("Idempotency-Key")
    # The delivery id names the run, and RunService claims it (boternity.store.idempotency):
    # a redelivery is a duplicate, one racing a start still in progress is a 409 to retry.
    run_id = execution_name_for_delivery(workflow, delivery_id) if delivery_id else None
    started = RunService(table, context=context).start(
        workflow, payload, trigger_type="webhook", run_id=run_id,
        trigger={"type": "webhook", "path": path, "delivery_id": delivery_id})
    if started.duplicate:
        return proxy_response(200, {"status": "duplicate", "run_id": started.run_id, "workflow": workflow})
    body = {"run_id": started.run_id, "status": started.status, "workflow": workflow,
            "links": run_links(api_base_url(event), started.run_id, workflow, started.execution_arn)}
    return proxy_response(202, body)


# ---------------------------------------------------------------------- request pieces


def _hook_path(event: dict[str, Any]) -> str:
    params = event.get("pathParameters") or {}
    if params.get("path"):
        return str(params["path"])
    path = str(event.get("path") or "")
    return path[len("/hooks"):] if path.startswith("/hooks/") else ""


def _payload(req: Request) -> Any:
    """The run's payload: JSON as sent; a form as an object; other text as ``{"body": text}``;
    bytes that are not text as ``{"body_base64": ...}``. Unlike the API's bodies (rest.parse_body),
    a webhook takes whatever its sender posts, so no media type is refused."""
    raw = req.body
    if not raw.strip():
        return {}
    declared_json = is_json(req.media_type)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if declared_json:   # JSON is UTF-8 (RFC 8259): say so, with the offending byte
            decode_utf8(raw, what="the webhook body")
        return {"body_base64": base64.b64encode(raw).decode("ascii")}
    if req.media_type == FORM:
        return dict(parse_qsl(text, keep_blank_values=True))
    if not req.media_type or declared_json:
        try:
            return loads_json(text, what="the webhook body")
        except ParseError as exc:
            # Declared JSON must be JSON (depth, numbers and NaN included); undeclared text that
            # is not JSON is kept as text, but JSON that breaks a limit is refused either way.
            if req.media_type or exc.code not in ("invalid_json", "invalid_number"):
                raise
    return {"body": text}


def _secret(name: str, auth_type: str) -> str | list[str] | None:
    """The webhook secret: the workflow secret of that name (never another environment variable
    or the stack's own secrets; see boternity.runtime.secrets).

    For ``standard_webhooks`` the value may hold several secrets (a JSON list, or separated by
    spaces) so a key can be rotated without dropping deliveries.
    """
    value = lookup_secret(name)
    if value is None:
        logger.warning("webhook secret not found", extra={"secret_name": name})
        return None
    text = value.strip()
    if auth_type == "standard_webhooks":
        if text.startswith("["):
            try:
                items = json.loads(text)
                return [str(s) for s in items] if isinstance(items, list) else text
            except ValueError:
                return text
        if " " in text:
            return text.split()
    return value
