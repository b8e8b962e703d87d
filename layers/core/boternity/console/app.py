"""The console's HTTP side: page shells, static assets, JSON views built from the API, and a
narrow, CSRF-checked pass-through for the actions (start, cancel, redrive, decide).

Every answer comes from :meth:`ConsoleApp.handle` ``(method, target, headers, body) -> (status,
headers, body)``, the dispatch shape of ``boternity.local.http_server``; the API is reached only
through the ``upstream`` callable of the same shape, in-process under `boternity serve`, SigV4-signed
HTTP under `boternity console --api`.

Safety: pages carry a Content-Security-Policy allowing only this origin's scripts (no inline
script anywhere, so markup smuggled into a name or an output cannot run even if it were inserted
as HTML, which the JavaScript never does: it sets text); every state-changing request needs the
per-process token both in a ``SameSite=Strict`` cookie and in a header (a cross-site page can send
neither); requests whose Host is not a loopback name are refused, so a DNS-rebinding page cannot
read the signed API through a user's console.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import secrets
import threading
from collections import OrderedDict
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

from boternity.console.layout import layout, step_graph
from boternity.errors import readable_cause
from boternity.runtime.context import is_claim_check
from boternity.store.blobs import read_ref

if TYPE_CHECKING:
    from collections.abc import Callable

    from boternity.store.blobs import BlobStore

    Upstream = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]

CSRF_COOKIE = "boternity_console_csrf"
CSRF_HEADER = "X-Boternity-CSRF"
# How much of an output a step panel shows; the whole value is a download away.
OUTPUT_PREVIEW_BYTES = 64 * 1024
# The runs read per workflow for the overview.
RECENT_PER_WORKFLOW = 5
# The approvals on one page of the approvals list (the API's largest page).
APPROVALS_PER_PAGE = 100
_GRAPH_CACHE_SIZE = 128
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png"}
_SAFE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# The actions the console may take through the API: nothing that registers or deletes workflows.
_ACTIONS = (
    re.compile(r"/workflows/[^/]+/runs"),
    re.compile(r"/runs/[^/]+/(?:cancel|redrive)"),
    re.compile(r"/approvals/[^/]+/decision"),
)
_RUN_OPEN = ("RUNNING", "QUEUED")
Answer = tuple[int, dict[str, str], bytes]


class UpstreamError(Exception):
    """The API answered an error: passed on to the browser as it came."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"API answered {status}")
        self.status = status
        self.body = body


