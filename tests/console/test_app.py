"""The console's HTTP side against a scripted API (no browser, no moto): what each page and view
answers, which calls reach the API, and what is refused before it does (CSRF, foreign hosts,
actions the console does not take)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from boternity.console.app import CSRF_COOKIE, CSRF_HEADER, OUTPUT_PREVIEW_BYTES, ConsoleApp
from boternity.store.blobs import LocalBlobStore, claim_check

TOKEN = "t" * 43
HOST = {"Host": "127.0.0.1:8000"}

DEFINITION = {"name": "demo", "steps": [
    {"id": "fetch", "name": "<script>alert(1)</script>", "type": "skill", "config": {"skill": "echo-prompt", "input": "x"}},
    {"id": "ask", "type": "approval", "depends_on": ["fetch"], "config": {"prompt": "Ship?"}},
    {"id": "after", "type": "wait", "depends_on": ["ask"], "config": {"seconds": 0}},
]}


class FakeApi:
    """Answers the API routes the console reads from fixed data, and records every call."""

    def __init__(self, steps: list[dict[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []
        self.steps = steps if steps is not None else [
            {"step_id": "fetch", "status": "completed", "iteration": "", "output": {"output": "<b>hi</b>"}},
            {"step_id": "ask", "status": "waiting_approval", "iteration": "", "output": {"approval_id": "A" * 22}},
        ]

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.calls.append((method, target, headers, body))
        routes: dict[str, Any] = {
            "/workflows?limit=100": {"workflows": [{"name": "demo"}, {"name": "deleted-meanwhile"}]},
            "/workflows/demo": {"name": "demo", "version": 1, "definition": DEFINITION, "triggers": [{"type": "manual"}]},
            "/workflows/demo/runs?limit=5": {"runs": [{"run_id": "r1", "workflow": "demo", "status": "RUNNING"}]},
            "/approvals?status=pending&limit=100": {"approvals": [
                {"approval_id": "A" * 22, "status": "PENDING", "prompt": "Ship?", "run_id": "r1", "workflow": "demo",
                 "step_id": "ask", "created_at": "2026-12-01T10:00:00.000Z", "decide_by": 1796000000,
                 "links": {"self": "/approvals/" + "A" * 22}}], "next_token": "page2"},
            "/approvals?status=pending&limit=100&next_token=page2": {"approvals": [], "next_token": None},
            "/approvals?status=pending&limit=100&workflow=de%20mo&next_token=p%2B2": {"approvals": [],
                                                                                     "next_token": None},
            "/runs/r1": {"run": {"run_id": "r1", "workflow": "demo", "status": "RUNNING"}, "steps": self.steps},
            "/approvals/" + "A" * 22: {"approval_id": "A" * 22, "status": "PENDING", "prompt": "Ship?"},
        }
        if method == "POST":
            return 202, {"Content-Type": "application/json"}, b'{"run_id": "r2"}'
        if target in routes:
            return 200, {"Content-Type": "application/json"}, json.dumps(routes[target]).encode()
        return 404, {"Content-Type": "application/json"}, b'{"error": {"code": "not_found", "message": "nope"}}'


def get(app: ConsoleApp, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return app.handle("GET", target, {**HOST, **(headers or {})}, b"")


def post(app: ConsoleApp, target: str, body: bytes = b"{}", *, header: str | None = TOKEN,
         cookie: str | None = TOKEN, content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    headers = {**HOST, "Content-Type": content_type}
    if header is not None:
        headers[CSRF_HEADER] = header
    if cookie is not None:
        headers["Cookie"] = f"other=1; {CSRF_COOKIE}={cookie}"
    return app.handle("POST", target, headers, body)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def app(api: FakeApi) -> ConsoleApp:
    return ConsoleApp(api, csrf_token=TOKEN)


def test_a_page_sets_the_csrf_cookie_strict_and_a_csp_without_inline_scripts(app):
    status, headers, body = get(app, "/console/runs/r1")
    assert status == 200
    assert headers["Set-Cookie"] == f"{CSRF_COOKIE}={TOKEN}; Path=/console/; SameSite=Strict; HttpOnly"
    assert "script-src 'self';" in headers["Content-Security-Policy"]
    assert b"<script>" not in body.replace(b'<script src="/console/static/console.js"></script>', b"")
    assert f'<meta name="csrf-token" content="{TOKEN}">'.encode() in body


def test_names_in_page_paths_are_escaped_in_the_shell(app):
    status, _, body = get(app, "/console/workflows/%3Cscript%3Ealert(1)%3C%2Fscript%3E%22")
    assert status == 200
    assert b"<script>alert" not in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in body


def test_an_action_with_the_token_in_cookie_and_header_reaches_the_api(app, api):
    status, _, body = post(app, "/console/api/workflows/demo/runs", b'{"topic": "x"}')
    assert (status, json.loads(body)) == (202, {"run_id": "r2"})
    method, target, headers, sent = api.calls[-1]
    assert (method, target, sent) == ("POST", "/workflows/demo/runs", b'{"topic": "x"}')
    assert "Cookie" not in headers and CSRF_HEADER not in headers   # the console's token stays here


@pytest.mark.parametrize(("header", "cookie"), [(None, TOKEN), (TOKEN, None), ("x" * 43, TOKEN), (TOKEN, "x" * 43),
                                                (None, None)])
def test_an_action_without_both_tokens_is_refused_before_the_api(app, api, header, cookie):
    status, _, body = post(app, "/console/api/runs/r1/cancel", header=header, cookie=cookie)
    assert status == 403
    assert json.loads(body)["error"]["code"] == "csrf_failed"
    assert api.calls == []


def test_a_form_post_is_refused_even_with_the_token(app, api):
    status, _, _ = post(app, "/console/api/runs/r1/cancel", b"approved=true", content_type="text/plain")
    assert status == 415
    assert api.calls == []


@pytest.mark.parametrize(("method", "target"), [
    ("PUT", "/console/api/workflows/demo"), ("DELETE", "/console/api/workflows/demo"),
    ("POST", "/console/api/workflows/demo"), ("POST", "/console/api/runs/r1"), ("PUT", "/console/api/runs/r1/cancel"),
])
def test_actions_beyond_runs_and_approvals_are_not_passed_on(app, api, method, target):
    headers = {**HOST, CSRF_HEADER: TOKEN, "Cookie": f"{CSRF_COOKIE}={TOKEN}", "Content-Type": "application/json"}
    status, _, _ = app.handle(method, target, headers, b"{}")
    assert status == 405
    assert api.calls == []


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", None])
def test_a_request_for_another_host_name_is_refused(app, api, host):
    headers = {"Host": host} if host else {}
    status, _, body = app.handle("GET", "/console/data/runs/r1", headers, b"")
    assert status == 403
    assert json.loads(body)["error"]["code"] == "forbidden_host"
    assert api.calls == []


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000"])
def test_loopback_host_names_are_served(app, host):
    assert app.handle("GET", "/console/", {"Host": host}, b"")[0] == 200


def test_the_run_view_groups_steps_draws_the_definition_and_shows_the_pending_approval(app):
    status, _, body = get(app, "/console/data/runs/r1")
    assert status == 200
    view = json.loads(body)
    assert view["open"] is True
    assert {k: v["status"] for k, v in view["steps"].items()} == {"fetch": "completed", "ask": "waiting_approval"}
    assert view["steps"]["ask"]["approval"] == {"approval_id": "A" * 22, "status": "PENDING", "prompt": "Ship?",
                                               "created_at": None, "decide_by": None}
    assert "_output" not in view["steps"]["fetch"]["record"] and "output" not in view["steps"]["fetch"]["record"]
    assert [n["id"] for n in view["graph"]["nodes"]] == ["fetch", "ask", "after"]
    assert {(e["from"], e["to"]) for e in view["graph"]["edges"]} == {("fetch", "ask"), ("ask", "after")}
    assert view["graph"]["steps"]["fetch"]["name"] == "<script>alert(1)</script>"   # data, escaped by the page


def test_a_recorded_step_missing_from_the_definition_still_gets_a_node(api):
    api.steps.append({"step_id": "renamed", "status": "completed", "iteration": ""})
    view = json.loads(get(ConsoleApp(api, csrf_token=TOKEN), "/console/data/runs/r1")[2])
    assert view["graph"]["steps"]["renamed"]["unknown"] is True
    assert "renamed" in [n["id"] for n in view["graph"]["nodes"]]


def test_iterations_make_the_status_of_a_step_without_its_own_record():
    api = FakeApi([{"step_id": "body", "status": "running", "iteration": "2"},
                   {"step_id": "body", "status": "completed", "iteration": "1"}])
    view = json.loads(get(ConsoleApp(api, csrf_token=TOKEN), "/console/data/runs/r1")[2])
    assert view["steps"]["body"]["status"] == "running"
    assert [i["iteration"] for i in view["steps"]["body"]["iterations"]] == ["1", "2"]


def test_items_are_listed_by_index_whatever_order_they_finished_in():
    api = FakeApi([{"step_id": "each", "status": "completed", "iteration": f"/i{i}"} for i in (10, 2, 0, 1)])
    view = json.loads(get(ConsoleApp(api, csrf_token=TOKEN), "/console/data/runs/r1")[2])
    assert [i["iteration"] for i in view["steps"]["each"]["iterations"]] == ["/i0", "/i1", "/i2", "/i10"]


def test_pending_approvals_come_from_the_apis_listing_without_reading_any_run(app, api):
    view = json.loads(get(app, "/console/data/approvals")[2])
    assert view == {"approvals": [{"approval_id": "A" * 22, "status": "PENDING", "prompt": "Ship?",
                                   "created_at": "2026-12-01T10:00:00.000Z", "decide_by": 1796000000, "run_id": "r1",
                                   "workflow": "demo", "step_id": "ask"}], "next_token": "page2"}
    assert [c[1] for c in api.calls] == ["/approvals?status=pending&limit=100"], "one listing call, no run scan"
    more = json.loads(get(app, "/console/data/approvals?next_token=page2")[2])
    assert more == {"approvals": [], "next_token": None}


def test_the_approvals_view_passes_a_workflow_and_a_page_token_on_quoted(app, api):
    status, _, body = get(app, "/console/data/approvals?workflow=de%20mo&next_token=p%2B2")
    assert status == 200 and json.loads(body) == {"approvals": [], "next_token": None}
    assert [c[1] for c in api.calls] == ["/approvals?status=pending&limit=100&workflow=de%20mo&next_token=p%2B2"]


def test_the_overview_lists_workflows_with_triggers_graph_and_last_runs(app):
    view = json.loads(get(app, "/console/data/home")[2])
    [wf] = view["workflows"]   # the one deleted between the list and its read is left out
    assert (wf["name"], wf["triggers"], [r["run_id"] for r in wf["last_runs"]]) == ("demo", ["manual"], ["r1"])
    assert len(wf["graph"]["nodes"]) == 3
    assert [r["run_id"] for r in view["recent_runs"]] == ["r1"]


def test_an_api_error_is_passed_on_as_it_came(app):
    status, _, body = get(app, "/console/data/runs/nope")
    assert status == 404
    assert json.loads(body)["error"]["message"] == "nope"


def test_a_large_inline_output_is_previewed_and_downloadable_whole():
    big = {"text": "<script>" + "x" * (OUTPUT_PREVIEW_BYTES * 2)}
    app = ConsoleApp(FakeApi([{"step_id": "fetch", "status": "completed", "iteration": "", "output": big}]),
                     csrf_token=TOKEN)
    preview = json.loads(get(app, "/console/data/runs/r1/output?step=fetch&iteration=")[2])
    assert preview["truncated"] is True and preview["resolved"] is True and preview["claim_checked"] is False
    assert len(preview["text"].encode()) <= OUTPUT_PREVIEW_BYTES < preview["size"]
    status, headers, whole = get(app, "/console/data/runs/r1/output?step=fetch&iteration=&download=1")
    assert status == 200
    assert headers["Content-Disposition"] == 'attachment; filename="r1-fetch.json"'
    assert json.loads(whole) == big


def test_a_claim_checked_output_is_read_from_the_blob_store(tmp_path):
    store = LocalBlobStore(tmp_path)
    value = {"rows": list(range(2000))}
    ref = claim_check(value, limit=100, store=store)
    assert "$ref" in ref
    app = ConsoleApp(FakeApi([{"step_id": "fetch", "status": "completed", "iteration": "", "output": ref}]),
                     csrf_token=TOKEN, blobs=lambda: store)
    out = json.loads(get(app, "/console/data/runs/r1/output?step=fetch&iteration=")[2])
    assert (out["claim_checked"], out["resolved"], out["truncated"]) == (True, True, False)
    assert json.loads(out["text"]) == value


def test_a_claim_checked_output_without_a_blob_store_says_how_to_read_it():
    ref = {"$ref": "blob:" + "0" * 64, "size": 123456}
    app = ConsoleApp(FakeApi([{"step_id": "fetch", "status": "completed", "iteration": "", "output": ref}]),
                     csrf_token=TOKEN)
    out = json.loads(get(app, "/console/data/runs/r1/output?step=fetch&iteration=")[2])
    assert (out["resolved"], out["size"]) == (False, 123456)
    assert "--bucket" in out["message"]


def test_an_output_holding_a_json_schema_ref_is_data_not_a_stored_reference():
    """Only what the blob store writes is a reference: a JSON Schema's "$ref" is shown as it is."""
    schema = {"$ref": "#/definitions/user", "size": 3, "definitions": {"user": {"type": "object"}}}
    app = ConsoleApp(FakeApi([{"step_id": "fetch", "status": "completed", "iteration": "", "output": schema}]),
                     csrf_token=TOKEN)
    out = json.loads(get(app, "/console/data/runs/r1/output?step=fetch&iteration=")[2])
    assert (out["claim_checked"], out["resolved"]) == (False, True)
    assert json.loads(out["text"]) == schema


