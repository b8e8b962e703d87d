"""The attacker's second pass over the input side (issue #13): workflow files and bodies, the
expression and template languages, the API handlers and ``boternity serve``, with inputs of the
same classes as the first pass but different shapes. Each finding has a test here that failed
before its fix; the cases that held are kept too, so the surface stays tested.
docs/second-pass-inputs.md lists every case and its outcome.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from boternity.handlers.api import lambda_handler as api
from boternity.handlers.webhook import lambda_handler as hook
from tests.support.apigw import call, local_cloud

SECONDS_MAX = 30        # generous: proves a bound, not a speed
YAML = {"Content-Type": "application/yaml"}
JSON = {"Content-Type": "application/json"}
WAIT = "{type: wait, config: {seconds: 0}}"
GOOD = f"name: target\ntriggers:\n  - {{type: webhook, path: /second-pass}}\nsteps:\n  - {{id: a, {WAIT[1:]}\n"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory):
    from boternity.local.engine import LocalEngine

    base = tmp_path_factory.mktemp("second-pass")
    with LocalEngine(base_dir=base, blob_dir=base / "blobs", fast_retry=True) as engine, local_cloud(engine):
        r = call(api, "PUT", "/workflows/target", body=GOOD, headers=YAML)
        assert r.status == 201, r.text
        yield engine


def executions(engine: Any) -> int:
    """Executions of the target workflow: what a refused request must not change."""
    arn = call(api, "GET", "/workflows/target").json["state_machine_arn"]
    return len(engine.sfn.list_executions(stateMachineArn=arn)["executions"])


def registered(engine: Any) -> set[str]:
    return {m["name"] for m in engine.sfn.list_state_machines()["stateMachines"]}


def put(name: str, text: str) -> Any:
    t0 = time.monotonic()
    r = call(api, "PUT", f"/workflows/{name}", body=text, headers=YAML)
    assert time.monotonic() - t0 < SECONDS_MAX
    return r


def first_detail(reply: Any) -> dict[str, Any]:
    error = reply.error
    assert error["code"] == "validation_failed", error
    return error["details"][0]


# ------------------------------------------------------------------ YAML values JSON cannot hold
# A workflow is stored and compiled as JSON; PyYAML's safe schema also makes dates, bytes, sets,
# ordered maps and NaN/Infinity, which the API answered with a 500 (json.dumps / the ASL parser).

NOT_JSON = [
    ("timestamp", "variables: {start: 2026-01-01T10:00:00Z}\n", "variables.start", "not_json",
     "a date/time is not a JSON value: quote it to keep it as text"),
    ("date", "variables: {day: 2026-01-01}\n", "variables.day", "not_json", "a date/time is not a JSON value"),
    ("binary", "variables: {blob: !!binary QUFB}\n", "variables.blob", "not_json",
     "binary data (!!binary) is not a JSON value: write it as a base64 string"),
    ("set", "variables: {tags: !!set {a, b}}\n", "variables.tags", "not_json",
     "a set (!!set) is not a JSON value: write it as a list"),
    ("omap", "variables: {m: !!omap [{a: 1}]}\n", "variables.m", "not_json", "an ordered map (!!omap)"),
    ("pairs", "variables: {m: !!pairs [{a: 1}]}\n", "variables.m", "not_json", "a list of pairs (!!pairs)"),
    ("nan", "variables: {x: .nan}\n", "variables.x", "invalid_number", ".nan is NaN, which is not a JSON number"),
    ("inf", "variables: {x: .inf}\n", "variables.x", "invalid_number", ".inf is Infinity, which is not a JSON number"),
    ("negative-inf", "variables: {x: -.Inf}\n", "variables.x", "invalid_number", "-.Inf is -Infinity"),
    ("overflowing-float", "variables: {x: 1.0e+999}\n", "variables.x", "invalid_number", "1.0e+999 is Infinity"),
    ("tagged-nan", "variables: {x: !!float nan}\n", "variables.x", "invalid_number", "nan is NaN"),
    ("tagged-infinity", "variables: {x: !!float -infinity}\n", "variables.x", "invalid_number",
     "-infinity is -Infinity"),
    ("date-key", "variables: {m: {2026-01-01: a}}\n", "variables.m", "not_json", "a key: a date/time"),
    ("nested-in-step-body",
     "  - {id: b, type: http, config: {url: 'https://example.com', body: {when: 2026-01-01}}}\n",
     "steps.1.config.body.when", "not_json", "a date/time"),
    ("metadata-binary", "metadata: {b: !!binary QUFB}\n", "metadata.b", "not_json", "binary data"),
]


@pytest.mark.parametrize("case, extra, field, code, says", NOT_JSON, ids=[c[0] for c in NOT_JSON])
def test_a_yaml_value_json_cannot_hold_is_a_400_naming_line_and_field(case, extra, field, code, says, cloud):
    text = GOOD.replace("target", "notjson").replace("/second-pass", "/nj") + extra
    r = put("notjson", text)
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["field"], detail["line"]) == (code, field, len(text.splitlines()))
    assert says in detail["message"], detail["message"]
    assert "boternity-notjson" not in registered(cloud)


def test_a_date_that_is_quoted_is_a_string_and_is_accepted(cloud):
    text = GOOD.replace("target", "quoted").replace("/second-pass", "/q") + "variables: {day: '2026-01-01'}\n"
    r = put("quoted", text)
    assert r.status == 201, r.text[:300]
    assert call(api, "DELETE", "/workflows/quoted").status == 200


def test_the_cli_refuses_a_date_variable_before_running(tmp_path):
    from boternity.errors import ValidationFailed
    from boternity.validate import load_workflow

    f = tmp_path / "wf.yaml"
    f.write_text("name: wf\nvariables: {when: 2026-01-01}\nsteps:\n  - {id: a, type: wait, config: {seconds: 0}}\n")
    with pytest.raises(ValidationFailed) as info:
        load_workflow(f)
    assert info.value.codes() == ["not_json"]
    assert info.value.errors[0].line == 2


# ------------------------------------------------------------------ JSON numbers that overflow
# 1e999 has three digits, so the number-length limit passed it, and json.loads made it Infinity:
# the same "not a JSON number" as a literal NaN, by another spelling.

@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"1E+400", b"0.1e99999"])
def test_a_json_number_beyond_a_double_is_refused_like_nan(number: bytes, cloud):
    before = executions(cloud)
    r = call(api, "POST", "/workflows/target/runs", body=b'{"a": ' + number + b"}", binary=True, headers=JSON)
    assert r.status == 400, r.text[:300]
    assert r.error["code"] == "invalid_number"
    assert r.error["message"].startswith("the payload holds " + number.decode())
    assert r.error["details"]["line"] == 1 and r.error["details"]["column"] == 7
    r = call(hook, "POST", "/hooks/second-pass", body=b'{"a": ' + number + b"}", binary=True, headers=JSON)
    assert r.status == 400 and r.error["code"] == "invalid_number", r.text[:300]
    assert executions(cloud) == before


def test_a_json_workflow_with_an_infinite_number_is_refused(cloud):
    body = b'{"name": "inf", "variables": {"x": 1e999}, "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}'
    r = call(api, "PUT", "/workflows/inf", body=body, binary=True, headers=JSON)
    assert r.status == 400, r.text[:300]
    assert r.error["code"] == "invalid_number"
    assert r.error["message"].startswith("the request body holds 1e999")
    assert r.error["details"]["column"] == 36
    assert "boternity-inf" not in registered(cloud)


def test_large_finite_numbers_still_parse(cloud):
    from boternity.parsing import loads_json

    assert loads_json("[1e308, -1.5e-320, 123456789012345678901234567890]") == [
        1e308, -1.5e-320, 123456789012345678901234567890]


# ------------------------------------------------------------------ the Idempotency-Key header

def test_an_empty_idempotency_key_is_a_422_not_a_500(cloud):
    before = executions(cloud)
    r = call(api, "POST", "/workflows/target/runs", body={}, headers={"Idempotency-Key": ""})
    assert r.status == 422, r.text[:300]
    assert r.error["code"] == "invalid_request"
    assert r.error["details"][0]["loc"] == ["header", "idempotency-key"]
    assert executions(cloud) == before


@pytest.mark.parametrize("key", ["", "k" * 8000, "\u00e9t\u00e9", " "], ids=["empty", "8000-chars", "latin-1", "space"])
def test_a_webhook_takes_any_idempotency_key_as_an_opaque_id(key: str, cloud):
    """Held: the webhook hashes the key into the run id (an empty one means no key), so no
    length or alphabet reaches a store key."""
    before = executions(cloud)
    r = call(hook, "POST", "/hooks/second-pass", body={"n": 1}, headers={"Idempotency-Key": key})
    assert r.status == 202, r.text[:300]
    assert executions(cloud) == before + 1


# ------------------------------------------------------------------ YAML merge keys

def test_a_merge_key_override_is_not_a_duplicate_key(cloud):
    """``<<: *base`` then a key of the base: YAML's merge lets the mapping's own key win. The
    duplicate check saw the merged pairs PyYAML splices in and refused it as 'duplicate key'."""
    text = ("name: merged\nsteps:\n  - &base {id: a, type: wait, config: {seconds: 0}}\n"
            "  - <<: *base\n    id: b\n    depends_on: [a]\n")
    r = put("merged", text)
    assert r.status == 201, r.text[:300]
    steps = call(api, "GET", "/workflows/merged").json["definition"]["steps"]
    assert [(s["id"], s.get("depends_on")) for s in steps] == [("a", None), ("b", ["a"])]
    assert call(api, "DELETE", "/workflows/merged").status == 200


def test_a_key_written_twice_next_to_a_merge_is_still_a_duplicate(cloud):
    text = "name: dup\nb: &b {x: 1}\nsteps:\n  - <<: *b\n    id: a\n    id: c\n    type: wait\n"
    r = put("dup", text)
    assert r.status == 400
    detail = first_detail(r)
    assert (detail["code"], detail["line"], detail["field"]) == ("duplicate_key", 6, "steps.0.id")


@pytest.mark.parametrize("fan", [1, 50])
def test_merges_fanning_out_from_one_anchor_stay_within_the_alias_limit(fan: int, cloud):
    """Held: each ``*base`` in ``<<: [*base, ...]`` is an alias, counted and weighed like any other."""
    steps = "".join(f"  - {{<<: [{', '.join(['*t'] * fan)}], id: s{i}}}\n" for i in range(3))
    text = f"name: fan\nsteps:\n  - &t {{id: s, type: wait, config: {{seconds: 0}}}}\n{steps}"
    r = put("fan", text)
    if fan * 3 > 100:
        assert r.status == 400 and first_detail(r)["code"] == "too_many_aliases", r.text[:300]
    else:
        assert r.status == 201, r.text[:300]
        assert call(api, "DELETE", "/workflows/fan").status == 200


# ------------------------------------------------------------------ amplification and size

def test_fifty_thousand_errors_answer_with_the_first_hundred(cloud):
    """A 250 KB body naming an unknown step 50,000 times made a 6.3 MB answer: over Lambda's 6 MB
    response limit, so API Gateway would have answered 502."""
    deps = ", ".join(["zz"] * 50_000)
    text = f"name: errs\nsteps:\n  - {{id: a, type: wait, config: {{seconds: 0}}, depends_on: [{deps}]}}\n"
    r = put("errs", text)
    assert r.status == 400
    assert len(r.text) < 64 * 1024
    error = r.error
    assert error["message"] == "50,000 errors in the workflow (the first 100 are in details)"
    assert len(error["details"]) == 100
    assert {d["code"] for d in error["details"]} == {"unknown_dependency"}
    assert "boternity-errs" not in registered(cloud)


def test_fifty_thousand_type_errors_are_capped_too(cloud):
    deps = ", ".join(["[1]"] * 30_000)
    text = f"name: errs\nsteps:\n  - {{id: a, type: wait, config: {{seconds: 0}}, depends_on: [{deps}]}}\n"
    r = put("errs", text)
    assert r.status == 400 and len(r.text) < 64 * 1024
    assert r.error["message"] == "30,000 errors in the workflow (the first 100 are in details)"


def _chain(n: int, name: str = "chain") -> str:
    return f"name: {name}\nsteps:\n" + "".join(
        f"  - {{id: s{i}, type: wait, config: {{seconds: 0}}{f', depends_on: [s{i - 1}]' if i else ''}}}\n"
        for i in range(n))


def test_more_steps_than_can_ever_compile_are_refused_when_read(cloud):
    """3,600 chained steps (250 KB) took 16 s of the api function to be refused by the compiler;
    validation and compiling grow faster than the steps, so the count is checked first."""
    r = put("chain", _chain(3600))
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["field"], detail["line"]) == ("too_many_steps", "steps", 3)
    assert detail["message"].startswith("a workflow has at most 1,500 steps, this one 3,600")
    assert "boternity-chain" not in registered(cloud)


def test_the_step_limit_is_in_the_schema_and_the_largest_workflow_still_validates():
    from boternity.model.workflow import MAX_STEPS, json_schema
    from boternity.validate import load_workflow_text

    assert json_schema()["properties"]["steps"]["maxItems"] == MAX_STEPS == 1500
    assert len(load_workflow_text(_chain(MAX_STEPS)).workflow.steps) == MAX_STEPS


# ------------------------------------------------------------------ templates that render huge text

BIG = "x" * 100_000
CTX = {"steps": {"a": {"output": BIG}}, "trigger": {}, "workflow": {"name": "w"}}


def test_one_output_referenced_many_times_stops_at_the_rendered_limit(monkeypatch):
    """10,000 references to a 100 KB output rendered 1 GB (and ran out of memory in a 2 GB process)."""
    from boternity.expressions import ExpressionError, render

    monkeypatch.setenv("BOTERNITY_MAX_RENDERED_CHARS", "1000000")
    template = "{{ steps.a.output }}" * 11
    with pytest.raises(ExpressionError) as info:
        render(template, CTX)
    assert info.value.message == ("the templates render to more than 1,000,000 characters "
                                  "(limit 1,000,000, BOTERNITY_MAX_RENDERED_CHARS)")
    assert len(str(info.value)) < 400   # the template is quoted cut short, not whole
    assert render("{{ steps.a.output }}" * 10, CTX) == BIG * 10


def test_the_rendered_limit_counts_every_string_of_one_step_together(monkeypatch):
    from boternity.expressions import ExpressionError, render_value

    monkeypatch.setenv("BOTERNITY_MAX_RENDERED_CHARS", "1000000")
    many = {"headers": {f"h{i}": "<{{ steps.a.output }}>" for i in range(11)}}
    with pytest.raises(ExpressionError, match="render to more than 1,000,000 characters"):
        render_value(many, CTX)
    # A value that is one reference is the value itself, not a copy: it costs nothing.
    shared = render_value({"items": ["{{ steps.a.output }}"] * 100_000}, CTX)
    assert all(item is BIG for item in shared["items"])


def test_the_default_rendered_limit_holds_three_of_the_largest_http_bodies():
    from boternity.expressions import ExpressionError, render
    from boternity.parsing import Limits

    assert Limits().max_rendered_chars == 32 * 1024 * 1024
    with pytest.raises(ExpressionError, match="more than 33,554,432 characters"):
        render("{{ steps.a.output }}" * 400, CTX)


# ------------------------------------------------------------------ numbers in expressions

@pytest.mark.parametrize("field, value, code", [
    ("condition", "trigger.n < 1e999", "condition_syntax"),
    ("condition", "trigger.n > -1E+400", "condition_syntax"),
    ("config.until", "{{ trigger.when | default(1e999) }}", "template_syntax"),
], ids=["condition", "negative-condition", "template-default"])
def test_a_number_literal_beyond_a_double_is_refused_at_load(field: str, value: str, code: str):
    """``default(1e999)`` rendered 'Infinity' (or gave a step float('inf')); in a condition it
    became Infinity silently. Either is an error where the workflow is loaded."""
    from boternity.errors import ValidationFailed
    from boternity.validate import load_workflow_text

    step = {"id": "a", "type": "wait", "config": {"seconds": 0}}
    if field == "condition":
        step["condition"] = value
    else:
        step["config"] = {"until": value}
    with pytest.raises(ValidationFailed) as info:
        load_workflow_text(json.dumps({"name": "n", "steps": [step]}))
    [error] = info.value.errors
    assert (error.code, error.field) == (code, field)
    assert "number out of range (beyond a double)" in error.message


@pytest.mark.parametrize("expr, says", [
    ("1 / 0", "division by zero"), ("1 // 0", "division by zero"), ("1 % 0", "division by zero"),
    ("10 ^ 10 ^ 10", "arithmetic error"), ("trigger.big * 1.5 > 0", "arithmetic error"),
    ("'a' * 1000000000", "'*' needs numbers"), ("[1] < [2]", "cannot compare list and list"),
    ("{} < {}", "cannot compare object and object"), ("true < false", "cannot compare boolean and boolean"),
    ("(" * 5000 + "1" + ")" * 5000, "nested too deeply"), ("!" * 100_000 + "1", "nested too deeply"),
    ("+".join(["trigger.s"] * 1000), "nested too deeply"), ("trigger" + ".a" * 100_000, "nested too deeply"),
    ("9" * 5000, "number too long"), ("'" + "a" * 100_000, "unterminated string"), ("1 @ 2", "unexpected character"),
], ids=["div", "floordiv", "mod", "pow-tower", "huge-int-times-float", "string-times", "list-order", "object-order",
        "bool-order", "parens-5000", "not-100000", "concat-1000", "member-100000", "int-5000-digits",
        "unterminated-100k", "bad-char"])
def test_hostile_conditions_held_as_precise_expression_errors(expr: str, says: str):
    from boternity.expressions import ExpressionError, evaluate_condition

    ctx = {"trigger": {"big": 2 ** 4000, "s": "x" * 1000}}
    with pytest.raises(ExpressionError) as info:
        evaluate_condition(expr, ctx)
    assert says in info.value.message


def test_big_integers_multiply_within_the_depth_limit_and_compare():
    """Held: 99 factors of 4,000 digits (the most the depth limit lets one condition hold)."""
    from boternity.expressions import evaluate_condition

    assert evaluate_condition("*".join(["9" * 4000] * 99) + " > 1", {}) is True


# ------------------------------------------------------------------ the serve protocol layer

class Recorder:
    """A dispatch that answers 200 and remembers what reached the application."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes):
        self.seen.append((method, target, headers, body))
        return 200, {"Content-Type": "application/json"}, b"{}"