class ConsoleApp:
    """Serves ``/console/...``; ``api_label`` names the API in the page header; ``blobs`` reads
    claim-checked outputs (None where the console has no access to the bucket)."""

    def __init__(self, upstream: Upstream, *, api_label: str = "boternity serve",
                 blobs: Callable[[], BlobStore | None] | None = None, csrf_token: str | None = None) -> None:
        self.upstream = upstream
        self.api_label = api_label
        self._blobs = blobs
        self.csrf_token = csrf_token or secrets.token_urlsafe(32)
        self._graphs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._graphs_lock = threading.Lock()

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        if not _loopback_host(_header(headers, "Host")):
            return error_answer(403, "forbidden_host", "the console answers only requests addressed to 127.0.0.1 or "
                          "localhost")
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/console/api/"):
                return self._proxy(method, path[len("/console/api"):], parts.query, headers, body)
            if method not in ("GET", "HEAD"):
                return error_answer(405, "method_not_allowed", f"{method} is not allowed here", {"Allow": "GET, HEAD"})
            if path in ("/console", "/"):
                return 308, {"Location": "/console/"}, b""
            if path.startswith("/console/static/"):
                return self._static(path[len("/console/static/"):])
            if path.startswith("/console/data/"):
                return self._data(path[len("/console/data/"):], query)
            return self._page(path)
        except UpstreamError as exc:
            return exc.status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, exc.body

    # ------------------------------------------------------------------ pages
    def _page(self, path: str) -> Answer:
        segments = [unquote(s) for s in path.split("/")[2:]]
        if segments in ([""], []):
            page, arg, title = "home", "", "Workflows"
        elif segments == ["approvals"]:
            page, arg, title = "approvals", "", "Approvals"
        elif len(segments) == 2 and segments[0] == "workflows" and segments[1]:
            page, arg, title = "workflow", segments[1], f"Workflow {segments[1]}"
        elif len(segments) == 2 and segments[0] == "runs" and segments[1]:
            page, arg, title = "run", segments[1], f"Run {segments[1]}"
        else:
            return error_answer(404, "not_found", "no such console page")
        e = html.escape
        doc = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{e(title)} · Boternity console</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="csrf-token" content="{e(self.csrf_token)}">'
            '<link rel="icon" href="data:,"><link rel="stylesheet" href="/console/static/console.css"></head>'
            f'<body data-page="{e(page)}" data-arg="{e(arg)}">'
            '<header><a class="brand" href="/console/">Boternity</a>'
            '<nav><a href="/console/">Workflows</a><a href="/console/approvals">Approvals</a></nav>'
            f'<span class="api" title="the API this console talks to">{e(self.api_label)}</span></header>'
            f'<main id="main"><h1>{e(title)}</h1><noscript>The console needs JavaScript.</noscript></main>'
            '<script src="/console/static/console.js"></script></body></html>\n'
        )
        hdrs = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", **_SAFE_HEADERS,
                # HttpOnly: page scripts read the token from the page, never from the cookie; the
                # cookie proves the request came from a page this console served (SameSite=Strict).
                "Set-Cookie": f"{CSRF_COOKIE}={self.csrf_token}; Path=/console/; SameSite=Strict; HttpOnly"}
        return 200, hdrs, doc.encode()

    def _static(self, name: str) -> Answer:
        suffix = name[name.rfind("."):] if "." in name else ""
        if not re.fullmatch(r"[a-z0-9-]+\.[a-z]+", name) or suffix not in _STATIC_TYPES:
            return error_answer(404, "not_found", "no such asset")
        asset = resources.files("boternity.console") / "static" / name
        if not asset.is_file():
            return error_answer(404, "not_found", "no such asset")
        return 200, {"Content-Type": _STATIC_TYPES[suffix], "Cache-Control": "no-cache", **_SAFE_HEADERS}, \
            asset.read_bytes()

    # ------------------------------------------------------------------ the API, pass-through
    def _proxy(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        target = path + (f"?{query}" if query else "")
        if path.startswith(("/console", "/_local")) or path == "/":
            # The API's routes only: not the console itself (a loop) nor `boternity serve`'s local routes.
            return error_answer(404, "not_found", "no such API route")
        if method == "GET":
            status, hdrs, data = self.upstream("GET", target, {"Accept": "application/json"}, b"")
            return status, _json_headers(hdrs), data
        if method != "POST" or not any(p.fullmatch(path) for p in _ACTIONS):
            return error_answer(405, "method_not_allowed", "the console only starts, cancels and redrives runs and "
                          "decides approvals", {"Allow": "GET"})
        if not self._csrf_ok(headers):
            return error_answer(403, "csrf_failed", "the console's CSRF token is missing or wrong; reload the page")
        ctype = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
        if body and ctype != "application/json":
            return error_answer(415, "unsupported_media_type", "the console sends application/json")
        fwd = {"Accept": "application/json", "Content-Type": "application/json"}
        if (key := _header(headers, "Idempotency-Key")) is not None:
            fwd["Idempotency-Key"] = key
        status, hdrs, data = self.upstream("POST", target, fwd, body)
        return status, _json_headers(hdrs), data

    def _csrf_ok(self, headers: dict[str, str]) -> bool:
        sent = _header(headers, CSRF_HEADER) or ""
        cookie = _cookie(_header(headers, "Cookie") or "", CSRF_COOKIE) or ""
        return hmac.compare_digest(sent.encode(), self.csrf_token.encode()) and \
            hmac.compare_digest(cookie.encode(), self.csrf_token.encode())

    def _get(self, path: str) -> Any:
        status, _, data = self.upstream("GET", path, {"Accept": "application/json"}, b"")
        if status >= 400:
            raise UpstreamError(status, data)
        return json.loads(data)

    # ------------------------------------------------------------------ JSON views
    def _data(self, rest: str, query: dict[str, str]) -> Answer:
        segments = [unquote(s) for s in rest.split("/")]
        if segments == ["home"]:
            return _json(self.home())
        if segments == ["approvals"]:
            return _json(self.pending_approvals(next_token=query.get("next_token") or None,
                                                workflow=query.get("workflow") or None))
        if len(segments) == 2 and segments[0] == "workflows":
            return _json(self.workflow(segments[1]))
        if len(segments) == 2 and segments[0] == "runs":
            return _json(self.run(segments[1]))
        if len(segments) == 3 and segments[0] == "runs" and segments[2] == "input":
            return self.run_input(segments[1], download=query.get("download") == "1")
        if len(segments) == 3 and segments[0] == "runs" and segments[2] == "output":
            return self.step_output(segments[1], query.get("step", ""), query.get("iteration", ""),
                                    download=query.get("download") == "1")
        return error_answer(404, "not_found", "no such console data")

    def _workflows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._get("/workflows?limit=100" + (f"&next_token={quote(token)}" if token else ""))
            out += page.get("workflows") or []
            token = page.get("next_token")
            if not token:
                return out

    def home(self) -> dict[str, Any]:
        """Every workflow with its triggers, graph and last runs, and the most recent runs overall."""
        workflows = []
        recent: list[dict[str, Any]] = []
        for summary in self._workflows():
            name = str(summary["name"])
            try:
                view = self._get(f"/workflows/{quote(name, safe='')}")
            except UpstreamError as exc:
                if exc.status == 404:   # deleted since it was listed
                    continue
                raise
            runs = self._runs(name, limit=RECENT_PER_WORKFLOW)
            recent += runs
            workflows.append({"name": name, "description": view.get("description"),
                              "triggers": [_trigger_text(t) for t in view.get("triggers") or []],
                              "last_runs": runs, "graph": self._workflow_graph(view)})
        recent.sort(key=lambda r: str(r.get("started_at") or ""), reverse=True)
        return {"workflows": workflows, "recent_runs": recent[:20]}

    def _runs(self, name: str, *, limit: int, status: str | None = None) -> list[dict[str, Any]]:
        path = f"/workflows/{quote(name, safe='')}/runs?limit={limit}" + (f"&status={status}" if status else "")
        try:
            return list(self._get(path).get("runs") or [])
        except UpstreamError as exc:
            if exc.status == 404:   # a workflow with no runs yet
                return []
            raise

    def workflow(self, name: str) -> dict[str, Any]:
        view = self._get(f"/workflows/{quote(name, safe='')}")
        definition = view.get("definition")
        source = view.get("source")
        if isinstance(source, str):
            # The file as sent, comments and key order included.
            text, as_written = source, True
        else:
            # An API without the source (older than it): the parsed definition, as YAML again.
            text = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100) \
                if definition is not None else ""
            as_written = False
        return {"workflow": {k: v for k, v in view.items() if k not in ("definition", "source")},
                "triggers": [_trigger_text(t) for t in view.get("triggers") or []],
                "yaml": text, "as_written": as_written, "graph": self._workflow_graph(view)}

    def _workflow_graph(self, view: dict[str, Any]) -> dict[str, Any]:
        steps, edges = step_graph(view.get("definition"))
        drawn = layout([s["id"] for s in steps], edges).as_json()
        drawn["steps"] = {s["id"]: s for s in steps}
        return drawn

    def _run_graph(self, run_id: str, workflow: str | None, step_ids: list[str]) -> dict[str, Any]:
        """The run's DAG, laid out once per run (the workflow as registered when first viewed), plus
        any recorded step the definition lacks (it changed since the run started)."""
        with self._graphs_lock:
            cached = self._graphs.get(run_id)
        if cached is None or any(s not in cached["steps"] for s in step_ids):
            view: dict[str, Any] = {}
            if workflow:
                try:
                    view = self._get(f"/workflows/{quote(workflow, safe='')}")
                except UpstreamError as exc:
                    if exc.status != 404:   # a deleted workflow's runs still draw, from their records
                        raise
            steps, edges = step_graph(view.get("definition"))
            known = {s["id"] for s in steps}
            steps += [{"id": s, "name": s, "type": "step", "scope": "", "config": None, "unknown": True}
                      for s in step_ids if s not in known]
            cached = layout([s["id"] for s in steps], edges).as_json()
            cached["steps"] = {s["id"]: s for s in steps}
            with self._graphs_lock:
                self._graphs[run_id] = cached
                while len(self._graphs) > _GRAPH_CACHE_SIZE:
                    self._graphs.popitem(last=False)
        return cached

    def run(self, run_id: str) -> dict[str, Any]:
        """The run, its steps grouped by step id (outputs left out: a panel fetches the one it
        shows), the graph, and the pending approval of each waiting step."""
        detail = self._get(f"/runs/{quote(run_id, safe='')}")
        run = dict(detail.get("run") or {})
        # The input is fetched once by the page (run_input), not carried by every poll.
        run.pop("input", None)
        run.pop("input_preview", None)
        run["error_text"] = readable_cause(run.get("error"), run.get("cause")) if run.get("error") or \
            run.get("cause") else None
        grouped: dict[str, dict[str, Any]] = {}
        for rec in detail.get("steps") or []:
            sid = str(rec.get("step_id"))
            entry = grouped.setdefault(sid, {"record": None, "iterations": []})
            slim = _slim(rec)
            if rec.get("iteration"):
                entry["iterations"].append(slim)
            else:
                entry["record"] = slim
        for entry in grouped.values():
            # Items finish in any order: listed by index (i2 before i10), loop iterations by number.
            entry["iterations"].sort(key=lambda r: _natural(str(r.get("iteration"))))
            entry["status"] = _node_status(entry)
            rec = entry["record"] or {}
            if entry["status"] == "waiting_approval":
                entry["approval"] = self._approval_of(rec.get("_output"))
            for r in [entry["record"], *entry["iterations"]]:
                if r:
                    r.pop("_output", None)
        graph = self._run_graph(run_id, run.get("workflow"), list(grouped))
        return {"run": run, "steps": grouped, "graph": graph, "open": run.get("status") in _RUN_OPEN}

    def _approval_of(self, output: Any) -> dict[str, Any] | None:
        aid = output.get("approval_id") if isinstance(output, dict) else None
        if not isinstance(aid, str):
            return None
        try:
            view = self._get(f"/approvals/{quote(aid, safe='')}")
        except UpstreamError:
            return {"approval_id": aid, "status": "UNKNOWN"}
        return {k: view.get(k) for k in ("approval_id", "status", "prompt", "created_at", "decide_by")}

    def step_output(self, run_id: str, step_id: str, iteration: str, *, download: bool) -> Answer:
        """One step record's output, claim-checked references resolved: a preview of at most
        OUTPUT_PREVIEW_BYTES, or the whole value as a download."""
        detail = self._get(f"/runs/{quote(run_id, safe='')}")
        for rec in detail.get("steps") or []:
            if rec.get("step_id") == step_id and str(rec.get("iteration") or "") == iteration:
                break
        else:
            return error_answer(404, "not_found", f"run '{run_id}' has no record of step '{step_id}'"
                          + (f" iteration '{iteration}'" if iteration else ""))
        name = f"{run_id}-{step_id}{'-' + iteration if iteration else ''}"
        return self._value(rec.get("output"), name=name, download=download, what="output")

    def run_input(self, run_id: str, *, download: bool) -> Answer:
        """The payload the run started with, as :meth:`step_output` shows an output. A run
        started by Step Functions with a large input has only the API's preview."""
        run = self._get(f"/runs/{quote(run_id, safe='')}").get("run") or {}
        value = run.get("input")
        if value is None and run.get("input_size") is None:
            return _json({"claim_checked": False, "resolved": False, "size": None,
                          "message": "no input is recorded for this run (it started before runs kept theirs)"})
        if value is None and run.get("input_preview"):
            # Started by Step Functions with a large input: the API kept its beginning only.
            return _json({"claim_checked": False, "resolved": True, "size": run.get("input_size"), "truncated": True,
                          "downloadable": False, "text": str(run["input_preview"])})
        return self._value(value, name=f"{run_id}-input", download=download, what="input",
                           fallback=run.get("input_preview"))

    def _value(self, value: Any, *, name: str, download: bool, what: str, fallback: Any = None) -> Answer:
        """A recorded value, claim-checked references resolved: a preview of at most
        OUTPUT_PREVIEW_BYTES, or the whole value as a download."""
        ref = None
        if is_claim_check(value):
            ref = {"size": value.get("size")}
            store = self._blobs() if self._blobs else None
            if store is None:
                return _json({"claim_checked": True, "resolved": False, "size": value.get("size"),
                              "preview": fallback,
                              "message": f"this {what} is claim-checked to the project bucket, which this console "
                                         "cannot read (start `boternity console` with --bucket <BucketName>)"})
            try:
                data = read_ref(store, value)
            except Exception as exc:  # noqa: BLE001 - missing, expired or corrupt: say so in the panel
                return _json({"claim_checked": True, "resolved": False, "size": value.get("size"),
                              "preview": fallback,
                              "message": f"the claim-checked {what} could not be read: {type(exc).__name__}"})
            text = data.decode("utf-8", "replace")
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False)
        if download:
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            return 200, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
                         "Content-Disposition": f'attachment; filename="{safe}.json"', **_SAFE_HEADERS}, text.encode()
        raw = text.encode()
        truncated = len(raw) > OUTPUT_PREVIEW_BYTES
        if ref is not None and not truncated:
            try:   # pretty-print a resolved value that fits the preview
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        preview = raw[:OUTPUT_PREVIEW_BYTES].decode("utf-8", "ignore") if truncated else text
        return _json({"claim_checked": ref is not None, "resolved": True, "size": len(raw), "truncated": truncated,
                      "downloadable": True, "text": preview})

    def pending_approvals(self, *, next_token: str | None = None, workflow: str | None = None) -> dict[str, Any]:
        """One page of the approvals waiting for a decision (the API's ``GET /approvals``, one
        index query: no run is read), and the token of the next page."""
        query = f"?status=pending&limit={APPROVALS_PER_PAGE}"
        if workflow:
            query += f"&workflow={quote(workflow, safe='')}"
        if next_token:
            query += f"&next_token={quote(next_token, safe='')}"
        page = self._get("/approvals" + query)
        keep = ("approval_id", "status", "prompt", "created_at", "decide_by", "run_id", "workflow", "step_id")
        return {"approvals": [{k: a.get(k) for k in keep} for a in page.get("approvals") or []],
                "next_token": page.get("next_token")}


