"""CLI commands that talk to a served API: `boternity serve` locally, or a deployed stack.

A deployed API uses IAM auth by default, so requests to it are signed with SigV4 from the usual AWS
credentials; `--api-key` sends an API key instead. Local URLs (127.0.0.1, localhost) are not signed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from boternity.cli.payload import read_input
from boternity.errors import BoternityError
from boternity.handlers.rest import error_class
from boternity.runtime.secrets import secret_name_problem
from boternity.validate import load_workflow

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_API = "http://127.0.0.1:8000"


class ApiError(BoternityError):
    """An error answer of the API, mapped back to the error tree: an instance is also of the tree's
    class for its status (a 404 is a ``NotFound``, a 409 a ``Conflict``...; see
    :func:`boternity.handlers.rest.error_class`), carrying the ``code``, ``message`` and ``details``
    the API sent. ``status`` and ``body`` are the raw answer; ``str()`` is what the CLI prints."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        BoternityError.__init__(self, str(err.get("message") or body), code=err.get("code"),
                                details=err.get("details"))
        self.status = status
        self.body = body
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        retry_after = hdrs.get("retry-after", "").strip()
        # What StartInProgress and MethodNotAllowed carry, from their headers (None / () when absent).
        self.retry_after: int | None = int(retry_after) if retry_after.isdigit() else None
        self.allowed: tuple[str, ...] = tuple(m.strip() for m in hdrs.get("allow", "").split(",") if m.strip())

    def __str__(self) -> str:
        if not isinstance(self.body, dict) or not isinstance(self.body.get("error"), dict):
            return f"{self.status}: {self.body}"
        msg = f"{self.status} {self.code}: {self.message}"
        if isinstance(self.details, list):
            msg += "".join(f"\n  {d.get('file') or ''}{':' + str(d['line']) if d.get('line') else ''} "
                           f"{'step ' + repr(d['step_id']) + ': ' if d.get('step_id') else ''}"
                           f"{d.get('message', d)}" if isinstance(d, dict) else f"\n  {d}" for d in self.details)
        return msg


@cache
def _api_class(base: type[BoternityError]) -> type[ApiError]:
    """ApiError combined with one class of the tree (one class per tree class, made once)."""
    if base is BoternityError:
        return ApiError
    return type(f"Api{base.__name__}", (ApiError, base), {"__doc__": f"An API answer that is a {base.__name__}."})


def api_error(status: int, body: Any, headers: Mapping[str, str] | None = None) -> ApiError:
    """The exception for an HTTP error answer: ``except NotFound`` catches a 404."""
    code = body["error"].get("code") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    return _api_class(error_class(status, code if isinstance(code, str) else None))(status, body, headers)