@pytest.fixture()
def protocol():
    import threading

    from boternity.local.http_server import BoundedHTTPServer, make_handler
    from boternity.local.serve_limits import ServeLimits

    limits = ServeLimits(header_timeout_secs=5, body_timeout_secs=5)
    app = Recorder()
    server = BoundedHTTPServer(("127.0.0.1", 0), make_handler(app, limits, quiet=True), limits)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server.server_address[1], app
    finally:
        server.shutdown()
        server.server_close()


def answers(port: int, data: bytes) -> list[int]:
    """Every status the server sends back for ``data`` before it closes the connection."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


SMUGGLED = b"DELETE /workflows/proto HTTP/1.1\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("bad_line", [b"NoColonHere", b"Bad Name: x", b"X-Spaced : x"],
                         ids=["no-colon", "space-in-name", "space-before-colon"])
def test_a_malformed_header_line_is_400_and_its_body_is_never_a_request(bad_line: bytes, protocol):
    """The standard library stopped at the bad line and ignored the Content-Length after it, so
    the body ran as a second request (a DELETE here): the request-smuggling shape again."""
    port, app = protocol
    request = (b"POST /workflows/proto/runs HTTP/1.1\r\n" + bad_line + b"\r\nContent-Length: %d\r\n\r\n"
               % len(SMUGGLED) + SMUGGLED)
    assert answers(port, request) == [400]
    assert app.seen == []


@pytest.mark.parametrize("header", [b"X-A: a\r\n b", b" X-Leading: fold", b"X-A: a\x00b", b"X-A: a\x1b[2Jb"],
                         ids=["obs-fold", "fold-first", "nul", "escape"])
def test_a_folded_or_control_character_header_value_is_400(header: bytes, protocol):
    port, app = protocol
    assert answers(port, b"GET /workflows HTTP/1.1\r\n" + header + b"\r\nConnection: close\r\n\r\n") == [400]
    assert app.seen == []


def test_well_formed_requests_still_pass_with_tabs_and_latin_1_values(protocol):
    port, app = protocol
    assert answers(port, b"GET /workflows HTTP/1.1\r\nX-A: a\tb\r\nX-B: caf\xe9\r\nConnection: close\r\n\r\n") == [200]
    assert app.seen[0][2]["X-A"] == "a\tb" and app.seen[0][2]["X-B"] == "caf\u00e9"


@pytest.mark.parametrize("request_bytes, statuses, dispatched", [
    (b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nConnection: close\r\n\r\n", [200, 200, 200], 3),
    (b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n", [200, 200], 2),
    (b"GET http://evil.example/a HTTP/1.1\r\nConnection: close\r\n\r\n", [200], 1),
    (b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", [400], 0),
    (b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400], 0),
    (b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", [400], 0),
    (b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", [100, 200], 1),
    (b"GET /a HTTP/2.0\r\n\r\n", [400], 0),
    (b"GET /a http/1.1\r\n\r\n", [400], 0),
], ids=["pipelined-3", "http1.0-keep-alive", "absolute-form", "cl-and-te", "te-twice", "cl-conflict",
        "expect-100", "http2-version", "lowercase-version"])
def test_protocol_shapes_that_held(request_bytes: bytes, statuses: list[int], dispatched: int, protocol):
    port, app = protocol
    assert answers(port, request_bytes) == statuses
    assert len(app.seen) == dispatched


# ------------------------------------------------------------------ large graphs

def test_ancestors_built_once_agree_with_a_walk_on_a_dense_graph_with_loops():
    """readable() ran a graph walk per step (1,450 steps of 55 dependencies: 7 s of validation);
    ancestors are now built once, in dependency order. Same answers as the walk, loops included."""
    import random

    from boternity.graph import build_graph
    from boternity.model.loader import parse_workflow

    rng = random.Random(13)
    steps: list[dict[str, Any]] = [{"id": "s0", "type": "wait", "config": {"seconds": 0}}]
    for i in range(1, 300):
        deps = rng.sample([f"s{j}" for j in range(i) if j not in (40, 41)], min(i - 2, 8)) if i > 2 else []
        steps.append({"id": f"s{i}", "type": "wait", "config": {"seconds": 0}, "depends_on": deps})
    steps[40] = {"id": "s40", "type": "wait", "config": {"seconds": 0}}
    steps[41] = {"id": "s41", "type": "loop", "depends_on": ["s3"],
                 "config": {"condition": "loop.iteration < 2", "body_steps": ["s40"]}}
    g = build_graph(parse_workflow({"name": "dense", "steps": steps}))

    def walk(step_id: str) -> set[str]:
        seen: set[str] = set()
        stack = list(g.deps.get(step_id, []))
        while stack:
            d = stack.pop()
            if d not in seen:
                seen.add(d)
                stack.extend(g.deps.get(d, []))
        return seen

    assert all(g.ancestors(s) == walk(s) for s in g.deps)
    assert sum(len(g.ancestors(s)) for s in g.deps) > 10_000   # dense enough to mean something


@pytest.mark.parametrize("kind, trigger", [
    ("cron", "{{type: cron, schedule: '0 {h} * * *'}}"),
    ("webhook", "{{type: webhook, path: /many-{i}}}"),
    ("event", "{{type: event, source: s{i}, event_type: e}}"),
])
def test_thousands_of_triggers_are_refused_before_any_is_made(kind: str, trigger: str, cloud):
    """3,000 cron triggers made 3,000 schedules, then overflowed the registry item (400 KB): a
    500, and the schedules and state machine stayed, firing a workflow that was never registered."""
    import boto3

    triggers = "".join("  - " + trigger.format(h=i % 24, i=i) + "\n" for i in range(3000))
    r = put("many", f"name: many\ntriggers:\n{triggers}steps:\n  - {{id: a, {WAIT[1:]}\n")
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["field"], detail["line"]) == ("too_many_triggers", "triggers", 3)
    assert detail["message"].startswith("a workflow has at most 100 triggers, this one 3,000")
    assert "boternity-many" not in registered(cloud)
    assert boto3.client("scheduler").list_schedules(GroupName="boternity")["Schedules"] == []


def test_a_hundred_triggers_register():
    from boternity.model.loader import parse_workflow
    from boternity.model.workflow import MAX_TRIGGERS

    wf = parse_workflow({"name": "hundred", "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}],
                         "triggers": [{"type": "webhook", "path": f"/p{i}"} for i in range(MAX_TRIGGERS)]})
    assert len(wf.triggers) == MAX_TRIGGERS == 100


# ------------------------------------------------------------------ answers bigger than Lambda's 6 MB

LAMBDA_RESPONSE_MAX = 6 * 1024 * 1024


def test_aliases_that_expand_an_answer_past_lambdas_limit_are_refused(cloud):
    """80 KB aliasing a 40,000-character string 99 times: PUT and every GET answered 24 MB of
    JSON (escaped), which Lambda cannot return (API Gateway: 502)."""
    text = ("name: wide\nsteps:\n  - {id: a, type: wait, config: {seconds: 0}}\nmetadata:\n  s: &s "
            + "\u00e9" * 40_000 + "\n  l: [" + ", ".join(["*s"] * 99) + "]\n")
    r = put("wide", text)
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["line"]) == ("too_large_expanded", 1)
    assert "as JSON once its aliases are expanded, more than 2,097,152" in detail["message"]
    assert "boternity-wide" not in registered(cloud)


def test_the_largest_json_body_in_escaped_characters_fits(cloud):
    """The expanded limit refuses no body the API accepts: 256 KiB of two-byte characters, escaped
    six bytes each, is 786 KB of JSON."""
    text = ("name: accents\nsteps:\n  - {id: a, type: wait, config: {seconds: 0}}\nmetadata:\n  s: "
            + "\u00e9" * 125_000 + "\n")
    r = put("accents", text)
    assert r.status == 201, r.text[:300]
    assert len(r.text) < LAMBDA_RESPONSE_MAX
    assert call(api, "DELETE", "/workflows/accents").status == 200


def test_a_page_of_workflows_lists_summaries_not_sources(cloud):
    """GET /workflows?limit=100 carried every workflow's source (up to 256 KiB each): 100 large
    workflows made a 25 MB page, so the list (and the console built on it) failed for everyone."""
    body = "name: big{i}\nsteps:\n  - {{id: a, type: wait, config: {{seconds: 0}}}}\nmetadata: {{pad: '" + "p" * 200_000 + "'}}\n"
    for i in range(3):
        assert put(f"big{i}", body.format(i=i)).status == 201
    page = call(api, "GET", "/workflows?limit=100")
    assert page.status == 200
    assert len(page.text) < 10_000
    for item in page.json["workflows"]:
        assert set(item) <= {"name", "description", "state_machine_arn", "version", "created_at", "updated_at",
                             "concurrency", "on_limit"}
    assert len(call(api, "GET", "/workflows/big1").json["definition"]["metadata"]["pad"]) == 200_000
    for i in range(3):
        assert call(api, "DELETE", f"/workflows/big{i}").status == 200


def test_a_description_is_short_text(cloud):
    r = put("described", GOOD.replace("target", "described").replace("/second-pass", "/d")
            + "description: " + "d" * 5000 + "\n")
    assert r.status == 400
    detail = first_detail(r)
    assert (detail["code"], detail["field"]) == ("string_too_long", "description")


# ------------------------------------------------------------------ path parameters that name nothing

LONG = "a" * 3000


@pytest.mark.parametrize("method, path, says", [
    ("GET", f"/workflows/{LONG}", "workflow 'aaaa"), ("DELETE", f"/workflows/{LONG}", "workflow 'aaaa"),
    ("POST", f"/workflows/{LONG}/runs", "workflow 'aaaa"), ("GET", f"/workflows/{LONG}/runs", "workflow 'aaaa"),
    ("GET", f"/runs/{LONG}", "run 'aaaa"), ("POST", f"/runs/{LONG}/cancel", "run 'aaaa"),
    ("POST", f"/runs/{LONG}/redrive", "run 'aaaa"), ("GET", f"/approvals/{LONG}", "approval not found"),
    ("GET", f"/approve/{LONG}", "approval not found"),
], ids=["get", "delete", "start", "list-runs", "run", "cancel", "redrive", "approval", "approval-link"])
def test_an_id_too_long_to_exist_is_404_without_reading_the_store(method: str, path: str, says: str, cloud,
                                                                   monkeypatch):
    """A 3,000-character name went to DynamoDB as a key (over its 2,048-byte limit: a
    ValidationException, so a 500 in the cloud) and came back whole in the message."""
    from boternity.approvals import ApprovalStore
    from boternity.service.registry import Registry
    from boternity.service.runs import RunService

    def no_store(*_: Any, **__: Any) -> Any:
        raise AssertionError("the store was read for an id that cannot exist")

    before = executions(cloud) if method == "POST" else None
    for cls, name in ((Registry, "get"), (RunService, "get"), (RunService, "cancel"), (RunService, "redrive"),
                      (RunService, "list"), (ApprovalStore, "item")):
        monkeypatch.setattr(cls, name, no_store)
    r = call(api, method, path, body={} if method == "POST" else None)
    assert r.status == 404, r.text[:300]
    assert says in r.error["message"] and len(r.error["message"]) < 200, r.error["message"][:300]
    if before is not None:
        monkeypatch.undo()
        assert executions(cloud) == before


def test_an_expression_error_quotes_a_window_around_the_problem():
    from boternity.errors import ExpressionError

    short = ExpressionError("bad", expression="a + ", offset=4)
    assert str(short) == "bad at offset 4 in 'a + '"
    long = ExpressionError("bad", expression="a" * 5000 + "@" + "b" * 5000, offset=5000)
    assert str(long) == "bad at offset 5000 in '..." + "a" * 80 + "@" + "b" * 79 + "...'"
    assert long.expression == "a" * 5000 + "@" + "b" * 5000


# ------------------------------------------------------------------ workflow files: cases that held

ONE = "  - {id: a, type: wait, config: {seconds: 0}}\n"
HELD_REFUSED = [
    ("nul", b"name: x\x00\nsteps:\n" + ONE.encode(), "yaml_syntax", "character #x0000 is not allowed", 1),
    ("escape-char", b"name: x\x1b[2J\nsteps:\n" + ONE.encode(), "yaml_syntax", "character #x001b is not allowed", 1),
    ("two-documents", ("name: x\nsteps:\n" + ONE + "---\nname: y\n").encode(), "yaml_syntax",
     "expected a single document", 4),
    ("python-object", b"name: x\nsteps:\n  - !!python/object/apply:os.system ['echo hi']\n", "yaml_syntax",
     "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'", 3),
    ("custom-tag", b"name: x\nsteps:\n  - {id: a, type: wait, config: !Ref {seconds: 0}}\n", "yaml_syntax",
     "could not determine a constructor for the tag '!Ref'", 3),
    ("sequence-key", ("name: x\n? [a, b]\n: 1\nsteps:\n" + ONE).encode(), "yaml_syntax", "found unhashable key", 2),
    ("mapping-key", ("name: x\n? {a: 1}\n: 1\nsteps:\n" + ONE).encode(), "yaml_syntax", "found unhashable key", 2),
    ("key-of-900k", ("name: x\n" + "k" * 900_000 + ": 1\nsteps:\n" + ONE).encode(), "yaml_syntax",
     "could not find expected ':'", 2),
    ("duplicate-key-other-type", ("name: x\nname: [1]\nsteps:\n" + ONE).encode(), "duplicate_key", "duplicate key 'name'", 2),
    ("id-escape-sequence", b'name: x\nsteps:\n  - {id: "a\\e[2J", type: wait, config: {seconds: 0}}\n', "invalid_format",
     "String should match pattern", 3),
    ("id-cyrillic-confusable", "name: x\nsteps:\n  - {id: \u0430, type: wait, config: {seconds: 0}}\n".encode(),
     "invalid_format", "String should match pattern", 3),
    ("id-path-separator", b"name: x\nsteps:\n  - {id: ../etc, type: wait, config: {seconds: 0}}\n", "invalid_format",
     "String should match pattern", 3),
    ("id-of-500k", ("name: x\nsteps:\n  - {id: " + "a" * 500_000 + ", type: wait, config: {seconds: 0}}\n").encode(),
     "string_too_long", "String should have at most 64 characters", 3),
    ("timeout-nan", b"name: x\nsteps:\n  - {id: a, type: http, timeout_secs: .nan, config: {url: 'https://x'}}\n",
     "invalid_number", ".nan is NaN, which is not a JSON number", 3),
    ("http-timeout-inf", b"name: x\nsteps:\n  - {id: a, type: http, config: {url: 'https://x', timeout_secs: .inf}}\n",
     "invalid_number", ".inf is Infinity, which is not a JSON number", 3),
    ("retries-inf", b"name: x\nsteps:\n  - {id: a, type: http, retry: {max_attempts: .inf}, config: {url: 'https://x'}}\n",
     "invalid_number", ".inf is Infinity, which is not a JSON number", 3),
    ("backoff-nan", b"name: x\nsteps:\n  - {id: a, type: http, retry: {backoff_rate: .nan}, config: {url: 'https://x'}}\n",
     "invalid_number", ".nan is NaN, which is not a JSON number", 3),
    ("concurrency-1e99999", ("name: x\nconcurrency: 1e99999\nsteps:\n" + ONE).encode(), "int_parsing",
     "Input should be a valid integer", 2),
    ("max-concurrency-negative", b"name: x\nsteps:\n  - {id: a, type: wait, for_each: '{{ trigger.l }}', "
     b"max_concurrency: -5, config: {seconds: 0}}\n", "greater_than_equal", "greater than or equal to 1", 3),
    ("max-iterations-huge", b"name: x\nsteps:\n  - {id: l, type: loop, config: {condition: 'true', max_iterations: "
     + b"9" * 90 + b", body_steps: [a]}}\n" + ONE.encode(), "less_than_equal", "less than or equal to 1000", 3),
    ("seconds-50000-digit-fraction", ("name: x\nsteps:\n  - {id: a, type: wait, config: {seconds: 0." + "1" * 50_000
                                      + "}}\n").encode(), "int_from_float", "fractional part", 3),
    ("budget-negative", ("name: x\ntimeout_secs: -1\nsteps:\n" + ONE).encode(), "greater_than", "greater than 0", 2),
    ("depends-on-unknown-100k", ("name: x\nsteps:\n" + ONE + "  - {id: b, type: wait, config: {seconds: 0}, "
                                 "depends_on: [" + ", ".join(["zz"] * 99_000) + "]}\n").encode(),
     "unknown_dependency", "depends on unknown step 'zz'", 4),
]


@pytest.mark.parametrize("case, content, code, says, line", HELD_REFUSED, ids=[c[0] for c in HELD_REFUSED])
def test_hostile_workflow_files_that_held_are_refused_precisely(case, content, code, says, line, tmp_path):
    from boternity.errors import ValidationFailed
    from boternity.validate import load_workflow

    f = tmp_path / "wf.yaml"
    f.write_bytes(content)
    with pytest.raises(ValidationFailed) as info:
        load_workflow(f)
    first = info.value.errors[0]
    assert (first.code, first.line) == (code, line), first
    assert says in first.message, first.message
    assert len(str(first)) < 500   # a message names the problem; it does not repeat the input


HELD_ACCEPTED = [
    ("bom", "\ufeffname: x\nsteps:\n" + ONE),
    ("crlf", "name: x\r\nsteps:\r\n" + ONE.replace("\n", "\r\n")),
    ("anchor-in-flow-style", "name: x\nsteps:\n  - {id: a, type: wait, config: &c {seconds: 0}}\n"
                             "  - {id: b, type: wait, config: *c}\n"),
    ("depends-on-same-id-99000", "name: x\nsteps:\n" + ONE + "  - {id: b, type: wait, config: {seconds: 0}, "
                                 "depends_on: [" + ", ".join(["a"] * 99_000) + "]}\n"),
]


@pytest.mark.parametrize("case, text", HELD_ACCEPTED, ids=[c[0] for c in HELD_ACCEPTED])
def test_odd_but_valid_workflow_files_load(case: str, text: str):
    from boternity.validate import load_workflow_text

    wf = load_workflow_text(text).workflow
    assert wf.name == "x" and wf.steps[0].id == "a"


# ------------------------------------------------------------------ a hostile update of a good workflow

@pytest.mark.parametrize("hostile, status", [
    ("bomb", 400), ("not-json", 400), ("too-many-steps", 400), ("too-many-triggers", 400), ("cycle", 400),
    ("oversized", 413), ("renamed", 400),
], ids=lambda v: str(v))
def test_a_hostile_update_leaves_the_registered_workflow_as_it_was(hostile: str, status: int, cloud):
    """Held: every refused PUT over an existing name leaves its version, definition and state
    machine untouched."""
    from tests.support.hostile_corpus import bomb_474_bytes

    good = GOOD.replace("target", "kept").replace("/second-pass", "/kept")
    assert put("kept", good).status in (200, 201)
    before = call(api, "GET", "/workflows/kept").json
    bodies = {
        "bomb": bomb_474_bytes().decode().replace("hostile", "kept"),
        "not-json": good + "variables: {d: 2026-01-01}\n",
        "too-many-steps": _chain(1600, "kept"),
        "too-many-triggers": "name: kept\ntriggers:\n" + "".join(
            f"  - {{type: webhook, path: /k{i}}}\n" for i in range(101)) + f"steps:\n  - {{id: a, {WAIT[1:]}\n",
        "cycle": f"name: kept\nsteps:\n  - {{id: a, depends_on: [b], {WAIT[1:]}\n  - {{id: b, depends_on: [a], {WAIT[1:]}\n",
        "oversized": good + "metadata: {pad: '" + "p" * 300_000 + "'}\n",
        "renamed": good.replace("name: kept", "name: other"),
    }
    r = put("kept", bodies[hostile])
    assert r.status == status, r.text[:300]
    after = call(api, "GET", "/workflows/kept").json
    assert (after["version"], after["definition"], after["state_machine_arn"]) == (
        before["version"], before["definition"], before["state_machine_arn"])
    assert call(hook, "POST", "/hooks/kept", body={}).status == 202   # its trigger still works


def test_deleting_a_workflow_during_a_run_lets_the_run_end_and_starts_nothing_new(cloud):
    """Held: as DeleteStateMachine does on AWS, a running execution goes on to its end and keeps
    its records; new starts are 404; a cancel after the end is 409 run_ended."""
    from boternity.local.server import wait_until

    wf = "name: deleted\nsteps:\n  - {id: a, type: wait, config: {seconds: 1}}\n  - {id: b, type: wait, depends_on: [a], config: {seconds: 0}}\n"
    assert put("deleted", wf).status == 201
    run_id = call(api, "POST", "/workflows/deleted/runs", body={}).json["run_id"]
    assert call(api, "DELETE", "/workflows/deleted").status == 200
    assert call(api, "POST", "/workflows/deleted/runs", body={}).error["code"] == "not_found"
    assert wait_until(lambda: call(api, "GET", f"/runs/{run_id}").json["run"]["status"] == "SUCCEEDED", timeout=30)
    steps = call(api, "GET", f"/runs/{run_id}").json["steps"]
    assert sorted((s["step_id"], s["status"]) for s in steps) == [("a", "completed"), ("b", "completed")]
    assert call(api, "POST", f"/runs/{run_id}/cancel").error["code"] == "run_ended"


def test_string_concatenation_in_a_condition_stops_at_the_rendered_limit(monkeypatch):
    """Sixty '+' of a 10 MB http body built 600 MB in 15 s: every partial sum is a new string."""
    from boternity.expressions import ExpressionError, evaluate_condition

    monkeypatch.setenv("BOTERNITY_MAX_RENDERED_CHARS", "1000000")
    expr = " + ".join(["steps.a.output"] * 11) + " != ''"
    with pytest.raises(ExpressionError) as info:
        evaluate_condition(expr, CTX)
    assert info.value.message == ("the string operations build more than 1,000,000 characters "
                                  "(limit 1,000,000, BOTERNITY_MAX_RENDERED_CHARS)")
    assert evaluate_condition(" + ".join(["steps.a.output"] * 4) + " != ''", CTX) is True


def test_a_client_that_never_reads_its_answer_is_dropped_at_the_write_timeout():
    """Held: an 8 MB answer to a client that never reads holds its connection slot only until
    BOTERNITY_SERVE_WRITE_TIMEOUT_SECS, then the slot is free again."""
    import socket
    import threading

    from boternity.local.http_server import BoundedHTTPServer, make_handler
    from boternity.local.serve_limits import ServeLimits

    limits = ServeLimits(write_timeout_secs=1, max_connections=1)
    big = b"x" * (8 * 1024 * 1024)
    server = BoundedHTTPServer(("127.0.0.1", 0), make_handler(lambda *_: (200, {}, big), limits, quiet=True), limits)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /big HTTP/1.1\r\n\r\n")
        time.sleep(0.3)
        assert answers(port, b"GET /other HTTP/1.1\r\nConnection: close\r\n\r\n") == [429]   # its slot is held
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as probe:
                probe.sendall(b"GET /other HTTP/1.1\r\nConnection: close\r\n\r\n")
                if probe.recv(12) == b"HTTP/1.1 200":
                    break
        else:
            pytest.fail("the stalled client kept its slot past the write timeout")
        stalled.close()
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ Step Functions paths smuggled in keys

@pytest.mark.parametrize("extra, step_input, field, line", [
    ("variables: {'a.$': '$$.Execution.Input'}\n", "'{{ variables }}'", "variables.a.$", 4),
    ("", "{'k.$': '$'}", "steps.0.config.input.k.$", 3),
    ("", "{'k.$': 'States.Format(1)'}", "steps.0.config.input.k.$", 3),
    ("", "{outer: {'deep.$': '$.steps'}}", "steps.0.config.input.outer.deep.$", 3),
    ("metadata: {'m.$': '$'}\n", "'x'", "metadata.m.$", 4),
], ids=["variable-reads-execution-input", "input-reads-whole-state", "intrinsic-function", "nested", "metadata"])
def test_a_key_ending_in_dollar_is_refused_not_evaluated_by_step_functions(extra, step_input, field, line, cloud):
    """Workflow values are embedded in the state machine's Parameters, where Step Functions reads a
    key ending in '.$' as a path: {'k.$': '$'} handed a step the run's whole state (every trigger
    field and step record, upstream or not), 'a.$': '$$.Execution.Input' made a variable of the
    payload, and an intrinsic function the definition parser could not take answered 500."""
    text = (f"name: dollar\nsteps:\n  - {{id: a, type: code, config: {{language: javascript, source: 'input', "
            f"input: {step_input}}}}}\n" + extra)
    r = put("dollar", text)
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["field"], detail["line"]) == ("reserved_key", field, line)
    assert "ends in '.$'" in detail["message"]
    assert "boternity-dollar" not in registered(cloud)


def test_a_dollar_key_in_a_json_workflow_is_refused_too(cloud):
    body = {"name": "dollarjson", "variables": {"v.$": "$"},
            "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}
    r = call(api, "PUT", "/workflows/dollarjson", body=body)
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["field"]) == ("reserved_key", "variables.v.$")


def test_dollar_signs_elsewhere_are_plain_data(cloud):
    """Held: only the '.$' suffix is a path to Step Functions; '$' keys and '$...' values are data."""
    text = ("name: plain\nvariables: {'$': 1, '$$': 2, 'a$': '$.steps', p: '$$.Execution.Input'}\nsteps:\n"
            "  - {id: a, type: wait, config: {seconds: 0}}\n")
    r = put("plain", text)
    assert r.status == 201, r.text[:300]
    assert call(api, "GET", "/workflows/plain").json["definition"]["variables"] == {
        "$": 1, "$$": 2, "a$": "$.steps", "p": "$$.Execution.Input"}
    assert call(api, "DELETE", "/workflows/plain").status == 200


# ------------------------------------------------------------------ schedules

@pytest.mark.parametrize("schedule, timezone, code", [
    ("*/0 * * * *", "UTC", "invalid_schedule"),
    ("0-99999999999 * * * *", "UTC", "invalid_schedule"),
    ("*/99999999999999999999 * * * *", "UTC", "invalid_schedule"),
    ("rate(0 minutes)", "UTC", "invalid_schedule"),
    ("rate(99999999999999999999 days)", "UTC", "invalid_schedule"),
    ("0 0 * * 5#9", "UTC", "invalid_schedule"),
    ("@reboot", "UTC", "invalid_schedule"),
    ("* * * * * *", "UTC", "cron_unsupported"),
    ("0 0 * * *", "../../etc/passwd", "invalid_timezone"),
    ("0 0 * * *", "/etc/localtime", "invalid_timezone"),
    ("0 0 * * *", "UTC\\0", "invalid_timezone"),
], ids=lambda v: str(v)[:24])
def test_hostile_schedules_held_as_precise_errors(schedule: str, timezone: str, code: str):
    from boternity.errors import ValidationFailed
    from boternity.validate import load_workflow_text

    text = (f"name: c\ntriggers:\n  - {{type: cron, schedule: '{schedule}', timezone: \"{timezone}\"}}\n"
            f"steps:\n  - {{id: a, {WAIT[1:]}\n")
    with pytest.raises(ValidationFailed) as info:
        load_workflow_text(text)
    assert [(e.code, e.line) for e in info.value.errors] == [(code, 3)]


def test_a_schedule_that_never_fires_has_no_next_time_and_does_not_loop():
    """Held: February 31st is accepted (EventBridge accepts it too) and simply never comes."""
    import datetime as dt

    from boternity.triggers.schedule import next_fire_times, to_scheduler_expression

    expr = to_scheduler_expression("0 0 31 2 *")
    assert next_fire_times(expr, "UTC", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1) == []


@pytest.mark.parametrize("first, second", [
    (b"content-type: application/yaml", b"Content-Type: application/json"),
    (b"Idempotency-Key: a", b"idempotency-key: b"),
    (b"X-Hub-Signature-256: sha256=00", b"x-hub-signature-256: sha256=11"),
    (b"webhook-id: one", b"Webhook-Id: two"),
    (b"Host: 127.0.0.1", b"Host: evil.example"),
], ids=["content-type", "idempotency-key", "github-signature", "webhook-id", "host"])
def test_a_one_value_header_sent_twice_with_different_values_is_400(first: bytes, second: bytes, protocol):
    """A workflow sent with 'content-type: application/yaml' and 'Content-Type: application/json'
    was read as YAML, or as JSON with the two swapped: which one counts depended on the layer."""
    port, app = protocol
    request = b"POST /a HTTP/1.1\r\n" + first + b"\r\n" + second + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    assert answers(port, request) == [400]
    assert app.seen == []


def test_a_header_repeated_with_the_same_value_or_a_list_header_passes(protocol):
    port, app = protocol
    request = (b"GET /a HTTP/1.1\r\nContent-Type: application/json\r\ncontent-type: application/json\r\n"
               b"Accept: text/html\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
    assert answers(port, request) == [200]
    assert len(app.seen) == 1


@pytest.mark.parametrize("condition, code", [
    ("steps[trigger.x].output == 1", "invalid_reference"),
    ("steps|length > 0", "invalid_reference"),
    ("{a: steps} != null", "invalid_reference"),
    ("[steps][0] != null", "invalid_reference"),
    ('steps["a" + ""].output == 1', "invalid_reference"),
    ("secrets.X == 1", "secrets_not_allowed"),
    ('steps["b"].output == 1', "not_upstream"),
    ("steps.a.output[steps.b.output] == 1", "not_upstream"),
    ("(steps).b.output == 1", "not_upstream"),
], ids=lambda v: str(v)[:30])
def test_conditions_cannot_reach_steps_that_are_not_upstream(condition: str, code: str):
    """Held: a computed step name, the whole 'steps' object, or a step that is not upstream is an
    error at load, so a condition reads only what its step could read."""
    from boternity.errors import ValidationFailed
    from boternity.validate import load_workflow_text

    wf = {"name": "x", "steps": [
        {"id": "a", "type": "wait", "config": {"seconds": 0}},
        {"id": "c", "type": "wait", "condition": condition, "depends_on": ["a"], "config": {"seconds": 0}},
        {"id": "b", "type": "wait", "config": {"seconds": 0}}]}
    with pytest.raises(ValidationFailed) as info:
        load_workflow_text(json.dumps(wf))
    assert info.value.codes() == [code]


@pytest.mark.parametrize("path, content_type", [
    ("/approvals/x/decision", "application/json"),
    ("/approvals/x/decision", "application/x-www-form-urlencoded"),
    ("/approve/x", "application/x-www-form-urlencoded"),
], ids=["decision-json", "decision-form", "approval-link-without-credentials"])
def test_a_request_with_90000_unknown_fields_answers_with_the_first_hundred(path: str, content_type: str, cloud):
    """A 970 KB decision of 90,000 unknown fields answered 7.8-10.4 MB of 422 details, over
    Lambda's 6 MB, on /approve/{id} too, which anyone can call."""
    if content_type == "application/json":
        body = ("{" + ",".join(f'"k{i}":0' for i in range(90_000)) + ',"approved":true}').encode()
    else:
        body = ("&".join(f"k{i}=" for i in range(90_000)) + "&approved=true").encode()
    r = call(api, "POST", path, body=body, binary=True, headers={"Content-Type": content_type})
    assert r.status == 422, r.text[:300]
    assert len(r.text) < 64 * 1024
    assert r.error["message"] == ("the request does not match the API (90,000 problems; the first 100 are in "
                                  "details)")
    assert len(r.error["details"]) == 100 and r.error["details"][0]["type"] == "extra_forbidden"