def test_an_output_of_an_unknown_step_is_not_found(app):
    assert get(app, "/console/data/runs/r1/output?step=nope&iteration=")[0] == 404


@pytest.mark.parametrize("name", ["../app.py", "console.js.bak", "CONSOLE.JS", "x/../../console.js"])
def test_only_the_shipped_assets_are_served(app, name):
    assert get(app, "/console/static/" + name)[0] == 404


def test_the_shipped_script_and_style_are_served(app):
    status, headers, body = get(app, "/console/static/console.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert b"data-step-id" in body
    assert get(app, "/console/static/console.css")[0] == 200


@pytest.mark.parametrize("target", ["/console/api/console/api/runs/r1", "/console/api/_local/files/x", "/console/api/"])
def test_the_pass_through_reaches_api_routes_only(app, api, target):
    assert get(app, target)[0] == 404
    assert api.calls == []


@pytest.mark.parametrize(("statuses", "shown"), [
    (["completed", "timed_out"], "timed_out"), (["completed", "failed", "running"], "running"),
    (["skipped", "skipped"], "skipped"), (["completed", "skipped"], "completed"),
])
def test_a_step_with_only_iteration_records_shows_the_status_that_matters_most(statuses, shown):
    api = FakeApi([{"step_id": "body", "status": st, "iteration": str(i)} for i, st in enumerate(statuses)])
    view = json.loads(get(ConsoleApp(api, csrf_token=TOKEN), "/console/data/runs/r1")[2])
    assert view["steps"]["body"]["status"] == shown


def test_the_workflow_view_shows_the_source_as_written_with_its_comments():
    written = "# why this flow exists\nname: demo\nsteps:  # three of them\n  - {id: fetch, type: skill}\n"

    class WithSource(FakeApi):
        def __call__(self, method, target, headers, body):
            status, hdrs, data = super().__call__(method, target, headers, body)
            if target == "/workflows/demo":
                data = json.dumps({**json.loads(data), "source": written, "source_format": "yaml"}).encode()
            return status, hdrs, data

    view = json.loads(get(ConsoleApp(WithSource(), csrf_token=TOKEN), "/console/data/workflows/demo")[2])
    assert (view["yaml"], view["as_written"]) == (written, True)
    assert "source" not in view["workflow"]


def test_a_workflow_without_its_source_is_shown_re_serialised(app):
    view = json.loads(get(app, "/console/data/workflows/demo")[2])
    assert view["as_written"] is False
    assert view["yaml"].startswith("name: demo\nsteps:\n- id: fetch\n")


def input_api(run: dict[str, Any]) -> FakeApi:
    """A scripted API whose run r1 carries ``run`` (its input fields)."""

    class WithInput(FakeApi):
        def __call__(self, method, target, headers, body):
            status, hdrs, data = super().__call__(method, target, headers, body)
            if target == "/runs/r1":
                detail = json.loads(data)
                data = json.dumps({**detail, "run": {**detail["run"], **run}}).encode()
            return status, hdrs, data

    return WithInput()


def test_the_run_view_leaves_the_input_to_its_own_view():
    app = ConsoleApp(input_api({"input": {"who": "<b>ada</b>"}, "input_size": 20}), csrf_token=TOKEN)
    run = json.loads(get(app, "/console/data/runs/r1")[2])["run"]
    assert "input" not in run and run["input_size"] == 20, "a poll does not carry the input"
    shown = json.loads(get(app, "/console/data/runs/r1/input")[2])
    assert (shown["resolved"], shown["truncated"], json.loads(shown["text"])) == (True, False, {"who": "<b>ada</b>"})
    status, headers, whole = get(app, "/console/data/runs/r1/input?download=1")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="r1-input.json"'
    assert json.loads(whole) == {"who": "<b>ada</b>"}


def test_a_claim_checked_input_is_read_from_the_blob_store(tmp_path):
    store = LocalBlobStore(tmp_path)
    payload = {"rows": list(range(9000))}
    ref = claim_check(payload, limit=100, store=store)
    app = ConsoleApp(input_api({"input": ref, "input_preview": '{"rows":[0,1', "input_size": ref["size"]}),
                     csrf_token=TOKEN, blobs=lambda: store)
    shown = json.loads(get(app, "/console/data/runs/r1/input")[2])
    assert (shown["claim_checked"], shown["resolved"], shown["truncated"]) == (True, True, False)
    assert json.loads(shown["text"]) == payload
    without_bucket = json.loads(get(ConsoleApp(app.upstream, csrf_token=TOKEN), "/console/data/runs/r1/input")[2])
    assert (without_bucket["resolved"], without_bucket["preview"]) == (False, '{"rows":[0,1')
    assert "--bucket" in without_bucket["message"]


@pytest.mark.parametrize(("run", "resolved", "text"), [
    ({"input": None, "input_preview": '{"big":', "input_size": 50_000}, True, '{"big":'),
    ({"input": None, "input_preview": None, "input_size": None}, False, None),
], ids=["started-by-step-functions", "recorded-before-inputs"])
def test_an_input_without_its_whole_value_says_what_there_is(run, resolved, text):
    shown = json.loads(get(ConsoleApp(input_api(run), csrf_token=TOKEN), "/console/data/runs/r1/input")[2])
    assert shown["resolved"] is resolved and shown.get("text") == text
    assert shown.get("downloadable") is not True
