"""Validation: the reference examples load unchanged; bad workflows are refused with precise errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from boternity.errors import ValidationFailed
from boternity.validate import load_workflow, load_workflow_text

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference"


@pytest.mark.parametrize("name", ["daily-digest", "pr-triage", "content-review"])
def test_reference_examples_load_unchanged(name):
    loaded = load_workflow(REFERENCE / f"{name}.yaml")
    assert loaded.workflow.name == name


def test_short_form_fills_defaults():
    wf = load_workflow_text(textwrap.dedent("""
        name: short
        steps:
          - id: fetch
            type: http
            config: { url: "https://example.com" }
    """)).workflow
    step = wf.steps[0]
    assert wf.id is None and wf.version is None and wf.owner is None
    assert step.name == "fetch" and step.config.type == "http" and step.config.method == "GET"
    assert step.timeout_secs == 300 and wf.timeout_secs == 1800


def errors_of(yaml_text: str):
    with pytest.raises(ValidationFailed) as info:
        load_workflow_text(textwrap.dedent(yaml_text), file="wf.yaml")
    return info.value.errors


def one(yaml_text: str, code: str):
    errs = errors_of(yaml_text)
    matching = [e for e in errs if e.code == code]
    assert matching, f"expected {code}, got {[(e.code, str(e)) for e in errs]}"
    return matching[0]


BASE = """
name: wf
steps:
"""


def test_yaml_syntax_error_names_file_and_line():
    e = one("name: wf\nsteps:\n  - id: a\n    type: [unclosed\n", "yaml_syntax")
    assert e.file == "wf.yaml" and e.line == 5
    assert str(e).startswith("wf.yaml:5")


def test_duplicate_yaml_key():
    e = one("name: wf\nname: other\nsteps: []\n", "duplicate_key")
    assert e.line == 2


def test_unknown_top_level_field():
    e = one("name: wf\nstepz: []\nsteps:\n  - {id: a, type: wait, config: {seconds: 1}}\n", "unknown_field")
    assert "stepz" in e.message and e.line == 2


def test_unknown_field_in_a_step_config_names_step_field_and_line():
    e = one(BASE + "  - id: a\n    type: http\n    config:\n      url: https://x\n      methd: POST\n",
            "unknown_field")
    assert e.step_id == "a" and e.field == "config.methd" and e.line == 8


def test_missing_required_config_field():
    e = one(BASE + "  - id: a\n    type: agent\n    config: { bot: x }\n", "missing_field")
    assert e.step_id == "a" and e.field == "config.prompt"


def test_workflow_name_rules():
    e = one("name: 'bad name!'\nsteps:\n  - {id: a, type: wait, config: {seconds: 1}}\n", "invalid_format")
    assert e.field == "name"


def test_step_id_must_work_as_a_state_name():
    e = one(BASE + "  - {id: 'has space', type: wait, config: {seconds: 1}}\n", "invalid_format")
    assert e.field == "id"


def test_step_id_too_long():
    e = one(BASE + f"  - {{id: {'x' * 65}, type: wait, config: {{seconds: 1}}}}\n", "string_too_long")
    assert e.field == "id"


def test_step_type_and_config_type_must_agree():
    e = one(BASE + "  - {id: a, type: http, config: {type: wait, seconds: 1}}\n", "value_error")
    assert "does not match" in e.message


def test_unknown_step_type():
    e = one(BASE + "  - {id: a, type: teleport, config: {}}\n", "invalid_type")
    assert e.step_id == "a"


def test_duplicate_step_ids():
    e = one(BASE + "  - {id: a, type: wait, config: {seconds: 1}}\n  - {id: a, type: wait, config: {seconds: 2}}\n",
            "duplicate_step")
    assert e.line == 5


def test_unknown_dependency():
    e = one(BASE + "  - {id: a, type: wait, depends_on: [ghost], config: {seconds: 1}}\n", "unknown_dependency")
    assert "ghost" in e.message and e.step_id == "a" and e.field == "depends_on"


def test_cycle_is_printed():
    e = one(BASE + "  - {id: a, type: wait, depends_on: [b], config: {seconds: 1}}\n"
                   "  - {id: b, type: wait, depends_on: [a], config: {seconds: 1}}\n", "cycle")
    assert "a -> b -> a" in e.message or "b -> a -> b" in e.message


def test_self_dependency_is_a_cycle():
    e = one(BASE + "  - {id: a, type: wait, depends_on: [a], config: {seconds: 1}}\n", "cycle")
    assert "itself" in e.message


def test_then_step_that_does_not_exist():
    e = one(BASE + "  - {id: c, type: conditional, config: {condition: 'true', then_steps: [nope]}}\n", "unknown_step")
    assert e.field == "config.then_steps" and "nope" in e.message


def test_loop_body_that_does_not_exist():
    e = one(BASE + "  - {id: l, type: loop, config: {condition: 'true', body_steps: [nope]}}\n", "unknown_step")
    assert e.field == "config.body_steps"


def test_template_reading_a_step_that_is_not_upstream():
    e = one(BASE + "  - {id: a, type: wait, config: {seconds: 1}}\n"
                   "  - {id: b, type: http, config: {url: 'https://x/{{ steps.a.output }}'}}\n", "not_upstream")
    assert e.step_id == "b" and e.field == "config.url" and "'a'" in e.message


def test_template_reading_an_unknown_step():
    e = one(BASE + "  - {id: b, type: http, config: {url: 'https://x/{{ steps.ghost.output }}'}}\n",
            "unknown_step_reference")
    assert "ghost" in e.message


def test_template_with_an_unknown_root():
    e = one(BASE + "  - {id: b, type: http, config: {url: 'https://x/{{ input.topic }}'}}\n", "template_syntax")
    assert e.step_id == "b"


def test_condition_reading_a_step_that_is_not_upstream():
    e = one(BASE + "  - {id: a, type: wait, config: {seconds: 1}}\n"
                   "  - {id: b, type: wait, condition: 'steps.a.output == 1', config: {seconds: 1}}\n", "not_upstream")
    assert e.field == "condition"


def test_condition_syntax_error_has_the_offset():
    e = one(BASE + "  - {id: a, type: wait, condition: 'trigger.x == (1', config: {seconds: 1}}\n",
            "condition_syntax")
    assert "offset" in e.message and e.field == "condition"


def test_condition_with_an_unknown_root():
    e = one(BASE + "  - {id: a, type: wait, condition: 'context.approved', config: {seconds: 1}}\n",
            "unknown_reference")
    assert "context" in e.message


def test_unknown_variable():
    e = one(BASE + "  - {id: a, type: http, config: {url: 'https://x/{{ variables.nope }}'}}\n", "unknown_variable")
    assert "nope" in e.message


def test_item_outside_for_each():
    e = one(BASE + "  - {id: a, type: http, config: {url: 'https://x/{{ item }}'}}\n", "invalid_reference")
    assert "for_each" in e.message


def test_secrets_only_in_http_steps():
    e = one(BASE + "  - {id: a, type: agent, config: {bot: b, prompt: '{{ secrets.KEY }}'}}\n", "secrets_not_allowed")
    assert e.step_id == "a"


def test_timeout_must_be_positive():
    e = one(BASE + "  - {id: a, type: wait, timeout_secs: 0, config: {seconds: 1}}\n", "greater_than")
    assert e.field == "timeout_secs"


def test_workflow_timeout_must_be_positive():
    e = one("name: wf\ntimeout_secs: -5\nsteps:\n  - {id: a, type: wait, config: {seconds: 1}}\n", "greater_than")
    assert e.field == "timeout_secs" and e.step_id is None


def test_concurrency_at_least_one():
    e = one("name: wf\nconcurrency: 0\nsteps:\n  - {id: a, type: wait, config: {seconds: 1}}\n", "greater_than_equal")
    assert e.field == "concurrency"


def test_max_iterations_bounds():
    e = one(BASE + "  - {id: l, type: loop, config: {condition: 'true', max_iterations: 0, body_steps: [a]}}\n"
                   "  - {id: a, type: wait, config: {seconds: 1}}\n", "greater_than_equal")
    assert e.field == "config.max_iterations"


def test_max_concurrency_needs_for_each():
    one(BASE + "  - {id: a, type: wait, max_concurrency: 2, config: {seconds: 1}}\n", "max_concurrency_without_for_each")


def test_wait_needs_exactly_one_of_seconds_or_until():
    e = one(BASE + "  - {id: a, type: wait, config: {}}\n", "value_error")
    assert "exactly one" in e.message


def test_retry_on_a_conditional_is_refused():
    one(BASE + "  - {id: c, type: conditional, retry: {max_attempts: 2}, "
               "config: {condition: 'true', then_steps: [a]}}\n  - {id: a, type: wait, config: {seconds: 1}}\n",
        "retry_unsupported")


def test_self_correct_only_for_agents():
    e = one(BASE + "  - {id: a, type: http, retry: {strategy: llm_self_correct}, config: {url: 'https://x'}}\n",
            "retry_unsupported")
    assert e.field == "retry.strategy"


def test_step_in_both_branches():
    one(BASE + "  - {id: c, type: conditional, config: {condition: 'true', then_steps: [a], else_steps: [a]}}\n"
               "  - {id: a, type: wait, config: {seconds: 1}}\n", "branch_conflict")


def test_depending_on_a_step_inside_a_loop_body():
    one(BASE + "  - {id: l, type: loop, config: {condition: 'true', body_steps: [a]}}\n"
               "  - {id: a, type: wait, config: {seconds: 1}}\n"
               "  - {id: b, type: wait, depends_on: [a], config: {seconds: 1}}\n", "dependency_into_loop_body")


def test_bad_cron_and_timezone():
    errs = errors_of("name: wf\ntriggers:\n  - {type: cron, schedule: 'daily at 9am', timezone: Mars/Base}\n"
                     "steps:\n  - {id: a, type: wait, config: {seconds: 1}}\n")
    codes = {e.code for e in errs}
    assert {"invalid_schedule", "invalid_timezone"} <= codes
    assert all(e.line == 3 for e in errs)


def test_webhook_when_can_only_read_event_and_trigger():
    e = one("name: wf\ntriggers:\n  - {type: webhook, path: /x, when: \"steps.a.output == 1\"}\n"
            "steps:\n  - {id: a, type: wait, config: {seconds: 1}}\n", "unknown_reference")
    assert e.line == 3


def test_webhook_auth_needs_a_secret_name():
    one("name: wf\ntriggers:\n  - {type: webhook, path: /x, auth: {type: hmac_sha256}}\n"
        "steps:\n  - {id: a, type: wait, config: {seconds: 1}}\n", "value_error")


def test_all_errors_are_reported_together():
    errs = errors_of(BASE + "  - {id: a, type: wait, depends_on: [ghost], config: {seconds: 1}}\n"
                            "  - {id: a, type: wait, config: {seconds: 1}}\n"
                            "  - {id: b, type: http, config: {url: '{{ steps.nope.output }}'}}\n")
    assert {"unknown_dependency", "duplicate_step", "unknown_step_reference"} <= {e.code for e in errs}


def test_not_a_mapping():
    one("- just\n- a list\n", "not_a_mapping")


def test_empty_steps():
    e = one("name: wf\nsteps: []\n", "too_short")
    assert e.field == "steps"


def test_a_workflow_that_cannot_fit_the_history_limit_is_refused():
    from boternity.compiler import compile_workflow
    from boternity.errors import CompileError

    body = [f"  - {{id: b{i}, type: wait, config: {{seconds: 0}}}}\n" for i in range(10)]
    wf = load_workflow_text(BASE + "  - {id: l, type: loop, config: {condition: 'true', max_iterations: 1000, "
                            f"body_steps: [{', '.join(f'b{i}' for i in range(10))}]}}}}\n" + "".join(body)).workflow
    with pytest.raises(CompileError) as info:
        compile_workflow(wf)
    assert info.value.limit == "history_events" and "sub_workflow" in str(info.value)


def test_five_hundred_steps_fit_one_state_even_at_their_inline_limits():
    import json

    from boternity.compiler import compile_details, limits

    n = 500
    steps = "".join(f"  - {{id: step-{i:03d}, type: skill, config: {{skill: x}}}}\n" for i in range(n))
    compiled = compile_details(load_workflow_text(BASE + steps).workflow)
    worst_output = "x" * (compiled.inline_bytes - 2)   # a JSON string of exactly the inline limit
    state = {"ctx": {"trigger": {}, "run": {"id": "r" * 80, "started_at": "2026-11-27T00:00:00.000Z"},
                     "workflow": {"name": "w" * 64, "allow_private_network": False}, "variables": {}},
             "steps": {f"step-{i:03d}": {"status": "completed", "output": worst_output} for i in range(n)}}
    assert len(json.dumps(state, separators=(",", ":"))) <= limits.MAX_STATE_WORST_BYTES


def test_too_many_steps_for_one_state_are_refused(monkeypatch):
    from boternity.compiler import compile_workflow, limits
    from boternity.errors import CompileError

    # The definition-size limit stops real workflows first; a smaller state bound shows the check.
    monkeypatch.setattr(limits, "MAX_STATE_WORST_BYTES", 20_000)
    steps = "".join(f"  - {{id: s{i}, type: skill, config: {{skill: x}}}}\n" for i in range(150))
    with pytest.raises(CompileError) as info:
        compile_workflow(load_workflow_text(BASE + steps).workflow)
    assert info.value.limit == "state_size" and "sub_workflow" in str(info.value)
    assert "150 steps" in str(info.value)


def test_for_each_item_cap_comes_from_the_history_budget():
    from boternity.compiler import compile_workflow

    wf = load_workflow_text(BASE + "  - {id: a, type: skill, for_each: '{{ trigger.items }}', config: {skill: x}}\n"
                            "  - {id: b, type: skill, for_each: '{{ trigger.items }}', config: {skill: x}}\n").workflow
    asl = compile_workflow(wf)
    caps = [st["Parameters"]["Payload"]["step"]["max_items"] for name, st in _all_states(asl) if name.endswith(".prepare")]
    assert len(caps) == 2 and all(100 <= c <= 1000 for c in caps)


def _all_states(asl):
    for name, st in asl["States"].items():
        yield name, st
        for b in st.get("Branches", []):
            yield from _all_states(b)
