"""`boternity serve`: the HTTPS API of the cloud, served on 127.0.0.1 from the same handlers on moto.

Each HTTP request becomes the API Gateway REST proxy event the cloud would deliver, and goes to the
api function (or the webhook function for ``/hooks/...``). Alongside, the pieces AWS would run:
status-change events reach the events function (moto_patches), and cron schedules fire — moto's
Scheduler stores schedules but never fires them, so a loop here does, on time.

Two local-only routes exist for the CLI (never deployed): ``PUT /_local/secrets/<name>`` stores a
secret in the emulated Secrets Manager, ``PUT /_local/files/<key>`` puts an object into the
emulated project bucket (which fires file triggers).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from boternity.console.app import ConsoleApp
from boternity.local.http_server import BoundedHTTPServer, error_json, make_handler, printable
from boternity.local.serve_limits import ServeLimits
from boternity.store.blobs import blob_store_from_env

if TYPE_CHECKING:
    import re

    from boternity.local.engine import LocalEngine

LOCAL_BUCKET = "boternity-local"
SCHEDULER_GROUP = "boternity"


def proxy_event(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event for one request."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    path = parts.path or "/"
    # API Gateway hands a text body over as a string and anything else base64-encoded; a "text"
    # body that is not UTF-8 goes base64 too, so the handler answers it (400) with the bytes intact.
    text_like = not body or (_is_text(headers.get("Content-Type") or headers.get("content-type") or "")
                             and _is_utf8(body))
    now = dt.datetime.now(dt.UTC)
    event: dict[str, Any] = {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}", "httpMethod": method, "path": "/local" + path, "stage": "local",
            "requestId": uuid.uuid4().hex, "protocol": "HTTP/1.1", "accountId": "123456789012", "apiId": "local",
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userArn": "arn:aws:iam::123456789012:user/local",
                         "user": "local", "caller": "local"},
        },
        "body": (body.decode("utf-8") if text_like else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not text_like,
    }
    if path.startswith("/hooks/"):
        event["resource"] = "/hooks/{path+}"
        event["pathParameters"] = {"path": path[len("/hooks/"):]}
    return event


def _is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return ct.startswith("text/") or "json" in ct or "yaml" in ct or "xml" in ct or "x-www-form-urlencoded" in ct


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@cache
def _api_routes() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(method, path pattern) of every route of the api function, from its resolver."""
    from boternity.handlers.api import app

    # Powertools keeps no public route list; these two attributes hold every registered route.
    routes = [*getattr(app, "_static_routes", []), *getattr(app, "_dynamic_routes", [])]
    return tuple((str(r.method).upper(), r.rule) for r in routes)


def allowed_methods(path: str) -> list[str]:
    """The methods the api function answers on ``path`` (empty when no route matches it; the
    webhook function answers its own 405)."""
    if path.startswith("/hooks/"):
        return []
    return sorted({method for method, rule in _api_routes() if rule.match(path)})


_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_PUBLIC_ROUTES = ("/hooks/", "/approve/")


def _loopback_or_absent_host(headers: dict[str, str]) -> bool:
    host = next((v for k, v in headers.items() if k.lower() == "host"), None)
    if host is None:
        return True   # HTTP/1.0 clients; a browser always sends Host
    name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    return name.lower() in _LOOPBACK_NAMES


