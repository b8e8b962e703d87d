"""What a step receives from outside (a target server's body, a program's stdout, JavaScript's
output, a model's reply) is parsed by the same bounded parser: JSON nested 3,000 deep, a
5,000-digit number or NaN stays text (or fails the step cleanly), never a RecursionError."""

from __future__ import annotations

import pytest

from boternity.errors import StepFailed
from boternity.executors.code import run_code
from boternity.executors.wasm import parse_output
from boternity.parsing import json_or

DEEP = "[" * 3000 + "]" * 3000
HOSTILE_TEXTS = {"deep-3000": DEEP, "deep-100000": "[" * 100_000 + "]" * 100_000,
                 "int-5000-digits": "1" * 5000, "nan": '{"x": NaN}', "infinity": "[Infinity]"}


@pytest.mark.parametrize("text", HOSTILE_TEXTS.values(), ids=HOSTILE_TEXTS.keys())
def test_hostile_json_is_the_fallback_value_not_an_exception(text: str):
    fallback = object()
    assert json_or(text, fallback) is fallback


def test_a_large_but_ordinary_response_still_parses():
    big = "[" + ",".join(['{"k": "' + "v" * 100 + '"}'] * 20_000) + "]"   # 2.3 MB: past the input limit
    assert len(json_or(big, None)) == 20_000


@pytest.mark.parametrize("text", [DEEP, "1" * 5000], ids=["deep-3000", "int-5000-digits"])
def test_a_program_printing_hostile_json_gets_its_text_as_output(text: str):
    assert parse_output(text + "\n") == text


def test_javascript_returning_3000_levels_fails_the_step_cleanly():
    pytest.importorskip("py_mini_racer")
    source = "let a = []; for (let i = 0; i < 3000; i++) { a = [a]; } a"
    with pytest.raises(StepFailed) as info:
        run_code({"language": "javascript", "source": source, "input": None}, base_dir=None)
    assert info.value.code == "code.output_too_deep"
    assert "nested too deeply" in info.value.message
