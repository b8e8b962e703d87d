"""Absolute URLs handed back to callers: the API's base, a run's links, webhook URLs."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote


def api_base_url(event: dict[str, Any] | None) -> str:
    """The API's base URL as the caller sees it, or "" (links are then relative to the API root).

    ``BOTERNITY_API_BASE_URL`` / ``BOTERNITY_APPROVAL_BASE_URL`` win (a custom domain, or the
    local server); otherwise the execute-api host and stage of the request itself.
    """
    for var in ("BOTERNITY_API_BASE_URL", "BOTERNITY_APPROVAL_BASE_URL"):
        value = os.environ.get(var, "").strip()
        if value:
            return value.rstrip("/")
    ctx = (event or {}).get("requestContext") or {}
    domain = ctx.get("domainName")
    if not domain:
        return ""
    stage = ctx.get("stage")
    # A custom domain maps base paths itself; only execute-api URLs carry the stage.
    if stage and ".execute-api." in str(domain):
        return f"https://{domain}/{stage}"
    return f"https://{domain}"


def webhook_base_url(event: dict[str, Any] | None) -> str:
    value = os.environ.get("BOTERNITY_WEBHOOK_BASE_URL", "").strip()
    return value.rstrip("/") if value else api_base_url(event) + "/hooks"


def console_url(execution_arn: str | None) -> str | None:
    """The Step Functions console page of an execution (where to watch a run in AWS)."""
    if not execution_arn:
        return None
    parts = execution_arn.split(":")
    if len(parts) < 8:
        return None
    region = parts[3]
    host = "console.amazonaws.cn" if parts[1] == "aws-cn" else "console.aws.amazon.com"
    return f"https://{region}.{host}/states/home?region={region}#/v2/executions/details/{execution_arn}"


def run_links(base: str, run_id: str, workflow: str | None, execution_arn: str | None = None) -> dict[str, Any]:
    rid = quote(run_id, safe="")
    links: dict[str, Any] = {"self": f"{base}/runs/{rid}", "cancel": f"{base}/runs/{rid}/cancel",
                             "redrive": f"{base}/runs/{rid}/redrive"}
    if workflow:
        links["workflow"] = f"{base}/workflows/{quote(workflow, safe='')}"
        links["runs"] = f"{base}/workflows/{quote(workflow, safe='')}/runs"
    links["console"] = console_url(execution_arn)
    return links