class LocalServer:
    def __init__(self, engine: LocalEngine, *, host: str = "127.0.0.1", port: int = 8000,
                 limits: ServeLimits | None = None, quiet: bool = False) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self.limits = limits or ServeLimits.from_env()
        self.quiet = quiet
        # One request at a time per function, as one Lambda execution environment runs them: the
        # api's Powertools resolver keeps the current event on the module's `app`, so two requests
        # at once would read each other's bodies (concurrent triggers started runs with another
        # request's payload). Reading and answering HTTP stay concurrent.
        self._function_locks = {"api": threading.Lock(), "webhook": threading.Lock()}
        self._stop = threading.Event()
        self._fired: dict[str, float] = {}
        # The web console at /console/: a client of this same API, called in-process.
        self.console = ConsoleApp(self.handle, blobs=blob_store_from_env)

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        path = urlsplit(raw_path).path
        if path == "/console" or path.startswith("/console/"):
            return self.console.handle(method, raw_path, headers, body)
        if not path.startswith(_PUBLIC_ROUTES) and not _loopback_or_absent_host(headers):
            # A page whose DNS name rebinds to 127.0.0.1 is same-origin with this server in the
            # browser, and the API has no credentials locally: it could register a workflow that
            # sends a secret to itself. Browsers always send the page's name as Host. The routes
            # public in the cloud too (webhooks, approval links) carry their own credentials and may
            # be reached through a tunnel under any name.
            return 403, {"Content-Type": "application/json"}, json.dumps({"error": {
                "code": "forbidden_host", "message": "boternity serve answers API requests addressed to 127.0.0.1, "
                "localhost or ::1 only", "details": None}}, separators=(",", ":")).encode()
        if path.startswith("/_local/"):
            return self._local_route(method, path, body)
        allowed = allowed_methods(path)
        if allowed and method not in allowed:
            # API Gateway answers a method a resource lacks with 403 "Missing Authentication Token";
            # 405 with Allow says what is true (see docs/reliability.md).
            return 405, {"Content-Type": "application/json", "Allow": ", ".join(allowed)}, error_json(
                405, f"{printable(method)} is not allowed on {printable(path)}; allowed: {', '.join(allowed)}")
        event = proxy_event(method, raw_path, headers, body)
        if path.startswith("/hooks/"):
            from boternity.handlers.webhook import lambda_handler
            function = "webhook"
        else:
            from boternity.handlers.api import lambda_handler
            function = "api"
        with self._function_locks[function]:
            resp = lambda_handler(event, None)
        out_headers = {k: str(v) for k, v in (resp.get("headers") or {}).items()}
        for k, vs in (resp.get("multiValueHeaders") or {}).items():
            out_headers[k] = ", ".join(str(v) for v in vs)
        raw = resp.get("body") or ""
        data = base64.b64decode(raw) if resp.get("isBase64Encoded") else raw.encode("utf-8")
        return int(resp.get("statusCode", 200)), out_headers, data

    def _local_route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        import boto3

        js = {"Content-Type": "application/json"}
        if method == "PUT" and path.startswith("/_local/secrets/"):
            return self._put_secret(unquote(path[len("/_local/secrets/"):]), body)
        if method == "PUT" and path.startswith("/_local/files/"):
            key = unquote(path[len("/_local/files/"):])
            boto3.client("s3").put_object(Bucket=LOCAL_BUCKET, Key=key, Body=body)
            return 200, js, json.dumps({"bucket": LOCAL_BUCKET, "key": key, "size": len(body)}).encode()
        return 404, js, json.dumps({"error": {"code": "not_found", "message": f"no local route {method} {path}",
                                              "details": None}}).encode()

    def _put_secret(self, name: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Store a workflow secret where ``{{ secrets.NAME }}`` reads it: under the workflow-secrets
        prefix only, so this route can never overwrite the stack's own secrets."""
        import boto3

        from boternity.runtime.secrets import SECRET_VALUE_MAX_BYTES, secret_id, secret_name_problem

        js = {"Content-Type": "application/json"}

        def refuse(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
            return status, js, json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()

        problem = secret_name_problem(name)
        if problem is not None:
            return refuse(400, "invalid_secret_name", problem)
        if len(body) > SECRET_VALUE_MAX_BYTES:
            return refuse(413, "secret_too_large", f"a secret value holds at most {SECRET_VALUE_MAX_BYTES} bytes "
                          f"(this one has {len(body)})")
        try:
            value = body.decode("utf-8")
        except UnicodeDecodeError:
            return refuse(400, "invalid_secret_value", "a secret value must be UTF-8 text")
        sm = boto3.client("secretsmanager")
        sid = secret_id(name)
        try:
            sm.create_secret(Name=sid, SecretString=value)
        except sm.exceptions.ResourceExistsException:
            sm.put_secret_value(SecretId=sid, SecretString=value)
        return 200, js, json.dumps({"secret": name, "secret_id": sid, "stored": True}).encode()

    # ------------------------------------------------------------------ cron
    def fire_due_schedules(self, now: dt.datetime | None = None) -> int:
        """Deliver every schedule whose next fire time has come to its target, as EventBridge
        Scheduler does. Returns how many fired."""
        import boto3

        from boternity.triggers.schedule import next_fire_times

        now = now or dt.datetime.now(dt.UTC)
        scheduler = boto3.client("scheduler")
        sfn = boto3.client("stepfunctions")
        fired = 0
        for summary in scheduler.list_schedules(GroupName=SCHEDULER_GROUP).get("Schedules", []):
            s = scheduler.get_schedule(GroupName=SCHEDULER_GROUP, Name=summary["Name"])
            if s.get("State") == "DISABLED":
                continue
            last = self._fired.get(s["Name"])
            after = dt.datetime.fromtimestamp(last, dt.UTC) if last else now - dt.timedelta(seconds=1)
            due = [t for t in next_fire_times(s["ScheduleExpression"], s.get("ScheduleExpressionTimezone") or "UTC",
                                              after, 1) if t <= now]
            if not due:
                continue
            self._fired[s["Name"]] = due[0].timestamp()
            target = s["Target"]
            payload = (target.get("Input") or "{}").replace("<aws.scheduler.scheduled-time>",
                                                            due[0].strftime("%Y-%m-%dT%H:%M:%SZ"))
            if ":lambda:" in target["Arn"]:
                # The trigger function starts the run (records, concurrency, one run per occurrence).
                boto3.client("lambda").invoke(FunctionName=target["Arn"], Payload=payload.encode())
            else:
                sfn.start_execution(stateMachineArn=target["Arn"], name=uuid.uuid4().hex, input=payload)
            fired += 1
        return fired

    def _cron_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.fire_due_schedules()
            except Exception as exc:  # noqa: BLE001 - keep the loop alive; report and go on
                print(f"cron loop: {exc}")

    # ------------------------------------------------------------------ serving
    def serve_forever(self) -> None:
        server = self.make_http_server()
        threading.Thread(target=self._cron_loop, daemon=True).start()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            server.server_close()

    def make_http_server(self) -> BoundedHTTPServer:
        server = BoundedHTTPServer((self.host, self.port), make_handler(self.handle, self.limits, quiet=self.quiet),
                                   self.limits)
        self.port = server.server_address[1]
        return server


def prepare_local_cloud(engine: LocalEngine) -> dict[str, str]:
    """Create what template.yaml creates, inside moto, and return the api function's environment."""
    import boto3

    boto3.client("s3").create_bucket(Bucket=LOCAL_BUCKET)
    boto3.client("scheduler").create_schedule_group(Name=SCHEDULER_GROUP)
    bus = boto3.client("events").create_event_bus(Name="boternity")["EventBusArn"]
    return {
        "BOTERNITY_BUCKET": LOCAL_BUCKET,
        "BOTERNITY_STATE_MACHINE_ROLE_ARN": engine.role_arn,
        "BOTERNITY_STATE_MACHINE_PREFIX": "boternity-",
        "BOTERNITY_FUNCTION_ARNS": json.dumps(engine.targets.functions),
        "BOTERNITY_SCHEDULER_GROUP": SCHEDULER_GROUP,
        "BOTERNITY_SCHEDULER_ROLE_ARN": engine.role_arn,
        "BOTERNITY_EVENT_BUS": bus.split("/")[-1],
    }


def wait_until(predicate: Any, timeout: float = 10.0, poll: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll)
    return False
