"""``code`` steps: WebAssembly modules (path, base64, WAT) and sandboxed JavaScript."""

from __future__ import annotations

import base64
import time

import pytest

from boternity.errors import StepFailed
from boternity.executors.code import (
    CODE_LANGUAGES_SUPPORTED,
    JsLimits,
    run_code,
    unsupported_language_reason,
)
from tests.support import wasm_modules as wm


def code_fails(config: dict, base_dir=None, **kwargs) -> StepFailed:
    with pytest.raises(StepFailed) as info:
        run_code(config, base_dir=base_dir, **kwargs)
    return info.value


# --------------------------------------------------------------------------- languages


def test_wasm_and_javascript_are_supported_and_typescript_is_explained() -> None:
    assert CODE_LANGUAGES_SUPPORTED == ("wasm", "javascript")
    assert unsupported_language_reason("wasm") is None
    assert unsupported_language_reason("javascript") is None
    for ts in ("typescript", "type_script"):
        reason = unsupported_language_reason(ts)
        assert reason is not None and "TypeScript" in reason and "javascript" in reason
    assert "unknown code language 'cobol'" in unsupported_language_reason("cobol")


@pytest.mark.parametrize("language", ["typescript", "type_script"])
def test_a_typescript_step_fails_clearly_at_run_time_too(language) -> None:
    err = code_fails({"language": language, "source": "const x: number = 1; x"})

    assert err.code == "code.typescript_unsupported"


# --------------------------------------------------------------------------- wasm


def test_a_module_path_is_resolved_against_the_workflow_folder(tmp_path) -> None:
    wm.write_wasm(tmp_path / "modules" / "echo.wasm", wm.ECHO_JSON_WAT)

    out = run_code({"language": "wasm", "module": "modules/echo.wasm", "input": {"n": 1}}, base_dir=tmp_path)

    assert out["type"] == "code" and out["language"] == "wasm"
    assert out["output"] == {"skill": "echo", "input": {"n": 1}}
    assert out["fuel_consumed"] > 0


def test_a_module_can_be_inlined_as_base64() -> None:
    encoded = base64.b64encode(wm.wasm_bytes(wm.ECHO_JSON_WAT)).decode()

    out = run_code({"language": "wasm", "module": encoded, "input": [1, 2]}, base_dir=None)

    assert out["output"]["input"] == [1, 2]


def test_a_module_can_be_written_as_wat_source() -> None:
    out = run_code({"language": "wasm", "source": wm.HELLO_TEXT_WAT}, base_dir=None)

    assert out["output"] == "hello, world"


def test_code_steps_get_the_untrusted_tier(tmp_path) -> None:
    # 64 MiB of minimum memory: fine for a verified skill, too much for the untrusted tier.
    wm.write_wasm(tmp_path / "big.wasm", wm.HUGE_MIN_MEMORY_WAT)

    assert code_fails({"language": "wasm", "module": "big.wasm"}, tmp_path).code == "wasm.memory"


def test_a_path_leaving_the_workflow_folder_is_refused(tmp_path) -> None:
    wm.write_wasm(tmp_path / "outside.wasm", wm.HELLO_TEXT_WAT)
    (tmp_path / "wf").mkdir()

    err = code_fails({"language": "wasm", "module": "../outside.wasm"}, tmp_path / "wf")

    assert err.code == "code.invalid_config"


def test_a_module_that_is_neither_a_file_nor_base64_is_not_found(tmp_path) -> None:
    err = code_fails({"language": "wasm", "module": "missing.wasm"}, tmp_path)

    assert err.code == "code.module_not_found"
    assert "missing.wasm" in err.message


@pytest.mark.parametrize("config", [{"language": "wasm"},
                                    {"language": "wasm", "module": "a.wasm", "source": "(module)"}])
def test_a_wasm_step_needs_exactly_one_of_module_and_source(config) -> None:
    assert code_fails(config).code == "code.invalid_config"


def test_bad_wat_is_an_invalid_module() -> None:
    assert code_fails({"language": "wasm", "source": "(module (func $f (i32.add)"}).code == "wasm.invalid_module"


# --------------------------------------------------------------------------- javascript


@pytest.fixture
def mini_racer():
    """JavaScript tests need the engine (the mini-racer package); without it they are skipped."""
    return pytest.importorskip("py_mini_racer")


def run_js(source: str, input_value=None, **limits):
    return run_code({"language": "javascript", "source": source, "input": input_value}, base_dir=None,
                    limits=JsLimits(**limits) if limits else None)


