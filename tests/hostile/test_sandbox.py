"""Hostile ``code`` steps: WebAssembly and JavaScript that try to run forever, eat memory, escape or crash.

Every case goes through ``run_code`` (what the code function runs) with the untrusted tier's limits,
or a shorter time limit where waiting out 10 s would prove nothing more. Each must end with the
documented error code and message, within its time limit plus a margin.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from boternity.errors import StepFailed
from boternity.executors import wasm as wasm_module
from boternity.executors.code import JsLimits, run_code
from boternity.executors.wasm import MIB, TIER_LIMITS
from tests.support import wasm_modules as wm

UNTRUSTED = TIER_LIMITS["untrusted"]
MARGIN = 3.0  # seconds past a time limit that a loaded machine may need to report it

pytest.importorskip("py_mini_racer")


def _fails(config: dict, limits: object = None, base_dir: Path | None = None) -> tuple[StepFailed, float]:
    started = time.monotonic()
    with pytest.raises(StepFailed) as caught:
        run_code(config, base_dir=base_dir, limits=limits)
    return caught.value, time.monotonic() - started


def _wasi_module(body: str, imports: str = "", memory_pages: int = 1, data: str = "") -> str:
    return (f'(module {imports} (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32))) '
            f'(memory (export "memory") {memory_pages}) {data} (func (export "_start") {body}))')


def _printer(payload: str) -> str:
    """A module that writes ``payload`` (ASCII) to stdout."""
    escaped = payload.replace("\\", "\\\\").replace('"', '\\"')
    return (
        '(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32))) '
        f'(memory (export "memory") {len(payload) // 65536 + 2}) (data (i32.const 64) "{escaped}") '
        '(func (export "_start") (i32.store (i32.const 0) (i32.const 64)) '
        f'(i32.store (i32.const 4) (i32.const {len(payload)})) '
        "(drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"
    )


# --- WebAssembly -------------------------------------------------------------------------------------

# fd 3 is where a preopened socket (or directory) would be; there is none, so EBADF (8).
_NETWORK_ACCEPT = _wasi_module(
    "(call $exit (call $accept (i32.const 3) (i32.const 0) (i32.const 64)))",
    imports='(import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))',
)
_RECURSION = '(module (memory (export "memory") 1) (func $f (call $f)) (func (export "_start") (call $f)))'
_HUGE_TABLE = '(module (memory (export "memory") 1) (table 100000000 funcref) (func (export "_start")))'
_MANY_MEMORIES = ("(module " + "".join(f"(memory $m{i} 1)" for i in range(20))
                  + '(export "memory" (memory 0)) (func (export "_start")))')
_BAD_EXIT = _wasi_module("(call $exit (i32.const -1))")

WASM_FAILURES = [
    pytest.param(wm.SPIN_WAT, UNTRUSTED, "wasm.fuel",
                 f"WebAssembly program ran out of fuel ({UNTRUSTED.fuel} units)", id="endless-loop-fuel"),
    pytest.param(wm.SPIN_WAT, UNTRUSTED.override(fuel=10**15, timeout_secs=1), "wasm.timeout",
                 "WebAssembly program exceeded the 1 s time limit", id="endless-loop-wall-clock"),
    pytest.param(wm.MEMORY_BOMB_WAT, UNTRUSTED, "wasm.memory",
                 f"WebAssembly program hit the memory limit of {16 * MIB} bytes", id="memory-grow-until-refused"),
    pytest.param(wm.HUGE_MIN_MEMORY_WAT, UNTRUSTED, "wasm.memory",
                 f"WebAssembly module needs more memory than the {16 * MIB} bytes allowed", id="huge-initial-memory"),
    pytest.param(wm.SLEEP_WAT, UNTRUSTED, "wasm.exit", "WebAssembly program exited with status 58", id="sleep-an-hour"),
    pytest.param(_NETWORK_ACCEPT, UNTRUSTED, "wasm.exit", "WebAssembly program exited with status 8", id="accept-a-socket"),
    pytest.param(wm.FLOOD_IGNORING_ERRORS_WAT, UNTRUSTED.override(timeout_secs=1), "wasm.output_too_large",
                 f"WebAssembly output exceeded {UNTRUSTED.max_output_bytes} bytes", id="endless-output"),
    pytest.param(wm.FOREIGN_IMPORT_WAT, UNTRUSTED, "wasm.invalid_module", "env::fetch_url", id="import-a-host-fetch"),
    pytest.param(_RECURSION, UNTRUSTED, "wasm.trap", "WebAssembly trap: call stack exhausted", id="endless-recursion"),
    pytest.param(_HUGE_TABLE, UNTRUSTED, "wasm.invalid_module",
                 "table minimum size of 100000000 elements exceeds table limits", id="huge-table"),
    pytest.param(_MANY_MEMORIES, UNTRUSTED, "wasm.invalid_module", "memory count too high at 20", id="many-memories"),
    pytest.param(_BAD_EXIT, UNTRUSTED, "wasm.trap", "exit with invalid exit status", id="exit-status-out-of-range"),
]


@pytest.mark.parametrize(("source", "limits", "code", "message"), WASM_FAILURES)
def test_a_hostile_module_ends_with_the_documented_error(source: str, limits, code: str, message: str) -> None:
    error, elapsed = _fails({"language": "wasm", "source": source, "input": None}, limits)

    assert (error.code, message in error.message) == (code, True), error.message
    assert elapsed < limits.timeout_secs + MARGIN


def test_a_module_sees_no_environment_files_or_extra_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-reach-the-guest")

    out = run_code({"language": "wasm", "source": wm.SANDBOX_PROBE_WAT, "input": None}, base_dir=None)

    assert out["output"] == {"argc": "01", "envc": "00", "prestat3": "08", "open3": "08"}


@pytest.mark.parametrize(
    ("payload", "kept_as"),
    [
        pytest.param("[" * 5000 + "]" * 5000, "[" * 5000 + "]" * 5000, id="json-nested-5000-deep"),
        pytest.param("[NaN]", "[NaN]", id="json-with-nan"),
        pytest.param("9" * 5000, "9" * 5000, id="integer-of-5000-digits"),
    ],
)
def test_output_that_would_crash_a_json_parser_is_kept_as_text(payload: str, kept_as: str) -> None:
    out = run_code({"language": "wasm", "source": _printer(payload), "input": None}, base_dir=None)

    assert out["output"] == kept_as


def test_a_module_path_cannot_leave_the_workflow_folder(tmp_path: Path) -> None:
    (tmp_path / "outside.wasm").write_bytes(wm.wasm_bytes(wm.SPIN_WAT))
    folder = tmp_path / "workflow"
    folder.mkdir()

    error, _ = _fails({"language": "wasm", "module": "../outside.wasm"}, base_dir=folder)

    assert error.code == "code.invalid_config"
    assert error.message == "module path '../outside.wasm' leads outside the workflow folder"


def test_an_absolute_module_path_is_not_read(tmp_path: Path) -> None:
    error, _ = _fails({"language": "wasm", "module": "/etc/passwd"}, base_dir=tmp_path)

    assert error.code == "code.module_not_found"
    assert error.message == (f"module not found: no file '/etc/passwd' under {tmp_path}, and it is not base64 of "
                             "a WebAssembly binary")


def test_a_module_over_the_size_cap_is_refused_before_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = wm.wasm_bytes(wm.SPIN_WAT)
    monkeypatch.setattr(wasm_module, "MAX_MODULE_BYTES", len(binary) - 1)

    with pytest.raises(StepFailed) as caught:
        wasm_module.run_wasm(binary, "", UNTRUSTED)

    assert caught.value.code == "wasm.invalid_module"
    assert f"{len(binary)} bytes" in caught.value.message


def _nested_blocks_module(depth: int) -> bytes:
    """A valid module whose ``_start`` is ``depth`` nested empty blocks: 3 bytes a level, costly to compile."""

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def section(number: int, body: bytes) -> bytes:
        return bytes([number]) + leb(len(body)) + body

    code = b"\x00" + b"\x02\x40" * depth + b"\x0b" * depth + b"\x0b"
    return (b"\0asm\x01\0\0\0" + section(1, b"\x01\x60\x00\x00") + section(3, b"\x01\x00")
            + section(5, b"\x01\x00\x01") + section(7, b"\x02\x06_start\x00\x00\x06memory\x02\x00")
            + section(10, b"\x01" + leb(len(code)) + code))


def _compile_fresh(binary: bytes) -> tuple[StepFailed, float]:
    wasm_module.module_cache.clear()
    started = time.monotonic()
    with pytest.raises(StepFailed) as caught:
        wasm_module.run_wasm(binary, "", UNTRUSTED)
    return caught.value, time.monotonic() - started


def test_a_compile_bomb_hits_the_compilers_memory_limit_not_the_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    # A million nested blocks (3 MB) took 15 s and 900 MB of the function's own memory to compile.
    monkeypatch.setenv("BOTERNITY_WASM_COMPILE_MEMORY_MB", "300")

    error, elapsed = _compile_fresh(_nested_blocks_module(1_000_000))

    assert error.code == "wasm.invalid_module"
    assert error.message == ("compiling the module needed more than 300 MiB of memory "
                             "(BOTERNITY_WASM_COMPILE_MEMORY_MB)")
    assert elapsed < 30  # the process's own peak is measured from outside, below


def test_a_slow_compile_hits_the_compilers_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTERNITY_WASM_COMPILE_TIMEOUT_SECS", "0.5")
    # This module also needs much memory: on a quiet machine it reached the 768 MiB limit within
    # the 0.5 s, so the time limit is the only one in reach here.
    monkeypatch.setenv("BOTERNITY_WASM_COMPILE_MEMORY_MB", "8192")

    error, elapsed = _compile_fresh(_nested_blocks_module(300_000))

    assert error.code == "wasm.invalid_module"
    assert error.message == "compiling the module took more than 0.5 s (BOTERNITY_WASM_COMPILE_TIMEOUT_SECS)"
    assert elapsed < 0.5 + MARGIN


@pytest.mark.parametrize("value", ["0", "-1", "lots", "inf"])
def test_a_bad_compile_limit_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("BOTERNITY_WASM_COMPILE_MEMORY_MB", value)

    error, _ = _compile_fresh(wm.wasm_bytes(wm.SPIN_WAT))

    assert error.code == "wasm.invalid_module"
    assert error.message == f"environment variable BOTERNITY_WASM_COMPILE_MEMORY_MB must be a positive number, got {value!r}"


# --- JavaScript ----------------------------------------------------------------------------------------

JS_LIMIT = 1.5


def _js(source: str, **limits: float) -> dict:
    return {"language": "javascript", "source": source, "input": {"n": 1}}


JS_FAILURES = [
    # Running forever, in every way a script can.
    pytest.param("while (true) {}", "code.timeout", f"JavaScript exceeded the {JS_LIMIT:g} s time limit",
                 id="endless-loop"),
    pytest.param("const end = Date.now() + 1e9; while (Date.now() < end) {}", "code.timeout",
                 f"JavaScript exceeded the {JS_LIMIT:g} s time limit", id="busy-wait-on-the-clock"),
    pytest.param("/(a+)+$/.test('a'.repeat(40) + 'b')", "code.timeout",
                 f"JavaScript exceeded the {JS_LIMIT:g} s time limit", id="catastrophic-regex"),
    pytest.param("while (true) console.log('x'.repeat(1000))", "code.timeout",
                 f"JavaScript exceeded the {JS_LIMIT:g} s time limit", id="endless-console-output"),
    pytest.param("new Promise(() => {})", "code.timeout",
                 f"JavaScript exceeded the {JS_LIMIT:g} s time limit (its result promise had not settled)",
                 id="promise-that-never-settles"),
    pytest.param("({toJSON() { while (true) {} }})", "code.timeout",
                 f"JavaScript exceeded the {JS_LIMIT:g} s time limit", id="endless-toJSON"),
    pytest.param("new Proxy({}, {ownKeys() { while (true) {} }})", "code.timeout",
                 f"JavaScript exceeded the {JS_LIMIT:g} s time limit", id="endless-proxy-trap"),
    # Memory.
    pytest.param("const a = []; while (true) a.push('x'.repeat(1000) + a.length)", "code.memory",
                 f"JavaScript exceeded the memory limit of {16 * MIB} bytes", id="heap-exhaustion"),
    pytest.param("'x'.repeat(2 ** 29).length", "code.error", "RangeError: Invalid string length",
                 id="half-gigabyte-string"),
    pytest.param("let s = 'x'; for (let i = 0; i < 40; i++) s = s + s; s.length", "code.error",
                 "RangeError: Invalid string length", id="string-doubling"),
    pytest.param("function f() { return f() + 1 } f()", "code.error", "RangeError: Maximum call stack size exceeded",
                 id="endless-recursion"),
    # Reaching for the host.
    pytest.param("require('fs').readFileSync('/etc/passwd', 'utf8')", "code.error",
                 "ReferenceError: require is not defined", id="require-fs"),
    pytest.param("process.env.AWS_SECRET_ACCESS_KEY", "code.error", "ReferenceError: process is not defined",
                 id="process-env"),
    pytest.param("fetch('http://127.0.0.1:9/')", "code.error", "ReferenceError: fetch is not defined", id="fetch"),
    pytest.param("new XMLHttpRequest()", "code.error", "ReferenceError: XMLHttpRequest is not defined",
                 id="xml-http-request"),
    pytest.param("(async () => (await import('fs')).readFileSync)()", "code.error", "Error: Not supported",
                 id="dynamic-import"),
    pytest.param("import fs from 'fs'; fs", "code.syntax_error", "ES module syntax", id="static-import"),
    pytest.param("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1e9)", "code.error",
                 "ReferenceError: Atomics is not defined", id="atomics-wait"),
    pytest.param("WebAssembly.compile", "code.error", "ReferenceError: WebAssembly is not defined",
                 id="webassembly"),
    pytest.param("setTimeout(() => {}, 1e9)", "code.error", "TypeError: setTimeout is not a function",
                 id="set-timeout"),
    # Values that cannot become a step output.
    pytest.param("1n", "code.error",
                 "JavaScript error: the script's value is a BigInt or another value with no Python equivalent, "
                 "which cannot leave JavaScript; the output must be JSON", id="bigint-completion"),
    pytest.param("'\\uD800'", "code.error",
                 "JavaScript error: the script's value is a string with an unpaired surrogate, which cannot leave "
                 "JavaScript; the output must be JSON", id="unpaired-surrogate-completion"),
    pytest.param("const result = ['a\\uD800']", "code.invalid_output",
                 "JavaScript output contains a string with an unpaired surrogate, which is not valid Unicode",
                 id="unpaired-surrogate-in-result"),
    pytest.param("let o = 0; for (let i = 0; i < 5000; i++) o = [o]; o", "code.output_too_deep",
                 "JavaScript output is nested too deeply", id="output-nested-5000-deep"),
    pytest.param("({get a() { throw new Error('boom') }})", "code.error", "Error: boom", id="throwing-getter"),
    pytest.param("'x'.repeat(2 * 1024 * 1024)", "code.output_too_large",
                 "JavaScript output is 2097154 bytes, more than the 1048576 allowed", id="output-too-large"),
]


@pytest.mark.parametrize(("source", "code", "message"), JS_FAILURES)
def test_a_hostile_script_ends_with_the_documented_error(source: str, code: str, message: str) -> None:
    error, elapsed = _fails(_js(source), JsLimits(timeout_secs=JS_LIMIT))

    assert (error.code, message in error.message) == (code, True), error.message
    assert elapsed < JS_LIMIT + MARGIN


def test_the_function_constructor_does_not_reach_the_host() -> None:
    source = "[this.constructor.constructor('return typeof process')(), Function('return typeof require')()]"

    assert run_code(_js(source), base_dir=None)["output"] == ["undefined", "undefined"]


def test_a_script_sees_no_host_globals() -> None:
    out = run_code(_js("Object.getOwnPropertyNames(globalThis).filter(n => /^(process|require|fetch|Deno|Bun|"
                       "os|fs|env|XMLHttpRequest|WebSocket|importScripts)$/i.test(n))"), base_dir=None)

    assert out["output"] == []


# --- memory, measured from outside -------------------------------------------------------------------

_MEASURE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {core!r})
    from boternity.errors import StepFailed
    from boternity.executors.code import run_code
    from tests.support import wasm_modules as wm
    config = json.loads(sys.stdin.read())
    if config.pop("wat", None):
        config["source"] = getattr(wm, config["source"])
    try:
        run_code(config, base_dir=None)
        code = None
    except StepFailed as exc:
        code = exc.code
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so it would report the test runner's peak.
    status = open("/proc/self/status").read()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({{"code": code, "peak_mib": peak_kib // 1024}}))
""")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("config", "code"),
    [
        pytest.param({"language": "javascript", "source": "const a = []; while (true) a.push('x'.repeat(1000))"},
                     "code.memory", id="javascript-heap-exhaustion"),
        pytest.param({"language": "wasm", "source": "MEMORY_BOMB_WAT", "wat": True}, "wasm.memory",
                     id="wasm-memory-grow"),
        pytest.param({"language": "wasm", "source": "FLOOD_IGNORING_ERRORS_WAT", "wat": True},
                     "wasm.output_too_large", id="wasm-output-flood"),
        # Before compiling moved to a child process, this one alone took the process to 900 MB.
        pytest.param({"language": "wasm", "module": base64.b64encode(_nested_blocks_module(1_000_000)).decode()},
                     "wasm.invalid_module", id="wasm-compile-bomb"),
    ],
)
def test_peak_memory_of_the_whole_process_stays_bounded(config: dict, code: str) -> None:
    script = _MEASURE.format(root=str(ROOT), core=str(ROOT / "layers" / "core"))
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(config), capture_output=True, text=True,
                          timeout=120, env={**os.environ, "BOTERNITY_WASM_COMPILE_MEMORY_MB": "300"})

    assert done.returncode == 0, done.stderr[-800:]
    result = json.loads(done.stdout)
    assert result["code"] == code
    # Interpreter, wasmtime and V8 take ~100 MiB before any guest runs; the guests' limits are 16 MiB
    # (memory) and 1 MiB (output), so 300 MiB leaves room for the runtimes but not for an unbounded guest.
    assert result["peak_mib"] < 300, result