def test_a_request_with_a_few_problems_lists_them_all(cloud):
    r = call(api, "POST", "/approvals/x/decision", body={"approved": "maybe", "extra": 1})
    assert r.status == 422
    assert r.error["message"] == "the request does not match the API"
    assert sorted(d["type"] for d in r.error["details"]) == ["bool_parsing", "extra_forbidden"]


# ------------------------------------------------------------------ forged page tokens

def _token(key: Any) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize("key", [
    {"gsi1pk": "WF#target"},
    {"gsi1pk": "WF#target", "gsi1sk": "x", "pk": "RUN#x", "sk": "RUN", "evil": "1"},
    {"gsi1pk": "WF#target", "gsi1sk": "x", "pk": "RUN#x"},
    {"gsi1pk": "WF#target", "gsi1sk": 1, "pk": 2, "sk": 3},
    {"gsi1pk": "WF#target", "gsi1sk": {"S": "x"}, "pk": ["a"], "sk": None},
    ["WF#target"],
], ids=["missing-keys", "extra-key", "no-sort-key", "numbers", "nested", "a-list"])
def test_a_forged_page_token_is_400_not_500(key: Any, cloud):
    """A token naming the right listing but without the table's keys answered 500; one with an
    extra attribute is a starting key DynamoDB refuses."""
    r = call(api, "GET", f"/workflows/target/runs?limit=1&next_token={_token(key)}")
    assert r.status == 400, r.text[:300]
    assert r.error == {"code": "invalid_next_token", "message": "next_token is not valid", "details": None}


