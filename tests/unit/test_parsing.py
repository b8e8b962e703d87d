"""The bounded parsers (boternity.parsing): ordinary documents read exactly as yaml.safe_load and
json.loads read them; every limit holds, is named, and follows its environment variable."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from boternity.cli.main import main
from boternity.cli.terminal import EscapingStream, escape_controls
from boternity.parsing import Limits, ParseError, loads_json
from boternity.parsing.yaml_loader import load_yaml

ORDINARY_YAML = [
    "name: x\nsteps: []\n",
    "defaults: &d {retries: 2, timeout: 30}\na: {<<: *d, timeout: 5}\nb: *d\nc: [*d, *d]\n",
    "a: &x [1, 2]\nb: [*x, *x]\nwhen: 2026-01-31\nn: -0x1F\nf: 1.5e3\nt: yes\ns: '[[['\n",
    "- &k key\n- {*k : value}\n",
]


@pytest.mark.parametrize("text", ORDINARY_YAML)
def test_ordinary_yaml_reads_as_safe_load_reads_it(text: str):
    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", ['{"a": [1, -2.5e3, "x[[[\\"{{"], "b": {"c": null}}', '"\\u00e9"', "[]", "  7 "])
def test_ordinary_json_reads_as_json_loads_reads_it(text: str):
    assert loads_json(text) == json.loads(text)


def test_brackets_and_digits_inside_strings_do_not_count():
    text = json.dumps({"s": "[" * 500 + "9" * 500, "t": "\\\"[[[["})
    assert loads_json(text, limits=Limits(max_depth=2, max_number_digits=5))["s"].startswith("[[")


def test_each_limit_follows_its_environment_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOTERNITY_MAX_DEPTH", "3")
    monkeypatch.setenv("BOTERNITY_MAX_ALIASES", "1")
    monkeypatch.setenv("BOTERNITY_MAX_NUMBER_DIGITS", "4")
    monkeypatch.setenv("BOTERNITY_MAX_INPUT_BYTES", "20")
    assert loads_json("[[[1]]]") == [[[1]]]
    with pytest.raises(ParseError) as deep:
        loads_json("[[[[1]]]]")
    assert (deep.value.code, deep.value.limit, deep.value.column) == ("too_deep", "BOTERNITY_MAX_DEPTH", 4)
    with pytest.raises(ParseError, match="more than 1 aliases"):
        load_yaml("a: &a 1\nb: [*a, *a]")
    with pytest.raises(ParseError, match="number of 5 characters"):
        loads_json("12345")
    with pytest.raises(ParseError, match="larger than allowed") as big:
        loads_json(b"[" + b"1," * 20 + b"1]")
    assert big.value.code == "too_large"


def test_a_bad_limit_value_is_ignored_not_a_disabled_limit(monkeypatch, caplog):
    monkeypatch.setenv("BOTERNITY_MAX_DEPTH", "0")
    monkeypatch.setenv("BOTERNITY_MAX_NODES", "lots")
    with caplog.at_level(logging.WARNING, logger="boternity"):
        limits = Limits.from_env()
    assert (limits.max_depth, limits.max_nodes) == (64, 100_000)
    assert "BOTERNITY_MAX_DEPTH" in caplog.text and "BOTERNITY_MAX_NODES" in caplog.text


def test_expanded_size_counts_aliases_of_aliases_without_expanding_them():
    # 10 levels of 10 aliases: 10**10 leaves in 300 bytes, refused at the first alias past the limit.
    text = "l0: &l0 x\n" + "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 11))
    with pytest.raises(ParseError) as exc:
        load_yaml(text, limits=Limits(max_nodes=1000))
    assert exc.value.code == "too_many_nodes"
    # l3 expands to 1,111 nodes: the limit is crossed inside it, at one of its aliases.
    assert exc.value.line == 4 and exc.value.path.startswith("l3.")


def test_an_alias_to_a_finished_sibling_is_not_recursive():
    assert load_yaml("a: &a {b: &b [1]}\nc: [*a, *b]") == {"a": {"b": [1]}, "c": [{"b": [1]}, [1]]}
    with pytest.raises(ParseError, match=r"alias \*a refers to a value that contains it") as exc:
        load_yaml("a: &a {b: [1, {c: *a}]}")
    assert (exc.value.code, exc.value.line, exc.value.column, exc.value.path) == ("recursive_alias", 1, 19, "a.b.1.c")


def test_escape_controls_keeps_text_and_layout_but_not_control():
    assert escape_controls("ok\tstill\nok é ✓") == "ok\tstill\nok é ✓"
    assert escape_controls("a\x1b[2Jb\rc\x07\x9b\u202e") == "a\\u001b[2Jb\\u000dc\\u0007\\u009b\\u202e"
    json.loads(escape_controls(json.dumps({"k": "\x9b\u202e"}, ensure_ascii=False)))  # still valid JSON


def test_everything_the_cli_prints_is_escaped(tmp_path, capsys):
    f = tmp_path / "wf.yaml"
    f.write_text('name: x\ndescription: "\\e]52;c;cHduZWQ=\\a"\nsteps:\n  - {id: "a\\e[2J", type: wait}\n')
    assert main(["validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "step 'a\\u001b[2J'" in err


def test_the_escaping_stream_passes_everything_else_through(capsys):
    import sys

    stream = EscapingStream(sys.stdout)
    assert stream.write("x\x1by\n") == 4
    stream.flush()
    assert capsys.readouterr().out == "x\\u001by\n"


def test_tags_a_library_adds_to_pyyaml_safe_loader_are_not_ours(monkeypatch):
    """samtranslator's yaml_parse makes every ``!Tag`` a CloudFormation intrinsic on
    ``yaml.SafeLoader`` itself, for the whole process; a workflow's ``!Ref`` must still be refused
    (it was accepted as a field named 'Ref' once the template tests had run)."""
    monkeypatch.setattr(yaml.SafeLoader, "yaml_multi_constructors", dict(yaml.SafeLoader.yaml_multi_constructors))
    yaml.SafeLoader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: loader.construct_scalar(node)})
    monkeypatch.setattr(yaml.SafeLoader, "yaml_constructors", dict(yaml.SafeLoader.yaml_constructors))
    yaml.SafeLoader.add_constructor("!Sub", lambda loader, node: "substituted")
    assert yaml.safe_load("a: !Ref x") == {"a": {"Ref": "x"}}   # the library's loader, as it wants
    for text in ("a: !Ref x", "a: !Sub x"):
        with pytest.raises(ParseError, match="could not determine a constructor for the tag"):
            load_yaml(text)