class Client:
    def __init__(self, base: str | None = None, *, api_key: str | None = None) -> None:
        self.base = (base or os.environ.get("BOTERNITY_API") or DEFAULT_API).rstrip("/")
        self.api_key = api_key or os.environ.get("BOTERNITY_API_KEY")

    def _local(self) -> bool:
        return (urlsplit(self.base).hostname or "") in ("127.0.0.1", "localhost", "::1")

    def request(self, method: str, path: str, *, body: bytes | None = None, content_type: str = "application/json",
                headers: dict[str, str] | None = None) -> Any:
        """The answer's JSON (or text). Raises :class:`ApiError` (also the tree's class for the status)."""
        # requests only for commands that talk to an API: `boternity validate`/`run` start without it.
        import requests

        url = self.base + path
        hdrs = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = content_type
        if self.api_key:
            hdrs["x-api-key"] = self.api_key
        elif not self._local():
            hdrs = self._sign(method, url, hdrs, body)
        try:
            resp = requests.request(method, url, data=body, headers=hdrs, timeout=30)
        except requests.ConnectionError as exc:
            raise BoternityError(f"cannot reach the API at {self.base} (is `boternity serve` running?)") from exc
        try:
            data = resp.json()
        except ValueError:
            data = resp.text
        if resp.status_code >= 400:
            raise api_error(resp.status_code, data, resp.headers)
        return data

    def _sign(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        # boto3 and botocore only to sign for a deployed API (seconds of imports a local call never needs).
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        creds = session.get_credentials()
        if creds is None:
            raise BoternityError("no AWS credentials to sign the request with (IAM auth); or pass --api-key")
        region = session.region_name or os.environ.get("AWS_REGION") or "us-east-1"
        req = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(creds.get_frozen_credentials(), "execute-api", region).add_auth(req)
        return dict(req.headers.items())


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def cmd_deploy(args: Any) -> int:
    client = Client(args.api, api_key=args.api_key)
    for f in args.files:
        wf = load_workflow(f).workflow  # refuse invalid files before sending anything
        text = Path(f).read_bytes()
        data = client.request("PUT", f"/workflows/{quote(wf.name)}", body=text, content_type="application/yaml")
        print(f"{f}: deployed {wf.name}" + (f" ({data.get('state_machine_arn')})" if isinstance(data, dict) else ""))
    return 0


def registered_workflows(client: Client) -> list[str]:
    """Every workflow name the API has, across pages."""
    names: list[str] = []
    token: str | None = None
    while True:
        page = client.request("GET", "/workflows?limit=100" + (f"&next_token={quote(token)}" if token else ""))
        names += [w["name"] for w in page.get("workflows", [])]
        token = page.get("next_token")
        if not token:
            return names


def cmd_undeploy(args: Any) -> int:
    """Delete workflows with everything the API created for them: state machine, schedules, event
    rules, webhook paths, file-watch notifications. Run records stay until they expire."""
    client = Client(args.api, api_key=args.api_key)
    if args.all == bool(args.names):
        raise BoternityError("name the workflows to undeploy, or pass --all (and no names)")
    names = registered_workflows(client) if args.all else list(args.names)
    failed = 0
    for name in names:
        try:
            data = client.request("DELETE", f"/workflows/{quote(name)}")
        except ApiError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        aborted = data.get("aborted_queued_runs") if isinstance(data, dict) else None
        print(f"{name}: undeployed" + (f" ({aborted} queued runs aborted)" if aborted else ""))
    if args.all:
        print(f"{len(names) - failed} of {len(names)} workflows undeployed", file=sys.stderr)
    return 1 if failed else 0


def cmd_trigger(args: Any) -> int:
    payload = read_input(args.input)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    _print(Client(args.api, api_key=args.api_key).request(
        "POST", f"/workflows/{quote(args.workflow)}/runs", body=json.dumps(payload).encode(), headers=headers))
    return 0


def cmd_runs(args: Any) -> int:
    q = f"?limit={args.limit}" + (f"&status={args.status}" if args.status else "")
    _print(Client(args.api, api_key=args.api_key).request("GET", f"/workflows/{quote(args.workflow)}/runs{q}"))
    return 0


def cmd_logs(args: Any) -> int:
    data = Client(args.api, api_key=args.api_key).request("GET", f"/runs/{quote(args.run_id)}")
    if args.json:
        _print(data)
        return 0
    run = data.get("run", data) if isinstance(data, dict) else data
    print(f"run {run.get('run_id')} of {run.get('workflow')}: {run.get('status')} "
          f"(started {run.get('started_at')}, ended {run.get('ended_at') or '-'})")
    if run.get("error"):
        print(f"  error: {run.get('error')}: {run.get('cause')}")
    if run.get("input_size") is not None:
        print(f"  input: {_input_line(run)}")
    for s in data.get("steps", []) if isinstance(data, dict) else []:
        it = f" [{s['iteration']}]" if s.get("iteration") else ""
        line = f"  {s.get('status', '?'):>10}  {s.get('step_id')}{it}  attempts={s.get('attempts') or 0}"
        if s.get("error"):
            line += f"  error: {s['error']}"
        print(line)
    return 0


# How much of a run's input `boternity logs` prints on its one line (`--json` prints it whole).
INPUT_LINE_CHARS = 200


def _input_line(run: dict[str, Any]) -> str:
    """A run's input on one line: compact JSON, or the preview of a claim-checked one, cut."""
    size = int(run.get("input_size") or 0)
    value = run.get("input")
    claim_checked = isinstance(value, dict) and "$ref" in value
    whole = not claim_checked and "input" in run
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False) if whole else str(run.get("input_preview") or "")
    if len(text) > INPUT_LINE_CHARS or not whole:
        text = text[:INPUT_LINE_CHARS] + f"… ({size:,} bytes)"
    return text


