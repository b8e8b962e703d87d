"""One numbering for loop iterations: the records' `iteration` and `{{ loop.iteration }}` in the
body both count from 1; the loop's condition sees how many iterations finished (0 at first)."""

from __future__ import annotations

import pytest

from boternity.model import parse_workflow
from boternity.validate import check_workflow

pytest.importorskip("py_mini_racer")


def test_the_body_sees_the_same_iteration_number_its_record_has(engine):
    w = parse_workflow({"name": "numbering", "steps": [
        {"id": "rounds", "type": "loop",
         "config": {"condition": "loop.iteration < 3", "max_iterations": 10, "body_steps": ["tick"]}},
        {"id": "tick", "type": "code",
         "config": {"language": "javascript", "source": "Number(input)", "input": "{{ loop.iteration }}"}},
    ]})
    check_workflow(w)
    result = engine.run(w, {}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    ticks = {r["iteration"]: r["output"]["output"] for r in result.steps if r["step_id"] == "tick" and r["iteration"]}
    assert ticks == {"1": 1, "2": 2, "3": 3}
    assert result.output["rounds"]["output"] == {"iterations": 3, "completed": True}
