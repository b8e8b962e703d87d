"""Hostile workflows after credentials: ``{{ secrets.AWS_SECRET_ACCESS_KEY }}`` and friends.

Three layers, each proven on its own:

* loading: a name that cannot be a workflow secret (the functions' AWS settings, a path that
  would climb out of the prefix, a terminal escape), a secret outside an http request, or a bot,
  skill or sub-workflow name that would leave its folder is refused by ``boternity validate``
  (exit 1, file, line, step and field named) and by ``PUT /workflows/{name}`` (400, nothing
  registered, no state machine);
* running: a workflow that skipped validation still reads only the workflow-secrets namespace, so
  the capture server on 127.0.0.1 receives nothing and no credential reaches a record;
* storing: ``boternity secrets set`` and the local route store under the prefix only.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import yaml

from boternity.cli.main import main
from boternity.model.workflow import Workflow
from boternity.runtime.secrets import DEFAULT_SECRET_PREFIX, lookup_secret
from tests.support.apigw import call, local_cloud
from tests.support.http_target import HttpTarget

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# ---------------------------------------------------------------------------- loading


def http_step(**config: Any) -> dict[str, Any]:
    return {"id": "send", "type": "http", "config": {"url": "http://127.0.0.1:9/in", **config}}


# (the workflow's steps and triggers, the error code, the step, the field, words the message must hold)
REFUSED = [
    pytest.param([http_step(headers={"X-Key": "{{ secrets.AWS_SECRET_ACCESS_KEY }}"})], [],
                 "invalid_secret_name", "send", "config.headers", "names the functions' own AWS settings",
                 id="aws-secret-key-in-header"),
    pytest.param([http_step(url="http://127.0.0.1:9/{{ secrets.AWS_SESSION_TOKEN }}")], [],
                 "invalid_secret_name", "send", "config.url", "'AWS_SESSION_TOKEN' names the functions' own",
                 id="aws-session-token-in-url"),
    pytest.param([http_step(body={"k": "{{ secrets.AWS_ACCESS_KEY_ID }}"})], [],
                 "invalid_secret_name", "send", "config.body", "'AWS_ACCESS_KEY_ID'", id="aws-key-id-in-body"),
    pytest.param([http_step(query={"k": "{{ secrets.aws_secret_access_key }}"})], [],
                 "invalid_secret_name", "send", "config.query", "'aws_secret_access_key'",
                 id="aws-name-lower-case-in-query"),
    pytest.param([http_step(headers={"X": "{{ secrets['../anthropic'] }}"})], [],
                 "invalid_secret_name", "send", "config.headers", "'../anthropic' is not a secret name",
                 id="name-climbing-out-of-the-prefix"),
    pytest.param([http_step(headers={"X": "{{ secrets['boternity/anthropic'] }}"})], [],
                 "invalid_secret_name", "send", "config.headers", "'boternity/anthropic' is not a secret name",
                 id="the-stacks-anthropic-secret-by-full-name"),
    pytest.param([http_step(headers={"X": "{{ secrets['T\x1b[2J'] }}"})], [],
                 "invalid_secret_name", "send", "config.headers", "'T\\x1b[2J' is not a secret name",
                 id="terminal-escape-in-a-secret-name"),
    pytest.param([http_step(headers={"X": "{{ secrets." + "A" * 65 + " }}"})], [],
                 "invalid_secret_name", "send", "config.headers", "65 characters long (at most 64)",
                 id="secret-name-too-long"),
    pytest.param([http_step(headers={"X": "{{ secrets.PREFIX }}"})], [],
                 "invalid_secret_name", "send", "config.headers", "'PREFIX' is reserved",
                 id="the-prefix-setting-read-as-a-secret"),
    pytest.param([http_step(headers={"X": "{{ secrets.TOKEN.value }}"})], [],
                 "invalid_reference", "send", "config.headers", "a secret is a string", id="secret-sub-field"),
    pytest.param([{**http_step(), "condition": "secrets.TOKEN == 'x'"}], [],
                 "secrets_not_allowed", "send", "condition", "only be used in an http step's url",
                 id="secret-in-a-condition-guessing-its-value"),
    pytest.param([{**http_step(), "for_each": "{{ secrets.TOKEN }}"}], [],
                 "secrets_not_allowed", "send", "for_each", "only be used in an http step's url",
                 id="secret-in-for-each"),
    pytest.param([{"id": "ask", "type": "agent", "config": {"bot": "b", "prompt": "{{ secrets.TOKEN }}"}}], [],
                 "secrets_not_allowed", "ask", "config.prompt", "only be used", id="secret-in-an-agent-prompt"),
    pytest.param([{"id": "js", "type": "code", "config": {"language": "javascript", "source": "input",
                                                          "input": "{{ secrets.TOKEN }}"}}], [],
                 "secrets_not_allowed", "js", "config.input", "only be used", id="secret-in-code-input"),
    pytest.param([{"id": "ok", "type": "approval", "config": {"prompt": "{{ secrets.TOKEN }}"}}], [],
                 "secrets_not_allowed", "ok", "config.prompt", "only be used", id="secret-in-an-approval-prompt"),
    pytest.param([{"id": "ask", "type": "agent", "config": {"bot": "../../etc", "prompt": "hi"}}], [],
                 "invalid_name", "ask", "config.bot", "'../../etc' is not a valid bot folder name",
                 id="bot-path-traversal"),
    pytest.param([{"id": "sk", "type": "skill", "config": {"skill": "../../../proc/self"}}], [],
                 "invalid_name", "sk", "config.skill", "'../../../proc/self' is not a skill name",
                 id="skill-path-traversal"),
    pytest.param([{"id": "sub", "type": "sub_workflow", "config": {"workflow_name": "other:execution"}}], [],
                 "invalid_name", "sub", "config.workflow_name", "'other:execution' is not a workflow name",
                 id="sub-workflow-name-with-arn-separator"),
    pytest.param([http_step()], [{"type": "webhook", "path": "/in",
                                  "auth": {"type": "bearer_token", "secret_name": "AWS_SECRET_ACCESS_KEY"}}],
                 "invalid_secret_name", None, "triggers[0].auth.secret_name", "'AWS_SECRET_ACCESS_KEY' names",
                 id="webhook-secret-is-the-aws-key"),
    pytest.param([http_step()], [{"type": "webhook", "path": "/in",
                                  "auth": {"type": "hmac_sha256", "secret_name": "../anthropic"}}],
                 "invalid_secret_name", None, "triggers[0].auth.secret_name", "'../anthropic' is not a secret name",
                 id="webhook-secret-climbing-out-of-the-prefix"),
]


def workflow_doc(steps: list[dict[str, Any]], triggers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "exfil", "allow_private_network": True, "triggers": triggers, "steps": steps}


@pytest.mark.parametrize(("steps", "triggers", "code", "step", "field", "words"), REFUSED)
def test_validate_refuses_the_workflow_naming_step_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             steps: list[dict[str, Any]], triggers: list[dict[str, Any]],
                                                             code: str, step: str | None, field: str,
                                                             words: str) -> None:
    path = tmp_path / "exfil.yaml"
    path.write_text(yaml.safe_dump(workflow_doc(steps, triggers), sort_keys=False))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if f"field '{field}'" in ln]
    assert line.strip().startswith(f"{path}:"), err
    assert (f"step '{step}'" in line) is (step is not None), line
    assert words in line, line
    assert "\x1b" not in err and "Traceback" not in err


_NAMES = itertools.count(1)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from boternity.local.engine import LocalEngine

    base = tmp_path_factory.mktemp("secrets")
    with LocalEngine(base_dir=base, blob_dir=base / "blobs", fast_retry=True) as engine, local_cloud(engine):
        yield engine


@pytest.mark.parametrize(("steps", "triggers", "code", "step", "field", "words"), REFUSED)
def test_the_api_refuses_the_workflow_and_registers_nothing(cloud: Any, steps: list[dict[str, Any]],
                                                            triggers: list[dict[str, Any]], code: str,
                                                            step: str | None, field: str, words: str) -> None:
    from boternity.handlers.api import lambda_handler as api

    name = f"exfil-{next(_NAMES)}"   # one per case: a case that wrongly registers cannot mask the next
    r = call(api, "PUT", f"/workflows/{name}", body={**workflow_doc(steps, triggers), "name": name})
    assert r.status == 400, r.text
    assert r.error["code"] == "validation_failed"
    (detail,) = [d for d in r.error["details"] if d["field"] == field]
    assert detail["code"] == code and detail["step_id"] == step and words in detail["message"]
    assert call(api, "GET", f"/workflows/{name}").status == 404
    assert not [m for m in cloud.sfn.list_state_machines()["stateMachines"] if m["name"].endswith(name)]


# ---------------------------------------------------------------------------- running


def put_secret(name: str, value: str) -> None:
    sm = boto3.client("secretsmanager")
    try:
        sm.create_secret(Name=name, SecretString=value)
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=name, SecretString=value)


AWS_MARKERS = {"AWS_ACCESS_KEY_ID": "AKIAHOSTILEMARKER01", "AWS_SECRET_ACCESS_KEY": "hostile-secret-key-marker",
               "AWS_SESSION_TOKEN": "hostile-session-token-marker"}


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The functions' own credentials, with values a scan can find (moto accepts any)."""
    for k, v in AWS_MARKERS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PARTNER_TOKEN", "bare-env-var-marker")            # a variable, not a workflow secret
    return {**AWS_MARKERS, "PARTNER_TOKEN": "bare-env-var-marker"}