def cmd_cancel(args: Any) -> int:
    _print(Client(args.api, api_key=args.api_key).request("POST", f"/runs/{quote(args.run_id)}/cancel", body=b"{}"))
    return 0


def cmd_redrive(args: Any) -> int:
    _print(Client(args.api, api_key=args.api_key).request("POST", f"/runs/{quote(args.run_id)}/redrive", body=b"{}"))
    return 0


def cmd_decide(args: Any, approved: bool) -> int:
    body = json.dumps({"approved": approved, "comment": args.comment}).encode()
    _print(Client(args.api, api_key=args.api_key).request(
        "POST", f"/approvals/{quote(args.approval_id)}/decision", body=body))
    return 0


def cmd_upload(args: Any) -> int:
    data = Path(args.file).read_bytes()
    key = args.key or Path(args.file).name
    _print(Client(args.api).request("PUT", f"/_local/files/{quote(key)}", body=data,
                                    content_type="application/octet-stream"))
    return 0


def cmd_secrets_set(args: Any) -> int:
    problem = secret_name_problem(args.name)
    if problem is not None:  # refused before the value is read or sent anywhere
        raise BoternityError(problem)
    value = args.value if args.value is not None else sys.stdin.read().rstrip("\n")
    _print(Client(args.api).request("PUT", f"/_local/secrets/{quote(args.name)}", body=value.encode(),
                                    content_type="text/plain"))
    return 0


def cmd_serve(args: Any) -> int:
    # The local cloud (moto) only for `boternity serve`: seconds of imports no other command needs.
    from boternity.local import cloud_patches
    from boternity.local.engine import LocalEngine, user_cache_dir
    from boternity.local.server import LocalServer, prepare_local_cloud

    base = Path(args.dir or ".").resolve()
    env: dict[str, str] = {}
    for kind in ("bots", "skills"):
        if (base / kind).is_dir():
            env[f"BOTERNITY_{kind.upper()}_DIR"] = str(base / kind)
    cache = user_cache_dir()
    with LocalEngine(base_dir=base, env=env, parse_cache_dir=cache / "asl" if cache else None) as engine:
        cloud_patches.apply()
        os.environ.update(prepare_local_cloud(engine))
        cloud_patches.install_trigger_function(role_arn=engine.role_arn)
        server = LocalServer(engine, host="127.0.0.1", port=args.port)
        http = server.make_http_server()
        os.environ["BOTERNITY_WEBHOOK_BASE_URL"] = f"http://127.0.0.1:{server.port}/hooks"
        os.environ["BOTERNITY_APPROVAL_BASE_URL"] = f"http://127.0.0.1:{server.port}"
        print(f"Boternity API on http://127.0.0.1:{server.port} (emulated AWS, in memory; Ctrl-C stops)\n"
              f"Console: http://127.0.0.1:{server.port}/console/", file=sys.stderr)
        threading.Thread(target=server._cron_loop, daemon=True).start()
        try:
            http.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server._stop.set()
            http.server_close()
    return 0


def sync_assets(bucket: str, *, bots: Path | None, skills: Path | None, s3: Any = None) -> list[str]:
    """Upload bots/<slug>/ and skills/<name>/ folders to the project bucket, where the cloud
    functions read them (cached per container). Returns the keys written."""
    import boto3  # only `boternity sync` talks to S3 itself


    s3 = s3 or boto3.client("s3")
    written: list[str] = []
    for kind, root in (("bots", bots), ("skills", skills)):
        if root is None:
            continue
        if not root.is_dir():
            raise BoternityError(f"--{kind}: {root} is not a folder")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if "/" not in rel or any(part.startswith(".") and part != ".boternity-meta.toml"
                                     for part in rel.split("/")):
                continue  # only files inside a bot or skill folder; no dotfiles except the manifest
            key = f"{kind}/{rel}"
            s3.upload_file(str(path), bucket, key)
            written.append(key)
    return written


def cmd_sync(args: Any) -> int:
    keys = sync_assets(args.bucket, bots=Path(args.bots) if args.bots else None,
                       skills=Path(args.skills) if args.skills else None)
    for k in keys:
        print(f"s3://{args.bucket}/{k}")
    print(f"{len(keys)} files synced", file=sys.stderr)
    return 0
