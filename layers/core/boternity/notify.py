"""Announce a pending approval: a webhook POST, or a message on the deployment's SNS topic.

What is sent: the workflow, run and step, the rendered prompt, the deadline and a link to the
approval page. Never the task token (it stays in DynamoDB); the link carries the approval id and a
key derived from the token (service/approval_page.py), which opens the page without AWS
credentials. A failed notification is logged and swallowed: the approval is stored already and
can still be decided through the API or `boternity approve`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from boternity.errors import StepError

log = logging.getLogger("boternity.approval")

SNS = "sns"
TOPIC_ENV = "BOTERNITY_APPROVAL_TOPIC_ARN"
BASE_URL_ENV = "BOTERNITY_APPROVAL_BASE_URL"
# SNS allows 256 KiB per message; email clients show far less. Keep the prompt readable.
MAX_PROMPT_CHARS = 16_000
# SNS subjects: at most 100 printable ASCII characters, no line breaks.
MAX_SUBJECT_CHARS = 100


def approval_link(approval_id: str, key: str) -> str | None:
    """The page a browser can open without AWS credentials (the api's ``/approve/<id>`` route)."""
    base = os.environ.get(BASE_URL_ENV, "")
    return f"{base.rstrip('/')}/approve/{approval_id}?k={key}" if base else None


def announcement(approval: dict[str, Any], key: str) -> dict[str, Any]:
    return {"approval_id": approval["approval_id"], "workflow": approval["workflow"], "run_id": approval["run_id"],
            "step_id": approval["step_id"], "prompt": approval["prompt"],
            "link": approval_link(approval["approval_id"], key), "decide_by": approval["decide_by"]}


def notify_approval(target: str, approval: dict[str, Any], *, link_key: str, allow_private: bool) -> bool:
    """Send the announcement; True when it was accepted by the webhook or SNS."""
    body = announcement(approval, link_key)
    if target == SNS:
        return _publish(body)
    return _post(target, body, allow_private=allow_private)


def _post(url: str, body: dict[str, Any], *, allow_private: bool) -> bool:
    # requests only when an approval notifies a webhook (the approval function's other calls never need it).
    from boternity.executors.http import run_http

    try:
        run_http({"method": "POST", "url": url, "body": body, "timeout_secs": 10}, allow_private_network=allow_private)
    except StepError as exc:
        log.warning("approval notify failed: %s", exc.code)
        return False
    return True


def subject(body: dict[str, Any]) -> str:
    text = f"Approval needed: {body['workflow']} / {body['step_id']}"
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 3] + "..."


def message(body: dict[str, Any]) -> str:
    prompt = body["prompt"]
    if len(prompt) > MAX_PROMPT_CHARS:
        prompt = prompt[:MAX_PROMPT_CHARS] + f"\n[... {len(body['prompt']) - MAX_PROMPT_CHARS:,} more characters]"
    how = (f"Open {body['link']} to approve or reject." if body["link"]
           else f"Decide with: boternity approve {body['approval_id']}  (or boternity reject ...)")
    return (f"Workflow '{body['workflow']}' is waiting for a decision at step '{body['step_id']}'.\n\n"
            f"{prompt}\n\n{how}\nDecide by {body['decide_by']} (run {body['run_id']}, approval {body['approval_id']}).\n")


def _publish(body: dict[str, Any]) -> bool:
    topic = os.environ.get(TOPIC_ENV)
    if not topic:
        log.warning("approval notify 'sns' but %s is not set: no notification sent", TOPIC_ENV)
        return False
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    # Attributes let a subscription filter by workflow or step (an SNS filter policy).
    attrs = {k: {"DataType": "String", "StringValue": str(body[k])} for k in ("workflow", "step_id", "run_id")}
    try:
        boto3.client("sns").publish(TopicArn=topic, Subject=subject(body), Message=message(body),
                                    MessageAttributes=attrs)
    except (BotoCoreError, ClientError) as exc:
        log.warning("approval notify via SNS failed: %s", type(exc).__name__)
        return False
    return True
