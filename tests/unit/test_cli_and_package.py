"""The CLI's pure commands, the package's public names and its import weight."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import boternity
from boternity.cli.main import main
from tests.conftest import EXAMPLES, ROOT


def test_public_api_is_exactly_what_all_lists():
    assert boternity.__all__ == sorted(boternity.__all__)
    for name in boternity.__all__:
        assert getattr(boternity, name) is not None


def test_importing_the_compiler_pulls_in_no_sdk():
    code = ("import sys, boternity.compiler, boternity.model, boternity.validate; "
            "print(','.join(m for m in ('boto3', 'botocore', 'anthropic', 'wasmtime', 'requests', 'moto') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_validate_exit_codes(capsys, tmp_path):
    assert main(["validate", str(EXAMPLES / "fan-out.yaml"), str(EXAMPLES / "n-shape.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - {id: a, type: wait, depends_on: [b], config: {seconds: 1}}\n"
                   "  - {id: b, type: wait, depends_on: [a], config: {seconds: 1}}\n")
    assert main(["validate", str(EXAMPLES / "fan-out.yaml"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: step 'a': field 'depends_on': dependency cycle: a -> b -> a" in err


def test_validate_missing_file(capsys):
    assert main(["validate", "nope.yaml"]) == 1
    assert "nope.yaml: file not found" in capsys.readouterr().err


def test_schema_is_generated_from_the_models(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Boternity workflow"
    assert {"name", "steps", "triggers"} <= set(schema["properties"])
    assert "AgentConfig" in schema["$defs"] and schema["$defs"]["Step"]["additionalProperties"] is False


def test_compile_writes_deterministic_asl(tmp_path, capsys):
    out = tmp_path / "x.asl.json"
    assert main(["compile", str(EXAMPLES / "n-shape.yaml"), "-o", str(out)]) == 0
    first = out.read_text()
    assert main(["compile", str(EXAMPLES / "n-shape.yaml")]) == 0
    assert capsys.readouterr().out == first
    asl = json.loads(first)
    # The waits are planned by a's prepare before the Parallel (compiler/waits.py).
    assert asl["StartAt"] == "Run.start" and asl["States"]["Run.start"]["Next"] == "a.prepare"
    assert asl["States"]["a.prepare"]["Next"] == "Parallel(a+b)"


def test_graph_prints_mermaid(capsys):
    assert main(["graph", str(EXAMPLES / "conditional-join.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD")
    assert "s_route -->|then| s_large" in out and "s_route -->|else| s_small" in out


def test_every_function_shim_points_at_a_handler():
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        assert f"boternity.handlers.{app.parent.name}" in app.read_text()


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"boternity {version('boternity')}"


def test_an_unexpected_exception_is_one_line_and_exit_3(tmp_path, capsys, monkeypatch):
    import boternity.cli.main as cli_main

    def broken(path, **kw):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(cli_main, "load_workflow", broken)
    monkeypatch.delenv("BOTERNITY_DEBUG", raising=False)
    f = tmp_path / "wf.yaml"
    f.write_text("name: x\nsteps: []\n")
    for argv in (["validate", str(f)], ["run", str(f)], ["compile", str(f)]):
        assert main(argv) == 3
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith("error: internal error (RecursionError: maximum recursion depth exceeded)")