def test_a_real_page_token_still_pages(cloud):
    for _ in range(2):
        assert call(api, "POST", "/workflows/target/runs", body={}).status == 202
    first = call(api, "GET", "/workflows/target/runs?limit=1").json
    assert first["next_token"]
    second = call(api, "GET", f"/workflows/target/runs?limit=1&next_token={first['next_token']}")
    assert second.status == 200 and second.json["runs"][0]["run_id"] != first["runs"][0]["run_id"]


@pytest.mark.parametrize("payload", [
    {"a": 1, "b": 0}, {"a": "x", "b": 2}, {"a": [[[[1]]]], "b": 2}, {"a": {}, "b": []}, [1, 2], "text",
], ids=["division-by-zero", "string-by-number", "nested-list", "object-and-list", "array-payload", "string-payload"])
def test_a_webhook_condition_that_fails_on_a_payload_filters_it_and_starts_nothing(payload: Any, cloud):
    """Held: a 'when' that cannot be evaluated on what a sender posted is a non-match (202
    filtered), never a 5xx, and no run starts."""
    wf = ("name: whenwf\ntriggers:\n  - {type: webhook, path: /when, when: 'event.a / event.b > 1'}\n"
          f"steps:\n  - {{id: a, {WAIT[1:]}\n")
    assert put("whenwf", wf).status in (200, 201)
    arn = call(api, "GET", "/workflows/whenwf").json["state_machine_arn"]
    before = len(cloud.sfn.list_executions(stateMachineArn=arn)["executions"])
    r = call(hook, "POST", "/hooks/when", body=json.dumps(payload), headers=JSON)
    assert (r.status, r.json) == (202, {"status": "filtered", "workflow": "whenwf"})
    assert len(cloud.sfn.list_executions(stateMachineArn=arn)["executions"]) == before