# A workflow that never went through validation (a stored definition, a hand-made state machine):
# the http function must still read nothing but the workflow-secrets namespace.
UNVALIDATED = [
    pytest.param("headers", {"X-Key": "{{ secrets.AWS_SECRET_ACCESS_KEY }}"}, "AWS_SECRET_ACCESS_KEY",
                 id="aws-secret-key-header"),
    pytest.param("url", "{url}/in/{{{{ secrets.AWS_SESSION_TOKEN }}}}", "AWS_SESSION_TOKEN", id="aws-session-token-url"),
    pytest.param("body", {"k": "{{ secrets.AWS_ACCESS_KEY_ID }}"}, "AWS_ACCESS_KEY_ID", id="aws-key-id-body"),
    pytest.param("headers", {"X-Key": "{{ secrets.PARTNER_TOKEN }}"}, "PARTNER_TOKEN", id="bare-env-var"),
    pytest.param("headers", {"X-Key": "{{ secrets['../anthropic'] }}"}, "../anthropic", id="anthropic-by-traversal"),
]


@pytest.mark.parametrize(("field", "value", "name"), UNVALIDATED)
def test_an_unvalidated_workflow_still_cannot_send_credentials(cloud: Any, credentials: dict[str, str],
                                                               field: str, value: Any, name: str) -> None:
    anthropic = "sk-ant-hostile-marker"
    put_secret("boternity/anthropic", anthropic)
    with HttpTarget() as web:
        config: dict[str, Any] = {"url": f"{web.url}/in"}
        config[field] = value.format(url=web.url) if isinstance(value, str) else value
        w = Workflow.model_validate({"name": "exfil-run", "allow_private_network": True,
                                     "steps": [{"id": "send", "type": "http", "config": config}]})
        result = cloud.run(w, timeout=60)
        assert web.requests == [], "the request went out"
    assert result.status == "FAILED"
    assert f"secrets.{name}" in result.cause or repr(name) in result.cause or name in result.cause, result.cause
    everything = json.dumps([result.output, result.steps, result.record, result.cause], default=str)
    for leaked in (*credentials.values(), anthropic):
        assert leaked not in everything


