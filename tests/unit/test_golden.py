"""Golden ASL: each example compiles to exactly the reviewed definition in tests/golden/.
After an intended compiler change: `pytest tests/unit/test_golden.py --update-golden`, then review the diff."""

from __future__ import annotations

import pytest

from boternity.compiler import TaskTargets, compile_workflow, definition_json
from boternity.validate import load_workflow
from tests.conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
FORBIDDEN = set(' ?*<>{}[]"#%^|~`$&,;:/\\')  # AWS's characters not allowed in state names
CASES = ["fan-out", "n-shape", "conditional-join", "loop-and-for-each", "research-digest", "follow-up"]


@pytest.mark.parametrize("name", CASES)
def test_compiled_asl_matches_the_golden_file(name, update_golden):
    wf = load_workflow(EXAMPLES / f"{name}.yaml").workflow
    text = definition_json(compile_workflow(wf, targets=TaskTargets.sam()))
    golden = GOLDEN / f"{name}.asl.json"
    if update_golden or not golden.exists():
        golden.write_text(text)
    assert text == golden.read_text(), f"{name}: compiler output changed; review and run with --update-golden"


@pytest.mark.parametrize("name", CASES)
def test_compiled_asl_invariants(name):
    wf = load_workflow(EXAMPLES / f"{name}.yaml").workflow
    asl = compile_workflow(wf)
    names: list[str] = []

    def walk(states: dict) -> None:
        for n, st in states.items():
            names.append(n)
            assert len(n) <= 80 and not set(n) & FORBIDDEN
            if st["Type"] == "Task":
                assert st.get("TimeoutSeconds"), f"{n} has no TimeoutSeconds"
                assert "states:::states" in st["Resource"] or st["Retry"][0]["ErrorEquals"][0] == "Lambda.ServiceException"
            for b in st.get("Branches", []):
                walk(b["States"])
            if "ItemProcessor" in st:
                walk(st["ItemProcessor"]["States"])

    walk(asl["States"])
    assert len(names) == len(set(names)), "state names must be unique across the machine"