@pytest.mark.parametrize("path, says", [
    ("/workflows/a%2Fb", "workflow 'a%2Fb' not found"), ("/workflows/..", "workflow '..' not found"),
    ("/workflows/%00", "workflow '%00' not found"), ("/workflows/\u0430bc", "workflow '\u0430bc' not found"),
    ("/runs/..%2f..", "run '..%2f..' not found"),
], ids=["encoded-slash", "dot-dot", "encoded-nul", "confusable", "run-dot-dot"])
def test_odd_short_names_are_plain_404s(path: str, says: str, cloud):
    """Held: short names the API could never have registered are looked up and not found."""
    r = call(api, "GET", path)
    assert r.status == 404 and says in r.error["message"], r.text[:300]


@pytest.mark.parametrize("items", [1001, 60_000])
def test_a_payload_list_too_long_for_a_for_each_fails_the_step_saying_so(items: int, cloud):
    """Held: the list a for_each gets from a payload is counted before any item runs."""
    from boternity.local.server import wait_until

    wf = "name: fe\nsteps:\n  - {id: each, type: wait, for_each: '{{ trigger.items }}', config: {seconds: 0}}\n"
    assert put("fe", wf).status in (200, 201)
    run_id = call(api, "POST", "/workflows/fe/runs", body={"items": [0] * items}).json["run_id"]
    assert wait_until(lambda: call(api, "GET", f"/runs/{run_id}").json["run"]["status"] == "FAILED", timeout=60)
    cause = call(api, "GET", f"/runs/{run_id}").json["run"]["cause"]
    assert f"for_each has {items} items; at most 1000 fit in one execution's history" in cause