def js_fails(source: str, input_value=None, **limits) -> StepFailed:
    with pytest.raises(StepFailed) as info:
        run_js(source, input_value, **limits)
    return info.value


@pytest.mark.usefixtures("mini_racer")
class TestJavaScript:
    def test_the_last_expression_is_the_output_and_input_is_a_global(self) -> None:
        out = run_js("input.items.map(i => i.price * i.qty).reduce((a, b) => a + b, 0)",
                     {"items": [{"price": 2, "qty": 3}, {"price": 10, "qty": 1}]})

        assert out["type"] == "code" and out["language"] == "javascript"
        assert out["output"] == 16
        assert out["duration_ms"] >= 0

    def test_a_result_variable_wins_over_the_last_expression(self) -> None:
        assert run_js("const result = {upper: input.toUpperCase()};\n'ignored'", "ada")["output"] == {"upper": "ADA"}

    def test_a_result_function_is_called_with_the_input(self) -> None:
        assert run_js("function result(x) { return x.length }", [1, 2, 3])["output"] == 3

    def test_module_exports_works_commonjs_style(self) -> None:
        assert run_js("module.exports = (x) => x * 2", 21)["output"] == 42
        assert run_js("exports.default = async (x) => ({twice: x * 2})", 4)["output"] == {"twice": 8}

    def test_promises_are_awaited(self) -> None:
        assert run_js("(async () => { await null; return [input, 'done'] })()", 1)["output"] == [1, "done"]

    def test_undefined_becomes_null(self) -> None:
        assert run_js("let x = 1;")["output"] is None

    def test_a_thrown_error_fails_the_step_with_its_message(self) -> None:
        err = js_fails("if (!input.id) throw new Error('id is required'); input.id", {})

        assert err.code == "code.error"
        assert "id is required" in err.message

    def test_a_rejected_promise_fails_the_step(self) -> None:
        err = js_fails("(async () => { await null; throw new TypeError('late failure') })()")

        assert err.code == "code.error" and "late failure" in err.message

    def test_a_syntax_error_says_where_and_hints_about_es_modules(self) -> None:
        err = js_fails("export default function (x) { return x }")

        assert err.code == "code.syntax_error"
        assert "Unexpected token 'export'" in err.message and "module.exports" in err.message

    def test_an_endless_loop_is_stopped_by_the_time_limit(self) -> None:
        started = time.monotonic()

        err = js_fails("while (true) {}", timeout_secs=0.5)

        assert err.code == "code.timeout"
        assert time.monotonic() - started < 2.5

    @pytest.mark.parametrize("source", [
        "Promise.resolve().then(() => { while (true) {} }); 1",
        "module.exports = async () => { await null; while (true) {} }",
        "new Promise(() => {})",
    ])
    def test_code_running_or_waiting_in_promise_reactions_is_held_to_the_limit_too(self, source) -> None:
        started = time.monotonic()

        err = js_fails(source, timeout_secs=0.5)

        assert err.code == "code.timeout"
        assert time.monotonic() - started < 2.5

    def test_memory_is_limited(self) -> None:
        err = js_fails("const a = []; while (true) a.push('x'.repeat(1000) + a.length)")

        assert err.code == "code.memory"

    def test_the_sandbox_has_no_host_access_nor_off_heap_buffers(self) -> None:
        names = ["require", "process", "fetch", "XMLHttpRequest", "ArrayBuffer", "SharedArrayBuffer",
                 "Uint8Array", "Float64Array", "DataView", "Atomics", "WebAssembly", "setTimeout",
                 "FinalizationRegistry", "WeakRef"]
        source = "({" + ", ".join(f"{n}: typeof {n}" for n in names) + "})"

        assert run_js(source)["output"] == dict.fromkeys(names, "undefined")

    def test_output_above_the_cap_is_refused(self) -> None:
        err = js_fails("'x'.repeat(2000)", max_output_bytes=1000)

        assert err.code == "code.output_too_large"

    def test_output_that_is_not_json_fails_clearly(self) -> None:
        err = js_fails("const o = {}; o.self = o; o")

        assert err.code == "code.error" and "circular" in err.message

    def test_each_run_starts_from_a_clean_isolate(self) -> None:
        run_js("globalThis.leftover = 1; var alsoLeftover = 2; 0")

        assert run_js("[typeof leftover, typeof alsoLeftover]")["output"] == ["undefined", "undefined"]
