"""Every golden and every example's compiled definition passes the independent npm asl-validator.

The validator (tests/support/asl-validator: pinned in its package-lock.json, installed on first
use with `npm ci`) checks the ASL JSON schemas, transition targets, terminal states, JSONPath
syntax in the path fields and Resource ARNs: an oracle written by other people than the compiler's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from boternity import load_workflow
from boternity.compiler import TaskTargets, compile_workflow
from tests.conftest import EXAMPLES, ROOT
from tests.support.node_tools import node_checker

GOLDEN = ROOT / "tests" / "golden"


@pytest.fixture(scope="module")
def asl_validate():
    check = node_checker("asl-validator", "asl-validator", "validate.mjs", what="asl-validator")

    def validate(definitions: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return check(json.dumps(definitions))

    return validate


def _invalid(results: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {name: r["errors"] for name, r in results.items() if not r["ok"]}


def test_every_golden_is_valid_asl(asl_validate):
    goldens = {p.name: json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.asl.json"))}
    assert goldens, "no golden definitions found"
    assert _invalid(asl_validate(goldens)) == {}


@pytest.mark.parametrize("targets", ["sam", "local"])
def test_every_compiled_example_is_valid_asl(asl_validate, targets):
    chosen = TaskTargets.sam() if targets == "sam" else TaskTargets.local()
    compiled = {p.name: compile_workflow(load_workflow(p).workflow, targets=chosen)
                for p in sorted(EXAMPLES.glob("*.yaml"))}
    assert len(compiled) >= 6
    assert _invalid(asl_validate(compiled)) == {}


def test_the_validator_rejects_broken_definitions(asl_validate):
    # The oracle must be able to say no: a dangling Next, a Wait with two durations, a bad ResultPath.
    broken = {
        "dangling": {"StartAt": "a", "States": {"a": {"Type": "Pass", "Next": "nowhere"}}},
        "two_durations": {"StartAt": "w", "States": {"w": {"Type": "Wait", "Seconds": 1,
                                                              "TimestampPath": "$.t", "End": True}}},
        "bad_path": {"StartAt": "p", "States": {"p": {"Type": "Pass", "ResultPath": "steps.x", "End": True}}},
    }
    results = asl_validate(broken)
    assert set(_invalid(results)) == set(broken)
    assert any("MISSING_TRANSITION_TARGET" in e for e in results["dangling"]["errors"])