@pytest.mark.parametrize("transform", ["split('')", "split(',')", "upper", "lower", "trim"])
def test_copying_transforms_count_against_the_same_limit(transform: str, monkeypatch):
    """100 splits of a 10 MB body in one condition took 7 s; each copy now counts."""
    from boternity.expressions import ExpressionError, evaluate_condition

    monkeypatch.setenv("BOTERNITY_MAX_RENDERED_CHARS", "1000000")
    expr = " || ".join([f"steps.a.output|{transform}|length == 0"] * 11)
    with pytest.raises(ExpressionError, match="the string operations build more than 1,000,000 characters"):
        evaluate_condition(expr, CTX)
    assert evaluate_condition(" || ".join([f"steps.a.output|{transform}|length == 0"] * 9), CTX) is False


@pytest.mark.parametrize("expr", [
    "steps.a.output.list == steps.b.output.list",
    "steps.a.output.list != steps.b.output.list",
    "1 in steps.a.output.list",
    "steps.a.output.list|contains(1)",
    " || ".join(["steps.a.output.part != steps.b.output.part"] * 3),
], ids=["equal", "not-equal", "in", "contains", "repeated"])
def test_comparisons_stop_at_the_compared_values_limit(expr: str, monkeypatch):
    """Two lists of five million numbers (a 10 MB http body) took 2 s to compare, and one
    condition may compare a hundred times."""
    from boternity.expressions import ExpressionError, evaluate_condition
    from boternity.parsing import Limits

    assert Limits().max_compared_values == 1_000_000
    monkeypatch.setenv("BOTERNITY_MAX_COMPARED_VALUES", "10000")
    zeros = [0] * 20_000
    ctx = {"steps": {"a": {"output": {"list": zeros, "part": zeros[:4000]}},
                     "b": {"output": {"list": list(zeros), "part": zeros[:4000]}}}}
    with pytest.raises(ExpressionError) as info:
        evaluate_condition(expr, ctx)
    assert info.value.message == ("the comparisons visit more than 10,000 values "
                                  "(limit 10,000, BOTERNITY_MAX_COMPARED_VALUES)")
    small = {"steps": {"a": {"output": {"list": [0] * 100}}, "b": {"output": {"list": [0] * 100}}}}
    assert evaluate_condition("steps.a.output.list == steps.b.output.list", small) is True


