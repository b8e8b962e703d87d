"""`boternity graph` prints Mermaid that Mermaid's own parser accepts, one node per step.

Mermaid's parser runs in node (tests/support/mermaid: pinned in its package-lock.json, installed
on first use with `npm ci`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from boternity.graph import mermaid_ids, to_mermaid
from boternity.validate import load_workflow, load_workflow_text
from tests.support.node_tools import node_checker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mermaid_parse():
    return node_checker("mermaid", "mermaid", "parse.mjs", what="Mermaid's parser")


def wf(steps: str) -> str:
    return f"name: g\nsteps:\n{steps}"


HOSTILE_NAMES = wf("""
  - {id: a-b, name: 'say "hi" [now]', type: skill, config: {skill: s}}
  - {id: a_b, name: "<script>alert(1)</script> & {x} (y) |z| #1 `code`", type: skill, config: {skill: s},
     depends_on: [a-b]}
  - {id: end, name: "end", type: skill, config: {skill: s}, depends_on: [a_b]}
""")

NESTED = wf("""
  - {id: outer, type: loop, config: {condition: "loop.iteration < 2", body_steps: [inner, x-1]}}
  - {id: inner, type: loop, config: {condition: "loop.iteration < 2", body_steps: [x_1]}}
  - {id: x_1, type: skill, config: {skill: s}}
  - {id: x-1, type: skill, config: {skill: s}, depends_on: [inner]}
  - {id: outer-body, type: skill, config: {skill: s}, depends_on: [outer]}
""")


def nodes(text: str) -> list[str]:
    return re.findall(r"^\s*(s_\w+)[\[{]", text, flags=re.M)


def test_ids_differing_only_in_dash_and_underscore_stay_two_nodes():
    text = to_mermaid(load_workflow_text(HOSTILE_NAMES, validate=False).workflow)
    assert len(set(nodes(text))) == 3
    ids = mermaid_ids(["a-b", "a_b"])
    assert ids["a-b"] != ids["a_b"]
    assert not re.search(r"^\s*(s_\w+) --> \1$", text, flags=re.M), "no self-loop"


def test_labels_escape_quotes_markup_and_brackets():
    text = to_mermaid(load_workflow_text(HOSTILE_NAMES, validate=False).workflow)
    assert "<script>" not in text and '"hi"' not in text
    assert "#lt;script#gt;" in text and "#quot;hi#quot;" in text


@pytest.mark.parametrize("source", ["hostile-names", "nested-loops"])
def test_mermaid_accepts_hostile_and_nested_graphs(mermaid_parse, source):
    text = to_mermaid(load_workflow_text(HOSTILE_NAMES if source == "hostile-names" else NESTED,
                                         validate=False).workflow)
    result = mermaid_parse(text)
    assert result == {"ok": True, "type": "flowchart-v2"}, result


def test_a_step_cannot_take_a_loop_bodys_node():
    text = to_mermaid(load_workflow_text(NESTED, validate=False).workflow)
    assert len(set(nodes(text))) == 5
    assert "subgraph b_outer[" in text and "subgraph b_inner[" in text


def test_every_example_parses(mermaid_parse):
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        result = mermaid_parse(to_mermaid(load_workflow(path).workflow))
        assert result["ok"], (path.name, result)


def test_the_checker_rejects_broken_mermaid(mermaid_parse):
    # The oracle itself must be able to say no (an unescaped quote in a label).
    assert mermaid_parse('flowchart TD\n    a["x"y"] --> b\n')["ok"] is False