# ---------------------------------------------------------------------- helpers


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k != "output"}
    value = rec.get("output")
    out["_output"] = value
    if is_claim_check(value):
        out["output_size"] = value.get("size")
        out["output_claim_checked"] = True
    else:
        out["output_size"] = len(json.dumps(value, ensure_ascii=False).encode()) if value is not None else 0
    return out


def _natural(text: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part]


def _node_status(entry: dict[str, Any]) -> str:
    """A step's status: its own record's, else one summing its iterations (a loop body step has
    only iteration records)."""
    if entry["record"] and entry["record"].get("status"):
        return str(entry["record"]["status"])
    found = {str(r.get("status")) for r in entry["iterations"]}
    for status in ("running", "waiting_approval", "failed", "timed_out", "aborted"):
        if status in found:
            return status
    if found and found <= {"skipped"}:
        return "skipped"
    return "completed" if found else "pending"


def _trigger_text(t: dict[str, Any]) -> str:
    kind = str(t.get("type"))
    detail = t.get("schedule") or t.get("url") or t.get("path") or t.get("source") or t.get("detail_type")
    return f"{kind} {detail}" if detail else kind


def _loopback_host(host: str | None) -> bool:
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
    return name.lower() in _LOOPBACK


def _header(headers: dict[str, str], name: str) -> str | None:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def _json_headers(upstream_headers: dict[str, str]) -> dict[str, str]:
    out = {"Content-Type": "application/json", "Cache-Control": "no-store", **_SAFE_HEADERS}
    retry = _header(upstream_headers, "Retry-After")
    if retry:
        out["Retry-After"] = retry
    return out


def _json(data: Any) -> Answer:
    return 200, {"Content-Type": "application/json", "Cache-Control": "no-store", **_SAFE_HEADERS}, \
        json.dumps(data, ensure_ascii=False, default=str).encode()


def error_answer(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Answer:
    """The console's own refusal, in the API's error shape."""
    body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
    return status, {"Content-Type": "application/json", **_SAFE_HEADERS, **(extra or {})}, body