def test_parsed_expressions_of_hostile_size_are_not_kept_alive():
    """The parse caches kept every tree: 30 distinct 250 KB array conditions (one per PUT) held
    555 MB of the api function for good. Long expressions and templates are now parsed each time;
    short ones are still cached."""
    import gc
    import tracemalloc

    from boternity.expressions import parse_condition, template_references

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5):
            parse_condition("[" + ",".join(["0"] * 20_000) + f"] != {i}")
            template_references("{{ trigger.a }}" * 5_000 + str(i))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 2 * 1024 * 1024, f"{kept:,} bytes kept alive"
    assert parse_condition("trigger.n > 1") is parse_condition("trigger.n > 1")   # short: cached


def test_aliased_trigger_lists_that_would_overflow_the_registry_record_are_refused(cloud):
    """11 KB of YAML giving 50 file_watch triggers one aliased list of 50 long paths: 50 S3
    notifications were made, then the registry item passed 400 KB (500), and they stayed."""
    import boto3

    paths = ", ".join(f"dir{i}/" + "p" * 190 for i in range(50))
    text = (f"name: watched\nmetadata: {{p: &p [{paths}]}}\ntriggers:\n"
            + "".join("  - {type: file_watch, paths: *p}\n" for _ in range(50))
            + f"steps:\n  - {{id: a, {WAIT[1:]}\n")
    r = put("watched", text)
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["field"], detail["line"]) == ("triggers_too_large", "triggers", 4)
    assert detail["message"].startswith("the triggers are 498,601 bytes as JSON (aliases expanded), more than 65,536")
    assert "boternity-watched" not in registered(cloud)
    config = boto3.client("s3").get_bucket_notification_configuration(Bucket="boternity-local")
    assert not any(v for k, v in config.items() if k.endswith("Configurations"))


