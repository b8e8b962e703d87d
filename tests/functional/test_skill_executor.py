"""Skill folders: SKILL.md frontmatter, prompt skills, WASM skills, manifests and checksums."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from boternity.errors import StepFailed
from boternity.executors.skill import clear_skill_cache, load_skill, render_prompt, run_skill
from boternity.executors.wasm import MIB, TIER_LIMITS
from tests.support import wasm_modules as wm
from tests.support.skills import skill_md, write_skill

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_skill_cache()
    yield
    clear_skill_cache()


def load_fails(skills_dir: Path, name: str) -> StepFailed:
    with pytest.raises(StepFailed) as info:
        load_skill(skills_dir, name)
    return info.value


# --------------------------------------------------------------------------- prompt skills


def test_a_prompt_skill_outputs_its_body_with_the_input_filled_in(tmp_path) -> None:
    write_skill(tmp_path, "greeter", body="Say hello to {{ input }}. Then {{input}} again.\n")

    out = run_skill(load_skill(tmp_path, "greeter"), "Ada")

    assert out == {"type": "skill", "skill": "greeter", "kind": "prompt",
                   "output": "Say hello to Ada. Then Ada again.\n"}


def test_non_string_input_is_rendered_as_compact_json_and_other_placeholders_stay() -> None:
    body = "Data: {{ input }} / {{ input.name }} / {{  input  }} / {{ steps.x.output }}"

    assert render_prompt(body, {"name": "Ada", "tags": ["a", "é"]}) == (
        'Data: {"name":"Ada","tags":["a","é"]} / {{ input.name }} / {{  input  }} / {{ steps.x.output }}')
    assert render_prompt("n={{input}}", 3) == "n=3"
    assert render_prompt("n={{input}}", None) == "n=null"
    assert render_prompt("{{ input }}", "a\\1 $0") == "a\\1 $0"  # no regex replacement escapes


def test_the_frontmatter_is_parsed_and_the_body_starts_after_it(tmp_path) -> None:
    write_skill(tmp_path, "web-search", text=textwrap.dedent("""\
        ---
        name: web-search
        description: Search the web for information
        license: MIT
        compatibility: ">=0.1.0"
        allowed-tools: web_search
        metadata:
          author: boternity
          version: "1.2.0"
          skill-type: prompt
          capabilities: [http_get, read_env]
          dependencies: [url-parser]
          conflicts-with: [web-scrape]
          trust-tier: verified
          parents: [base-search]
          secrets: [SEARCH_API_KEY]
          categories: [search, web]
        ---

        # Web Search Skill
        """))

    skill = load_skill(tmp_path, "web-search")

    assert (skill.name, skill.kind, skill.trust_tier, skill.version) == ("web-search", "prompt", "verified", "1.2.0")
    assert skill.description == "Search the web for information"
    assert skill.body == "# Web Search Skill\n"
    assert skill.frontmatter["metadata"]["categories"] == ["search", "web"]
    assert skill.limits is None and skill.wasm_path is None


def test_skill_type_prompt_wins_over_a_wasm_file(tmp_path) -> None:
    write_skill(tmp_path, "doc", metadata={"skill-type": "prompt"}, wasm=wm.wasm_bytes(wm.ECHO_JSON_WAT))

    assert load_skill(tmp_path, "doc").kind == "prompt"


def test_a_prompt_skill_with_the_local_tier_is_fine_because_it_runs_nothing(tmp_path) -> None:
    write_skill(tmp_path, "notes", metadata={"trust-tier": "local"}, body="{{input}}")

    assert run_skill(load_skill(tmp_path, "notes"), "x")["output"] == "x"


# --------------------------------------------------------------------------- wasm skills


def test_a_wasm_skill_gets_json_on_stdin_and_its_json_stdout_is_parsed(tmp_path) -> None:
    write_skill(tmp_path, "echo", wasm=wm.wasm_bytes(wm.ECHO_JSON_WAT), metadata={"skill-type": "tool"})

    out = run_skill(load_skill(tmp_path, "echo"), {"city": "Oslo", "days": 3})

    assert out["type"] == "skill" and out["skill"] == "echo" and out["kind"] == "wasm"
    assert out["output"] == {"skill": "echo", "input": {"city": "Oslo", "days": 3}}
    assert out["fuel_consumed"] > 0 and out["duration_ms"] >= 0


def test_text_that_is_not_json_is_returned_as_text(tmp_path) -> None:
    write_skill(tmp_path, "hello", wasm=wm.wasm_bytes(wm.HELLO_TEXT_WAT))

    assert run_skill(load_skill(tmp_path, "hello"), None)["output"] == "hello, world"


def test_a_wasm_skill_runs_with_its_tier_limits_by_default(tmp_path) -> None:
    write_skill(tmp_path, "plain", wasm=wm.wasm_bytes(wm.HELLO_TEXT_WAT))
    write_skill(tmp_path, "trusted", wasm=wm.wasm_bytes(wm.HELLO_TEXT_WAT), metadata={"trust-tier": "verified"})

    assert load_skill(tmp_path, "plain").limits == TIER_LIMITS["untrusted"]
    assert load_skill(tmp_path, "trusted").limits == TIER_LIMITS["verified"]


def test_metadata_limits_override_the_tier(tmp_path) -> None:
    write_skill(tmp_path, "spinner", wasm=wm.wasm_bytes(wm.SPIN_WAT),
                metadata={"limits": {"fuel": 1_000_000, "memory_mb": 32, "timeout_secs": 5}})

    skill = load_skill(tmp_path, "spinner")
    with pytest.raises(StepFailed) as info:
        run_skill(skill, None)

    assert (skill.limits.fuel, skill.limits.memory_bytes, skill.limits.timeout_secs) == (1_000_000, 32 * MIB, 5)
    assert info.value.code == "wasm.fuel"


def test_limits_above_the_ceiling_are_refused(tmp_path) -> None:
    write_skill(tmp_path, "greedy", wasm=wm.wasm_bytes(wm.SPIN_WAT), metadata={"limits": {"memory_mb": 4096}})

    err = load_fails(tmp_path, "greedy")

    assert err.code == "skill.invalid"
    assert err.details["field"] == "metadata.limits.memory_mb"


def test_a_failing_program_fails_the_step_with_the_runner_code(tmp_path) -> None:
    write_skill(tmp_path, "picky", wasm=wm.wasm_bytes(wm.EXIT_3_WAT))

    with pytest.raises(StepFailed) as info:
        run_skill(load_skill(tmp_path, "picky"), {})

    assert info.value.code == "wasm.exit"


def test_a_component_skill_runs_through_execute(tmp_path) -> None:
    write_skill(tmp_path, "comp", wasm=wm.wasm_bytes(wm.COMPONENT_ECHO_WAT))

    assert run_skill(load_skill(tmp_path, "comp"), {"a": [1]})["output"] == {"a": [1]}


def test_input_that_is_not_json_serialisable_is_refused(tmp_path) -> None:
    write_skill(tmp_path, "echo", wasm=wm.wasm_bytes(wm.ECHO_JSON_WAT))

    with pytest.raises(StepFailed) as info:
        run_skill(load_skill(tmp_path, "echo"), {"when": object()})

    assert info.value.code == "skill.invalid_input"


@pytest.mark.parametrize("where", ["frontmatter", "manifest"])
def test_the_local_tier_is_refused_for_code(tmp_path, where) -> None:
    if where == "frontmatter":
        write_skill(tmp_path, "native", wasm=wm.wasm_bytes(wm.HELLO_TEXT_WAT), metadata={"trust-tier": "local"})
    else:
        write_skill(tmp_path, "native", wasm=wm.wasm_bytes(wm.HELLO_TEXT_WAT), manifest={"trust_tier": "local"})

    err = load_fails(tmp_path, "native")

    assert err.code == "skill.local_tier_unsupported"
    assert "not supported" in err.message


# --------------------------------------------------------------------------- not found, invalid


def test_a_missing_skill_folder_is_not_found(tmp_path) -> None:
    err = load_fails(tmp_path, "ghost")

    assert err.code == "skill.not_found"
    assert str(tmp_path / "ghost") in err.message


def test_a_folder_without_skill_md_is_not_found(tmp_path) -> None:
    (tmp_path / "empty").mkdir()

    err = load_fails(tmp_path, "empty")

    assert err.code == "skill.not_found"
    assert str(tmp_path / "empty" / "SKILL.md") in err.message


@pytest.mark.parametrize("name", ["../etc", "Upper", "-lead", "trail-", "a/b", "", "x" * 65])
def test_a_name_that_is_not_a_skill_name_is_refused_before_touching_the_disk(tmp_path, name) -> None:
    err = load_fails(tmp_path, name)

    assert err.code == "skill.invalid"
    assert err.details["field"] == "name"


BAD_FRONTMATTER = {
    "no frontmatter": ("# Just markdown\n", "frontmatter"),
    "no closing line": ("---\nname: bad\ndescription: x\n", "frontmatter"),
    "yaml syntax": ("---\nname: bad\ndescription: [unclosed\n---\nbody\n", "frontmatter"),
    "not a mapping": ("---\n- a\n- b\n---\nbody\n", "frontmatter"),
    "name missing": (skill_md("bad").replace("name: bad\n", ""), "name"),
    "name differs from folder": (skill_md("other"), "name"),
    "description missing": (skill_md("bad", description=None), "description"),
    "description blank": (skill_md("bad", description="   "), "description"),
    "license not a string": (skill_md("bad", license=["MIT"]), "license"),
    "metadata not a mapping": (skill_md("bad", metadata=["x"]), "metadata"),  # type: ignore[arg-type]
    "version not semver": (skill_md("bad", metadata={"version": "1.2"}), "metadata.version"),
    "unknown skill type": (skill_md("bad", metadata={"skill-type": "agent"}), "metadata.skill-type"),
    "unknown tier": (skill_md("bad", metadata={"trust-tier": "trusted"}), "metadata.trust-tier"),
    "capabilities not a list": (skill_md("bad", metadata={"capabilities": "http_get"}), "metadata.capabilities"),
    "conflicts with itself": (skill_md("bad", metadata={"conflicts-with": ["bad"]}), "metadata.conflicts-with"),
    "unknown limit": (skill_md("bad", metadata={"limits": {"cpu": 1}}), "metadata.limits.cpu"),
}


@pytest.mark.parametrize("case", list(BAD_FRONTMATTER))
def test_bad_frontmatter_is_refused_naming_the_field(tmp_path, case) -> None:
    text, field = BAD_FRONTMATTER[case]
    write_skill(tmp_path, "bad", text=text)

    err = load_fails(tmp_path, "bad")

    assert err.code == "skill.invalid"
    assert err.details["field"] == field
    assert field in err.message


def test_unknown_frontmatter_fields_are_ignored_like_the_reference_does(tmp_path) -> None:
    write_skill(tmp_path, "future", homepage="https://example.com", metadata={"x-new": True})

    assert load_skill(tmp_path, "future").kind == "prompt"


# --------------------------------------------------------------------------- manifest and checksum


def test_a_matching_wasm_checksum_lets_the_skill_run(tmp_path) -> None:
    write_skill(tmp_path, "echo", wasm=wm.wasm_bytes(wm.ECHO_JSON_WAT), checksum="auto",
                manifest={"source": "registry", "installed_at": "2026-01-01T00:00:00Z", "version": "1.0.0"})

    skill = load_skill(tmp_path, "echo")

    assert skill.checksum == hashlib.sha256(wm.wasm_bytes(wm.ECHO_JSON_WAT)).hexdigest()
    assert run_skill(skill, 1)["output"] == {"skill": "echo", "input": 1}


def test_a_bare_hex_checksum_of_skill_md_is_accepted(tmp_path) -> None:
    text = skill_md("notes", body="hi {{input}}")
    write_skill(tmp_path, "notes", text=text, manifest={"checksum": hashlib.sha256(text.encode()).hexdigest().upper()})

    assert run_skill(load_skill(tmp_path, "notes"), "you")["output"] == "hi you"


@pytest.mark.parametrize("with_wasm", [True, False])
def test_a_checksum_mismatch_is_refused_before_anything_runs(tmp_path, with_wasm) -> None:
    wasm = wm.wasm_bytes(wm.ECHO_JSON_WAT) if with_wasm else None
    write_skill(tmp_path, "tampered", wasm=wasm, checksum="sha256:" + "0" * 64)

    err = load_fails(tmp_path, "tampered")

    assert err.code == "skill.checksum_mismatch"
    assert err.details["file"] == ("skill.wasm" if with_wasm else "SKILL.md")


def test_a_module_swapped_after_loading_is_caught_before_it_runs(tmp_path) -> None:
    folder = write_skill(tmp_path, "echo", wasm=wm.wasm_bytes(wm.ECHO_JSON_WAT), checksum="auto")
    skill = load_skill(tmp_path, "echo")
    (folder / "skill.wasm").write_bytes(wm.wasm_bytes(wm.HELLO_TEXT_WAT))

    with pytest.raises(StepFailed) as info:
        run_skill(skill, 1)

    assert info.value.code == "skill.checksum_mismatch"


def test_a_malformed_checksum_is_an_invalid_manifest(tmp_path) -> None:
    write_skill(tmp_path, "odd", checksum="md5:abc123")

    err = load_fails(tmp_path, "odd")

    assert err.code == "skill.invalid"
    assert "checksum" in err.details["field"]


def test_unparsable_manifest_toml_is_invalid(tmp_path) -> None:
    write_skill(tmp_path, "odd", manifest="checksum = [unclosed\n")

    assert load_fails(tmp_path, "odd").details["field"] == ".boternity-meta.toml"


def test_the_manifest_tier_overrides_the_frontmatter(tmp_path) -> None:
    write_skill(tmp_path, "promoted", wasm=wm.wasm_bytes(wm.HELLO_TEXT_WAT), metadata={"trust-tier": "untrusted"},
                manifest={"trust_tier": "Verified", "version": "2.0.0",
                          "source": "registry"})

    skill = load_skill(tmp_path, "promoted")

    assert skill.trust_tier == "verified"
    assert skill.limits == TIER_LIMITS["verified"]
    assert skill.version == "2.0.0"
    assert skill.manifest["source"] == "registry"


# --------------------------------------------------------------------------- cache and import cost


def test_a_skill_is_loaded_once_until_one_of_its_files_changes(tmp_path) -> None:
    folder = write_skill(tmp_path, "cached", body="v1 {{input}}")
    first = load_skill(tmp_path, "cached")

    assert load_skill(tmp_path, "cached") is first

    (folder / "SKILL.md").write_text(skill_md("cached", body="version two {{input}}"))
    os.utime(folder / "SKILL.md", ns=(1, 1))  # a different mtime even on coarse file systems
    second = load_skill(tmp_path, "cached")

    assert second is not first
    assert run_skill(second, "!")["output"] == "version two !"


def test_prompt_skills_never_import_wasmtime(tmp_path) -> None:
    write_skill(tmp_path, "plain", body="{{ input }}")
    script = textwrap.dedent(f"""
        import sys
        from boternity.executors.skill import load_skill, run_skill
        assert run_skill(load_skill({str(tmp_path)!r}, "plain"), "ok")["output"] == "ok"
        assert "wasmtime" not in sys.modules, "wasmtime was imported"
    """)

    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- a real program


@pytest.fixture(scope="module")
def word_count_wasm(tmp_path_factory) -> bytes:
    wasm = wm.build_c_wasm(wm.C_WORD_COUNT_SOURCE, tmp_path_factory.mktemp("c"))
    if wasm is None:
        pytest.skip("clang with a wasm32-wasi sysroot is not installed")
    return wasm


def test_a_skill_written_in_c_runs_in_the_sandbox(tmp_path, word_count_wasm) -> None:
    write_skill(tmp_path, "word-count", wasm=word_count_wasm, checksum="auto",
                metadata={"skill-type": "tool", "version": "1.0.0"})
    skill = load_skill(tmp_path, "word-count")

    out = run_skill(skill, "the quick brown fox")

    assert out["output"] == {"bytes": 21, "words": 4, "lines": 0}  # stdin is the JSON '"the ... fox"'
    # 100 KB of input costs millions of fuel units: far past the reference's 500 000.
    assert run_skill(skill, "x " * 50_000)["fuel_consumed"] > 1_000_000
