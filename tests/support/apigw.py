"""API Gateway REST (v1) proxy events for driving the api and webhook handlers in tests.

The events carry everything API Gateway sends, including ``requestContext.protocol`` and
``requestTime``, which Powertools' pydantic models of the event require.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ACCOUNT = "123456789012"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/ada"


def rest_event(method: str, path: str, *, body: bytes | str | dict | list | None = None,
               headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
               identity: dict[str, Any] | None = None, stage: str = "prod", binary: bool = False,
               domain: str = "abc123.execute-api.us-east-1.amazonaws.com") -> dict[str, Any]:
    """The proxy event API Gateway delivers for ``method path`` (a ``?query`` in ``path`` is parsed too)."""
    parts = urlsplit(path)
    path = parts.path
    q: dict[str, list[str]] = {k: list(v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for k, v in (query or {}).items():
        q.setdefault(k, []).append(v)
    hdrs = dict(headers or {})
    if isinstance(body, dict | list):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    raw = body.encode() if isinstance(body, str) else body
    now = dt.datetime.now(dt.UTC)
    resource, params = "/{proxy+}", {"proxy": path.lstrip("/")}
    if path.startswith("/hooks/"):
        resource, params = "/hooks/{path+}", {"path": path[len("/hooks/"):]}
    event: dict[str, Any] = {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": hdrs or None,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in q.items()} or None,
        "multiValueQueryStringParameters": q or None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "abc123", "domainName": domain, "domainPrefix": domain.split(".")[0],
            "resourceId": "r1", "resourcePath": resource, "httpMethod": method, "path": f"/{stage}{path}",
            "stage": stage, "requestId": uuid.uuid4().hex, "extendedRequestId": uuid.uuid4().hex[:16],
            "protocol": "HTTP/1.1", "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": identity if identity is not None else {
                "sourceIp": "203.0.113.7", "userAgent": "pytest", "accountId": ACCOUNT, "caller": "AIDAEXAMPLE",
                "user": "AIDAEXAMPLE", "userArn": USER_ARN, "accessKey": "AKIAEXAMPLE",
                "cognitoIdentityId": None, "cognitoIdentityPoolId": None, "apiKey": None, "apiKeyId": None},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    if raw:
        event["body"] = base64.b64encode(raw).decode() if binary else raw.decode("utf-8")
        event["isBase64Encoded"] = binary
    return event


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object of an error reply (and a check that the shape is right)."""
        body = self.json
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body
        return body["error"]


def call(handler: Any, method: str, path: str, **kwargs: Any) -> Reply:
    """Send one request through ``handler`` (a lambda_handler) and decode its proxy response."""
    resp = handler(rest_event(method, path, **kwargs), None)
    headers = {k: str(v) for k, v in (resp.get("headers") or {}).items()}
    for k, vs in (resp.get("multiValueHeaders") or {}).items():
        headers[k] = ", ".join(str(v) for v in vs)
    raw = resp.get("body") or ""
    text = base64.b64decode(raw).decode() if resp.get("isBase64Encoded") else raw
    return Reply(status=int(resp["statusCode"]), headers=headers, text=text)


# ---------------------------------------------------------------------- the emulated cloud


@contextmanager
def local_cloud(engine: Any) -> Iterator[dict[str, str]]:
    """What template.yaml creates, inside the engine's moto: the bucket, scheduler group, event bus,
    the webhook function (trigger target) and the api function's environment; plus what the
    events function will do for the service (``on_status_change``: release concurrency slots,
    start queued runs, record runs started by schedules and rules)."""
    import os

    from boternity.local import cloud_patches, moto_patches
    from boternity.local.server import prepare_local_cloud
    from boternity.service.runs import on_status_change

    cloud_patches.apply()
    env = prepare_local_cloud(engine)
    env["BOTERNITY_TRIGGER_FUNCTION_ARN"] = cloud_patches.install_trigger_function(role_arn=engine.role_arn)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)

    def listener(event: dict[str, Any]) -> None:
        try:
            on_status_change(event)
        except Exception:  # noqa: BLE001 - a listener thread may outlive the mock
            pass

    moto_patches.STATUS_LISTENERS.append(listener)
    try:
        yield env
    finally:
        moto_patches.STATUS_LISTENERS.remove(listener)
        moto_patches.HANDLERS.pop("boternity-webhook", None)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, poll: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; return its value (fail the test on timeout)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(poll)