def test_a_webhook_path_too_long_for_a_store_key_is_refused(cloud):
    r = put("longhook", f"name: longhook\ntriggers:\n  - {{type: webhook, path: /{'p' * 2100}}}\n"
                        f"steps:\n  - {{id: a, {WAIT[1:]}\n")
    assert r.status == 400, r.text[:300]
    detail = first_detail(r)
    assert (detail["code"], detail["field"]) == ("string_too_long", "triggers.0.path")
    assert call(api, "PUT", "/workflows/longhook", body=f"name: longhook\ntriggers:\n  - {{type: webhook, path: /{'p' * 1000}}}\n"
                f"steps:\n  - {{id: a, {WAIT[1:]}\n", headers=YAML).status == 201
    assert call(api, "DELETE", "/workflows/longhook").status == 200


def test_a_webhook_path_longer_than_any_registered_is_404_without_reading_the_store(cloud, monkeypatch):
    from boternity.service.registry import Registry

    def no_store(*_: Any, **__: Any) -> Any:
        raise AssertionError("the store was read for a path no webhook can have")

    monkeypatch.setattr(Registry, "hook", no_store)
    r = call(hook, "POST", "/hooks/" + "a" * 3000, body={})
    assert (r.status, r.error["code"]) == (404, "not_found")


@pytest.mark.parametrize("path, status", [
    ("/hooks/second-pass/", 202), ("/hooks//second-pass", 202), ("/hooks/./second-pass", 202),
    ("/hooks/SECOND-PASS", 404), ("/hooks/x/../second-pass", 404), ("/hooks/second%2Dpass", 404), ("/hooks/", 404),
], ids=lambda v: str(v))
def test_webhook_paths_are_normalised_only_in_the_documented_ways(path: str, status: int, cloud):
    """Held: trailing and doubled slashes and '.' segments reach the same hook; case, '..' and
    percent-encoding do not."""
    assert call(hook, "POST", path, body={}).status == status