def test_boternity_run_refuses_before_starting_anything(tmp_path: Path, credentials: dict[str, str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with HttpTarget() as web:
        path = tmp_path / "exfil.yaml"
        path.write_text(yaml.safe_dump(workflow_doc(
            [http_step(url=f"{web.url}/in", headers={"X-Key": "{{ secrets.AWS_SECRET_ACCESS_KEY }}"})], [])))
        assert main(["run", str(path), "--json"]) == 2   # the CLI's exit code for a file it refuses to run
        assert web.requests == []
    out = capsys.readouterr()
    assert "'AWS_SECRET_ACCESS_KEY' names the functions' own AWS settings" in out.err
    assert out.out == "", "no run started, so no run record is printed"
    assert not (tmp_path / ".boternity").exists(), "no run left anything behind"
    for leaked in credentials.values():
        assert leaked not in out.out + out.err


# ---------------------------------------------------------------------------- where secrets come from


@pytest.fixture
def secrets_manager(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The emulated Secrets Manager holding the stack's key, a bare-named secret and a workflow secret."""
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.delenv("BOTERNITY_SECRET_PREFIX", raising=False)
    parameters.clear_caches()   # Lambda mode caches values: each case must really look them up
    put_secret("boternity/anthropic", "sk-ant-stack-key")
    put_secret("PARTNER_TOKEN", "bare-name-in-secrets-manager")
    put_secret("anthropic", "bare-name-in-secrets-manager")
    put_secret(DEFAULT_SECRET_PREFIX + "PARTNER_TOKEN", "the-workflow-secret")
    yield
    parameters.clear_caches()


@pytest.mark.parametrize(("where", "name", "expected"), [
    pytest.param("local", "AWS_SECRET_ACCESS_KEY", None, id="local-aws-key-never"),
    pytest.param("local", "PARTNER_TOKEN", "the-workflow-secret", id="local-prefixed-secret-not-the-bare-one"),
    pytest.param("local", "anthropic", None, id="local-stack-secret-not-reachable"),
    pytest.param("local", "../anthropic", None, id="local-traversal-refused"),
    pytest.param("local", "ENV_ONLY", "from-the-namespaced-variable", id="local-namespaced-variable"),
    pytest.param("local", "PREFIX", None, id="local-the-prefix-setting-is-no-secret"),
    pytest.param("lambda", "AWS_SESSION_TOKEN", None, id="lambda-aws-token-never"),
    pytest.param("lambda", "PARTNER_TOKEN", "the-workflow-secret", id="lambda-prefixed-secret-only"),
    pytest.param("lambda", "ENV_ONLY", None, id="lambda-ignores-every-environment-variable"),
    pytest.param("lambda", "anthropic", None, id="lambda-stack-secret-not-reachable"),
])
def test_lookup_reads_only_the_workflow_namespace(secrets_manager: None, monkeypatch: pytest.MonkeyPatch,
                                                  where: str, name: str, expected: str | None) -> None:
    monkeypatch.setenv("PARTNER_TOKEN", "bare-env-var")
    monkeypatch.setenv("ENV_ONLY", "bare-env-var")
    monkeypatch.setenv("BOTERNITY_SECRET_ENV_ONLY", "from-the-namespaced-variable")
    monkeypatch.setenv("BOTERNITY_SECRET_AWS_SESSION_TOKEN", "namespaced-but-reserved")
    monkeypatch.setenv("BOTERNITY_SECRET_PREFIX", DEFAULT_SECRET_PREFIX)   # a setting, not a secret
    if where == "lambda":
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "boternity-http")
    else:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert lookup_secret(name) == expected


# ---------------------------------------------------------------------------- storing


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "../anthropic", "a/b", "x\x1b[2J", "1STARTS-WITH-DIGIT"])
def test_secrets_set_refuses_a_bad_name_before_reading_or_sending(name: str, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # An address nothing listens on: had the command sent anything, it would fail differently.
    monkeypatch.setattr("sys.stdin", None)
    assert main(["secrets", "set", name, "--api", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and ("not a secret name" in err or "own AWS settings" in err), err
    assert "\x1b" not in err and "Traceback" not in err


@pytest.mark.parametrize(("name", "status", "code"), [
    pytest.param("AWS_SECRET_ACCESS_KEY", 400, "invalid_secret_name", id="aws-key"),
    pytest.param("..%2Fanthropic", 400, "invalid_secret_name", id="overwrite-the-anthropic-key"),
    pytest.param("boternity%2Fanthropic", 400, "invalid_secret_name", id="full-name-of-a-stack-secret"),
])
def test_the_local_secrets_route_stores_under_the_prefix_only(cloud: Any, name: str, status: int, code: str) -> None:
    from boternity.local.server import LocalServer

    sm = boto3.client("secretsmanager")
    before = sorted(s["Name"] for s in sm.list_secrets()["SecretList"])
    st, _, body = LocalServer(cloud).handle("PUT", f"/_local/secrets/{name}", {}, b"attacker-value")
    assert (st, json.loads(body)["error"]["code"]) == (status, code)
    assert sorted(s["Name"] for s in sm.list_secrets()["SecretList"]) == before


def test_the_local_secrets_route_refuses_an_oversized_value(cloud: Any) -> None:
    from boternity.local.server import LocalServer
    from boternity.runtime.secrets import SECRET_VALUE_MAX_BYTES

    st, _, body = LocalServer(cloud).handle("PUT", "/_local/secrets/BIG", {}, b"x" * (SECRET_VALUE_MAX_BYTES + 1))
    assert (st, json.loads(body)["error"]["code"]) == (413, "secret_too_large")
    st, _, body = LocalServer(cloud).handle("PUT", "/_local/secrets/GOOD", {}, b"fine")
    assert st == 200 and json.loads(body)["secret_id"] == os.environ.get("BOTERNITY_SECRET_PREFIX",
                                                                            DEFAULT_SECRET_PREFIX) + "GOOD"


# ---------------------------------------------------------------------------- other steps reaching the environment

# What a script in a code step might try, to read the environment, a file or the network: V8 as
# embedded has none of it (Node's, Deno's, Bun's, QuickJS's and the d8 shell's entry points alike).
JS_HOST_OBJECTS = ["process", "require", "fetch", "XMLHttpRequest", "Deno", "Bun", "os", "std", "read",
                   "readbuffer", "load", "importScripts", "WebAssembly", "SharedArrayBuffer"]


@pytest.mark.parametrize("name", JS_HOST_OBJECTS)
def test_javascript_has_no_host_object(name: str) -> None:
    from boternity.executors.code import run_code

    source = f"[typeof globalThis[{name!r}], Function('return typeof {name}')()]"
    out = run_code({"language": "javascript", "source": source, "input": None}, base_dir=None)
    assert out["output"] == ["undefined", "undefined"]


def test_javascript_cannot_import_a_module(credentials: dict[str, str]) -> None:
    from boternity.errors import StepFailed
    from boternity.executors.code import run_code

    with pytest.raises(StepFailed) as info:
        run_code({"language": "javascript", "source": "import('fs').then(m => m.readFileSync('/proc/self/environ'))",
                  "input": None}, base_dir=None)
    assert info.value.code == "code.error" and "Not supported" in str(info.value)


def test_javascript_globals_hold_no_environment_value(credentials: dict[str, str]) -> None:
    from boternity.executors.code import run_code

    source = ("JSON.stringify(Object.getOwnPropertyNames(globalThis).map(n => { try { return [n, String(globalThis[n])]; }"
              " catch (e) { return [n, 'throws']; } }))")
    out = run_code({"language": "javascript", "source": source, "input": None}, base_dir=None)["output"]
    assert "Object" in out
    for value in credentials.values():
        assert value not in out


@pytest.mark.parametrize(("module", "code"), [
    pytest.param("/proc/self/environ", "code.module_not_found", id="absolute-proc-environ"),
    pytest.param("../" * 30 + "proc/self/environ", "code.invalid_config", id="relative-proc-environ"),
    pytest.param("link.wasm", "code.invalid_config", id="symlink-out-of-the-workflow-folder"),
])
def test_a_wasm_module_path_cannot_read_outside_the_workflow_folder(tmp_path: Path, module: str, code: str) -> None:
    from boternity.errors import StepFailed
    from boternity.executors.code import run_code

    (tmp_path / "outside.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "link.wasm").symlink_to(tmp_path / "outside.wasm")
    with pytest.raises(StepFailed) as info:
        run_code({"language": "wasm", "module": module, "input": None}, base_dir=tmp_path / "wf")
    assert info.value.code == code


# ---------------------------------------------------------------------------- template injection

INJECTED = "{{ secrets.PARTNER_TOKEN }}"


@pytest.mark.parametrize("source", [
    pytest.param({"body": "{{ trigger.text }}"}, id="from-the-trigger-payload"),
    pytest.param({"body": "{{ steps.echo.output }}"}, id="from-an-upstream-step-output"),
    pytest.param({"headers": {"X-Note": "{{ trigger.text }}"}}, id="into-a-header"),
])
def test_a_template_inside_data_is_never_rendered_again(cloud: Any, monkeypatch: pytest.MonkeyPatch,
                                                        source: dict[str, Any]) -> None:
    # A caller who controls the payload (or a server whose reply a step reads) writes a template:
    # it must reach the target as the literal text, not as the workflow's secret.
    monkeypatch.setenv("BOTERNITY_SECRET_PARTNER_TOKEN", "injected-secret-marker")
    with HttpTarget() as web:
        w = Workflow.model_validate({"name": "inject", "allow_private_network": True, "steps": [
            {"id": "echo", "type": "code", "config": {"language": "javascript",   # built, so never a template here
                                                      "source": "'{' + '{ secrets.PARTNER_TOKEN }' + '}'"}},
            {"id": "send", "type": "http", "depends_on": ["echo"],
             "config": {"method": "POST", "url": f"{web.url}/echo", "body": source.get("body"),
                        "headers": {"Authorization": "Bearer {{ secrets.PARTNER_TOKEN }}",
                                    **source.get("headers", {})}}}]})
        result = cloud.run(w, {"text": INJECTED}, timeout=60)
        assert result.status == "SUCCEEDED", result.cause
        (request,) = web.requests
    assert request.headers["authorization"] == "Bearer injected-secret-marker"   # the author's own use
    sent = json.dumps({"body": request.body.decode(), "headers": {k: v for k, v in request.headers.items()
                                                         if k != "authorization"}})
    assert "injected-secret-marker" not in sent
    assert INJECTED in sent


def test_what_secrets_set_stores_is_what_a_step_reads(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from boternity.local.server import LocalServer

    monkeypatch.delenv("BOTERNITY_SECRET_STORED_TOKEN", raising=False)
    monkeypatch.setenv("STORED_TOKEN", "bare-variable-never-read")
    st, _, _ = LocalServer(cloud).handle("PUT", "/_local/secrets/STORED_TOKEN", {}, b"stored-value-1")
    assert st == 200
    with HttpTarget() as web:
        w = Workflow.model_validate({"name": "stored", "allow_private_network": True, "steps": [
            {"id": "send", "type": "http", "config": {"url": f"{web.url}/echo",
                                                      "headers": {"X-Key": "{{ secrets.STORED_TOKEN }}"}}}]})
        result = cloud.run(w, timeout=60)
        assert result.status == "SUCCEEDED", result.cause
        assert web.requests[0].headers["x-key"] == "stored-value-1"
