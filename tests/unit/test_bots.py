"""Bot folders: frontmatter, system prompt precedence, missing bots, validation and the per-process cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from boternity.errors import StepFailed
from boternity.executors import bots
from boternity.executors.bots import Bot, BotSource, LocalBotSource, bot_from_texts, load_bot


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    bots.clear_cache()


def make_bot(root: Path, slug: str, identity: str | None = None, soul: str | None = None) -> Path:
    folder = root / slug
    folder.mkdir(parents=True)
    if identity is not None:
        (folder / "IDENTITY.md").write_text(textwrap.dedent(identity), encoding="utf-8")
    if soul is not None:
        (folder / "SOUL.md").write_text(textwrap.dedent(soul), encoding="utf-8")
    return folder


RESEARCHER = """\
    ---
    display_name: Research Assistant
    model: claude-haiku-4-5
    temperature: 0.3
    max_tokens: 2048
    category: research
    provider: anthropic
    ---
    You are a careful researcher. Cite sources.
    """


def test_identity_frontmatter_and_body_make_the_bot(tmp_path: Path) -> None:
    make_bot(tmp_path, "researcher", RESEARCHER)

    bot = load_bot(tmp_path, "researcher")

    assert bot == Bot(
        slug="researcher",
        display_name="Research Assistant",
        model="claude-haiku-4-5",
        temperature=0.3,
        max_tokens=2048,
        system_prompt="You are a careful researcher. Cite sources.",
        found=True,
        category="research",
        provider="anthropic",
        origin=str(tmp_path / "researcher"),
    )


def test_soul_md_takes_precedence_over_the_identity_body(tmp_path: Path) -> None:
    make_bot(tmp_path, "poet", RESEARCHER, soul="You are a poet.\n")

    assert load_bot(tmp_path, "poet").system_prompt == "You are a poet."


def test_soul_md_is_used_when_the_identity_body_is_empty(tmp_path: Path) -> None:
    make_bot(tmp_path, "poet", "---\nmodel: claude-opus-4-1\n---\n", soul="You are a poet.")

    bot = load_bot(tmp_path, "poet")

    assert (bot.model, bot.system_prompt) == ("claude-opus-4-1", "You are a poet.")


def test_a_blank_soul_md_does_not_erase_the_identity_body(tmp_path: Path) -> None:
    make_bot(tmp_path, "poet", "---\n---\nBody prompt.\n", soul="  \n\n")

    assert load_bot(tmp_path, "poet").system_prompt == "Body prompt."


def test_identity_without_frontmatter_is_all_system_prompt(tmp_path: Path) -> None:
    make_bot(tmp_path, "plain", "Just be helpful.\n")

    bot = load_bot(tmp_path, "plain")

    assert (bot.model, bot.temperature, bot.system_prompt) == (None, None, "Just be helpful.")
    assert bot.display_name == "plain"


def test_missing_bot_folder_is_not_an_error_and_says_so(tmp_path: Path) -> None:
    bot = load_bot(tmp_path, "ghost")

    assert bot.found is False
    assert (bot.slug, bot.display_name) == ("ghost", "ghost")
    assert (bot.model, bot.temperature, bot.max_tokens, bot.system_prompt) == (None, None, None, None)


def test_no_bots_folder_configured_means_every_bot_is_missing() -> None:
    assert load_bot(None, "anyone").found is False


def test_unset_and_null_fields_are_left_to_the_step_and_defaults(tmp_path: Path) -> None:
    make_bot(tmp_path, "minimal", "---\ndisplay_name: Min\nmodel:\nextra_reference_field: [1, 2]\n---\nHi\n")

    bot = load_bot(tmp_path, "minimal")

    assert (bot.display_name, bot.model, bot.max_tokens, bot.temperature) == ("Min", None, None, None)


def test_integer_temperature_is_accepted_as_a_number(tmp_path: Path) -> None:
    make_bot(tmp_path, "hot", "---\ntemperature: 1\n---\n")

    assert load_bot(tmp_path, "hot").temperature == 1.0


@pytest.mark.parametrize(
    ("frontmatter", "field", "fragment"),
    [
        ("temperature: warm", "temperature", "must be a number"),
        ("temperature: true", "temperature", "must be a number"),
        ("temperature: 3.5", "temperature", "between 0 and 2"),
        ("max_tokens: '4096'", "max_tokens", "must be a positive integer, got string '4096'"),
        ("max_tokens: 0", "max_tokens", "at least 1"),
        ("max_tokens: 12.5", "max_tokens", "must be a positive integer"),
        ("model: [a, b]", "model", "must be a string, got list"),
        ("display_name: 42", "display_name", "must be a string, got integer"),
    ],
)
def test_wrong_field_types_fail_naming_the_file_and_field(tmp_path: Path, frontmatter: str, field: str,
                                                          fragment: str) -> None:
    make_bot(tmp_path, "broken", f"---\n{frontmatter}\n---\nBody\n")

    with pytest.raises(StepFailed) as caught:
        load_bot(tmp_path, "broken")

    err = caught.value
    assert err.code == "agent.bot_invalid"
    assert str(tmp_path / "broken" / "IDENTITY.md") in err.message
    assert f"'{field}'" in err.message and fragment in err.message
    assert err.details["field"] == field


def test_invalid_yaml_fails_with_the_file_line(tmp_path: Path) -> None:
    make_bot(tmp_path, "broken", "---\nmodel: claude\ntemperature: [0.3\n---\nBody\n")

    with pytest.raises(StepFailed) as caught:
        load_bot(tmp_path, "broken")

    assert caught.value.code == "agent.bot_invalid"
    assert "not valid YAML" in caught.value.message
    assert "IDENTITY.md" in caught.value.message
    assert caught.value.details["line"] in (3, 4)  # where the unclosed flow sequence is noticed


def test_frontmatter_that_is_not_a_mapping_fails(tmp_path: Path) -> None:
    make_bot(tmp_path, "broken", "---\n- just\n- a list\n---\n")

    with pytest.raises(StepFailed, match="must be a mapping of fields, not a list"):
        load_bot(tmp_path, "broken")


def test_unclosed_frontmatter_fails(tmp_path: Path) -> None:
    make_bot(tmp_path, "broken", "---\nmodel: claude\nYou are helpful.\n")

    with pytest.raises(StepFailed, match="no closing '---'"):
        load_bot(tmp_path, "broken")


@pytest.mark.parametrize("slug", ["../etc", "a/b", ".hidden", "", "a..b", "x" * 200])
def test_slugs_that_would_leave_the_bots_folder_are_refused(tmp_path: Path, slug: str) -> None:
    with pytest.raises(StepFailed) as caught:
        load_bot(tmp_path, slug)

    assert caught.value.code == "agent.bot_invalid"
    assert caught.value.details == {"field": "bot"}


def test_bots_are_cached_until_a_file_changes(tmp_path: Path) -> None:
    folder = make_bot(tmp_path, "cached", "---\nmodel: first\n---\nPrompt\n")

    first = load_bot(tmp_path, "cached")
    assert load_bot(tmp_path, "cached") is first

    identity = folder / "IDENTITY.md"
    identity.write_text("---\nmodel: second\n---\nPrompt\n", encoding="utf-8")
    # Same size and possibly the same mtime tick on a fast filesystem: move the clock explicitly.
    stat = identity.stat()
    os.utime(identity, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_bot(tmp_path, "cached").model == "second"

    (folder / "SOUL.md").write_text("A new soul.", encoding="utf-8")
    assert load_bot(tmp_path, "cached").system_prompt == "A new soul."


def test_bom_and_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "windows"
    folder.mkdir()
    (folder / "IDENTITY.md").write_bytes(b"\xef\xbb\xbf---\r\nmodel: claude-x\r\n---\r\nHello\r\n")

    bot = load_bot(tmp_path, "windows")

    assert (bot.model, bot.system_prompt) == ("claude-x", "Hello")


def test_local_source_is_a_bot_source(tmp_path: Path) -> None:
    make_bot(tmp_path, "researcher", RESEARCHER)
    source: BotSource = LocalBotSource(tmp_path)

    assert source.get("researcher").model == "claude-haiku-4-5"
    assert source.get("ghost").found is False


def test_a_source_that_only_has_texts_builds_the_same_bot(tmp_path: Path) -> None:
    """What a future S3 source will do: fetch the two files' texts and hand them over."""
    make_bot(tmp_path, "researcher", RESEARCHER)

    from_texts = bot_from_texts("researcher", identity=textwrap.dedent(RESEARCHER), soul=None,
                                origin=str(tmp_path / "researcher"))

    assert from_texts == load_bot(tmp_path, "researcher")


def test_bots_and_selfcorrect_do_not_import_the_sdk() -> None:
    """Only the agent executor may pay anthropic's ~0.8 s import; these modules load elsewhere too."""
    code = ("import sys, boternity.executors.bots, boternity.executors.selfcorrect; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('anthropic', 'httpx2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
