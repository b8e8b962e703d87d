"""`boternity doctor` against `boternity serve` (a real HTTP server on 127.0.0.1): every check
passes on a healthy stack, it cleans up what it registered, and a failure names what to fix."""

from __future__ import annotations

import threading

import pytest

from boternity.cli.client import Client
from boternity.cli.doctor import NO_SUCH_MODEL, Doctor, fix_hint
from boternity.local import cloud_patches
from boternity.local.server import LocalServer, prepare_local_cloud
from tests.support.anthropic_stub import AnthropicStub


@pytest.fixture
def served(engine, monkeypatch):
    cloud_patches.apply()
    for k, v in prepare_local_cloud(engine).items():
        monkeypatch.setenv(k, v)
    cloud_patches.install_trigger_function(role_arn=engine.role_arn)
    server = LocalServer(engine, port=0)
    http = server.make_http_server()
    port = http.server_address[1]
    monkeypatch.setenv("BOTERNITY_APPROVAL_BASE_URL", f"http://127.0.0.1:{port}")
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", engine
    http.shutdown()
    http.server_close()


@pytest.fixture
def anthropic(monkeypatch):
    with AnthropicStub() as stub:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
        yield stub


def test_a_healthy_stack_passes_every_check_and_nothing_is_left_behind(served, anthropic, capsys):
    from boternity.cli.main import main

    url, engine = served
    # The API answers an unknown model with 404: the key works and no tokens are spent.
    anthropic.error(404, f"model: {NO_SUCH_MODEL}", error_type="not_found_error")
    assert main(["doctor", "--api", url, "--timeout", "120"]) == 0, capsys.readouterr()
    lines = ours(capsys.readouterr().out)
    assert len(lines) >= 10 and all(line.startswith("ok ") for line in lines), lines
    assert any("callback path" in line for line in lines) and any("sub-workflow" in line for line in lines)
    assert anthropic.requests[0].json["model"] == NO_SUCH_MODEL
    assert Client(url).request("GET", "/workflows")["workflows"] == []
    machines = engine.sfn.list_state_machines()["stateMachines"]
    assert not [m for m in machines if "doctor" in m["name"]]


def test_a_stack_without_the_anthropic_key_fails_one_check_saying_so(served, monkeypatch):
    url, _engine = served
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    report = Doctor(Client(url), timeout=120).run()
    assert not report.ok
    [failed] = [c for c in report.checks if not c.ok]
    assert failed.name.startswith("agent function reaches the Anthropic API")
    assert "No Anthropic API key" in failed.detail
    assert Client(url).request("GET", "/workflows")["workflows"] == []


def test_an_unreachable_api_is_one_clear_failure():
    from boternity.errors import BoternityError

    with pytest.raises(BoternityError) as info:
        Doctor(Client("http://127.0.0.1:9"), timeout=5).run()
    assert "cannot reach the API" in str(info.value)


@pytest.mark.parametrize(("message", "hint"), [
    ("User: arn:aws:sts::1:assumed-role/boternity-skill-role/x is not authorized to perform: s3:GetObject on "
     "resource: arn:aws:s3:::bucket/skills/a/SKILL.md because no identity-based policy allows it",
     "grant s3:GetObject on arn:aws:s3:::bucket/skills/a/SKILL.md to the function's role"),
    ("An error occurred (AccessDeniedException) when calling the StartExecution operation: User: x is not "
     "authorized to perform: states:StartExecution on resource: arn:aws:states:us-east-1:1:stateMachine:p_w",
     "grant states:StartExecution on arn:aws:states:us-east-1:1:stateMachine:p_w"),
    ("skill 'x' not found", "skill 'x' not found"),
])
def test_an_access_denial_becomes_the_grant_to_add(message, hint):
    assert fix_hint(message).startswith(hint)


DEPLOYED = """
name: {name}
triggers:
  - {{type: cron, schedule: "every 5 minutes"}}
  - {{type: webhook, path: /{name}}}
steps:
  - {{id: a, type: wait, config: {{seconds: 0}}}}
"""


def _deploy(url: str, name: str) -> None:
    Client(url).request("PUT", f"/workflows/{name}", body=DEPLOYED.format(name=name).encode(),
                        content_type="application/yaml")


def test_undeploy_all_removes_every_workflow_with_its_machine_and_schedules(served, capsys):
    from boternity.cli.main import main

    url, engine = served
    for name in ("one", "two", "three"):
        _deploy(url, name)
    scheduler = engine_client("scheduler")
    assert len(scheduler.list_schedules()["Schedules"]) == 3
    assert main(["undeploy", "--all", "--api", url]) == 0
    out = capsys.readouterr()
    assert sorted(ours(out.out)) == ["one: undeployed", "three: undeployed", "two: undeployed"]
    assert "3 of 3 workflows undeployed" in out.err
    assert Client(url).request("GET", "/workflows")["workflows"] == []
    assert engine.sfn.list_state_machines()["stateMachines"] == []
    assert scheduler.list_schedules()["Schedules"] == []


def test_undeploy_by_name_and_its_refusals(served, capsys):
    from boternity.cli.main import main

    url, _engine = served
    _deploy(url, "keep")
    _deploy(url, "drop")
    assert main(["undeploy", "drop", "--api", url]) == 0
    assert [w["name"] for w in Client(url).request("GET", "/workflows")["workflows"]] == ["keep"]
    assert main(["undeploy", "ghost", "--api", url]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["undeploy", "--api", url]) == 2
    assert main(["undeploy", "keep", "--all", "--api", url]) == 2
    assert "name the workflows to undeploy, or pass --all" in capsys.readouterr().err


def ours(out: str) -> list[str]:
    """The command's own lines (the in-process server also logs its requests, indented)."""
    return [line for line in out.splitlines() if line and not line.startswith("  ")]


def engine_client(service: str):
    import boto3

    return boto3.client(service)
