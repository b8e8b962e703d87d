"""The second pass's cases that need ``boternity run`` in a process of its own (with its own
moto and environment, so apart from test_second_pass_inputs.py's in-process cloud), each with its
peak memory measured (tests/hostile/test_hostile_workflows.py's launcher).
"""

from __future__ import annotations

import json

from tests.hostile.test_hostile_workflows import run_cli

BIG = "x" * 100_000


def test_a_step_whose_template_renders_too_much_fails_alone(tmp_path):
    """End to end: the step fails with code 'template' naming the limit; the run ends, the
    process does not run out of memory."""
    (tmp_path / "blowup.yaml").write_text(
        "name: blowup\nsteps:\n  - id: big\n    type: code\n    config:\n      language: javascript\n"
        "      source: \"input.length\"\n      input: \"" + "{{ trigger.s }}" * 400 + "\"\n")
    r = run_cli("run", str(tmp_path / "blowup.yaml"), "--json", "--input", json.dumps({"s": BIG}))
    assert r.exit_code == 1, r.stderr[-500:]
    run = json.loads(r.stdout)["run"]
    assert run["status"] == "FAILED"
    assert "render to more than 33,554,432 characters" in json.dumps(run)
    assert r.peak_mb < 600, f"peak {r.peak_mb:.0f} MB"


def test_an_error_in_a_600_kb_template_is_reported_not_lost(tmp_path):
    """The error quoted the whole template: the step record passed DynamoDB's 400 KB item limit,
    and the run's only error became 'Item size has exceeded the maximum allowed size'."""
    (tmp_path / "bigerr.yaml").write_text(
        "name: bigerr\nsteps:\n  - id: big\n    type: code\n    config:\n      language: javascript\n"
        "      source: \"input.length\"\n      input: \"" + "x" * 600_000 + "{{ trigger.missing }}\"\n")
    r = run_cli("run", str(tmp_path / "bigerr.yaml"), "--json")
    assert r.exit_code == 1, r.stderr[-500:]
    run = json.loads(r.stdout)["run"]
    assert run["status"] == "FAILED"
    assert "{{ trigger.missing }}: 'missing' is not in trigger at offset 600000 in '...xxx" in run["cause"]
    assert "Item size" not in r.stdout and len(run["cause"]) < 1000


def test_an_approval_prompt_too_large_to_store_fails_its_step_saying_so(tmp_path):
    """A prompt rendering to 600 KB failed the step with only DynamoDB's 'Item size has exceeded
    the maximum allowed size'; now the step says what and where, and nothing waits for a decision."""
    (tmp_path / "approve.yaml").write_text(
        "name: approve\nsteps:\n  - {id: ok, type: approval, config: {prompt: \"Approve {{ trigger.s }} and "
        "{{ trigger.s }}\"}}\n")
    (tmp_path / "in.json").write_text(json.dumps({"s": "x" * 300_000}))
    r = run_cli("run", str(tmp_path / "approve.yaml"), "--json", "--approve", "--input", f"@{tmp_path / 'in.json'}")
    assert r.exit_code == 1, r.stderr[-500:]
    run = json.loads(r.stdout)["run"]
    assert run["status"] == "FAILED"
    assert ("[approval.prompt_too_large] step 'ok', field 'config.prompt': the prompt renders to 600,013 bytes; "
            "an approval prompt holds at most 65,536") in run["cause"]
