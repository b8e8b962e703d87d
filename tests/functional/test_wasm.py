"""The WebAssembly sandbox, proved with real modules (WAT compiled by wasmtime) from the guest's side."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from boternity.errors import StepFailed
from boternity.executors.wasm import (
    LIMIT_CEILING,
    MIB,
    STDERR_TAIL_BYTES,
    TIER_LIMITS,
    LimitError,
    WasmLimits,
    binary_kind,
    module_cache,
    parse_output,
    run_wasm,
    tier_limits,
)
from tests.support import wasm_modules as wm

UNTRUSTED = TIER_LIMITS["untrusted"]


def fails(wat_or_bytes: str | bytes, input_text: str = "", limits: WasmLimits = UNTRUSTED) -> StepFailed:
    module = wm.wasm_bytes(wat_or_bytes) if isinstance(wat_or_bytes, str) else wat_or_bytes
    with pytest.raises(StepFailed) as info:
        run_wasm(module, input_text, limits)
    return info.value


# --------------------------------------------------------------------------- normal runs


def test_a_command_reads_its_input_on_stdin_and_answers_on_stdout() -> None:
    result = run_wasm(wm.wasm_bytes(wm.ECHO_JSON_WAT), '{"city": "Oslo"}', UNTRUSTED)

    assert parse_output(result.stdout) == {"skill": "echo", "input": {"city": "Oslo"}}
    assert result.stderr_tail == "echo: done\n"
    assert result.fuel_consumed > 0
    assert result.duration_ms >= 0


def test_non_ascii_input_and_output_survive_the_round_trip() -> None:
    result = run_wasm(wm.wasm_bytes(wm.ECHO_JSON_WAT), '"Zürich – 東京"', UNTRUSTED)

    assert parse_output(result.stdout)["input"] == "Zürich – 東京"


def test_text_output_is_kept_as_text() -> None:
    result = run_wasm(wm.wasm_bytes(wm.HELLO_TEXT_WAT), "", UNTRUSTED)

    assert result.stdout == "hello, world"
    assert parse_output("hello, world\n") == "hello, world"


def test_exit_status_zero_is_success() -> None:
    assert run_wasm(wm.wasm_bytes(wm.EXIT_0_WAT), "", UNTRUSTED).stdout == '{"ok":true}'


def test_only_the_last_2_kb_of_stderr_are_kept() -> None:
    result = run_wasm(wm.wasm_bytes(wm.STDERR_CHATTER_WAT), "", UNTRUSTED)

    assert len(result.stderr_tail) == STDERR_TAIL_BYTES
    assert result.stderr_tail.endswith("....the end\n")


def test_a_module_can_be_given_as_a_path(tmp_path) -> None:
    path = wm.write_wasm(tmp_path / "echo.wasm", wm.ECHO_JSON_WAT)

    assert parse_output(run_wasm(path, "1", UNTRUSTED).stdout)["input"] == 1
    assert parse_output(run_wasm(str(path), "2", UNTRUSTED).stdout)["input"] == 2


# --------------------------------------------------------------------------- failures


def test_a_non_zero_exit_fails_with_the_status_and_the_stderr_tail() -> None:
    err = fails(wm.EXIT_3_WAT)

    assert err.code == "wasm.exit"
    assert "status 3" in err.message
    assert "bad input: expected an object" in err.message
    assert err.details["exit_code"] == 3


def test_an_endless_loop_is_stopped_by_fuel() -> None:
    err = fails(wm.SPIN_WAT, limits=UNTRUSTED.override(fuel=5_000_000))

    assert err.code == "wasm.fuel"
    assert err.details["fuel_consumed"] == 5_000_000


def test_an_endless_loop_with_ample_fuel_is_stopped_by_the_wall_clock() -> None:
    limits = UNTRUSTED.override(fuel=10**15, timeout_secs=1)
    started = time.monotonic()

    err = fails(wm.SPIN_WAT, limits=limits)

    elapsed = time.monotonic() - started
    assert err.code == "wasm.timeout"
    assert 0.9 <= elapsed < limits.timeout_secs + 2


def test_growing_memory_until_it_is_refused_is_reported_as_the_memory_limit() -> None:
    err = fails(wm.MEMORY_BOMB_WAT)

    assert err.code == "wasm.memory"
    assert str(16 * MIB) in err.message


def test_a_module_whose_minimum_memory_is_above_the_limit_does_not_start() -> None:
    err = fails(wm.HUGE_MIN_MEMORY_WAT)

    assert err.code == "wasm.memory"
    assert "exceeds memory limits" in err.message
    # The same module is fine where the limit allows it.
    run_wasm(wm.wasm_bytes(wm.HUGE_MIN_MEMORY_WAT), "", TIER_LIMITS["verified"].override(memory_bytes=65 * MIB))


def test_an_output_flood_is_cut_at_the_cap_without_buffering_it() -> None:
    limits = UNTRUSTED.override(timeout_secs=1)  # this writer ignores errors: only time stops it
    tracemalloc.start()
    try:
        err = fails(wm.FLOOD_IGNORING_ERRORS_WAT, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert err.code == "wasm.output_too_large"
    assert err.details["limit"] == limits.max_output_bytes
    # Gigabytes were written in that second; the host kept at most the 1 MiB cap (plus one chunk).
    assert peak < 4 * MIB


def test_a_writer_that_checks_errors_stops_as_soon_as_it_passes_the_cap() -> None:
    started = time.monotonic()

    err = fails(wm.FLOOD_WAT, limits=UNTRUSTED.override(max_output_bytes=100_000))

    assert err.code == "wasm.output_too_large"
    assert time.monotonic() - started < 1


def test_any_other_trap_is_reported_with_its_message() -> None:
    err = fails(wm.UNREACHABLE_WAT)

    assert err.code == "wasm.trap"
    assert "unreachable" in err.message


@pytest.mark.parametrize("data", [b"", b"hello world", wm.INVALID_MODULE_BYTES, b"\0asm\x01\x00\x07\x00"])
def test_bytes_that_are_not_a_valid_module_are_refused(data: bytes) -> None:
    assert fails(data).code == "wasm.invalid_module"


def test_a_library_module_without_start_is_refused_with_a_hint() -> None:
    err = fails(wm.REACTOR_WAT)

    assert err.code == "wasm.invalid_module"
    assert "_start" in err.message and "WASI command" in err.message


def test_a_module_importing_anything_but_wasi_is_refused() -> None:
    err = fails(wm.FOREIGN_IMPORT_WAT)

    assert err.code == "wasm.invalid_module"
    assert "env::fetch_url" in err.message


def test_a_missing_module_file_is_reported(tmp_path) -> None:
    err = fails_path(tmp_path / "nope.wasm")

    assert err.code == "wasm.invalid_module"
    assert "nope.wasm" in err.message


def fails_path(path) -> StepFailed:
    with pytest.raises(StepFailed) as info:
        run_wasm(path, "", UNTRUSTED)
    return info.value


# --------------------------------------------------------------------------- the sandbox from inside


def test_the_guest_sees_one_argument_no_environment_and_no_files(monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")

    seen = parse_output(run_wasm(wm.wasm_bytes(wm.SANDBOX_PROBE_WAT), "", UNTRUSTED).stdout)

    assert seen["argc"] == "01"  # argv[0] only
    assert seen["envc"] == "00"  # not even the host's environment
    assert seen["prestat3"] == "08"  # EBADF: no preopened directory at fd 3
    assert seen["open3"] == "08"  # so path_open fails inside the module


def test_sleeping_is_refused_rather_than_holding_the_lambda() -> None:
    started = time.monotonic()

    err = fails(wm.SLEEP_WAT)

    # The module exits with the errno poll_oneoff gave it: ENOTSUP (58), at once.
    assert err.code == "wasm.exit"
    assert err.details["exit_code"] == 58
    assert time.monotonic() - started < 1


# --------------------------------------------------------------------------- components


def test_a_component_exporting_execute_gets_the_input_as_its_argument() -> None:
    result = run_wasm(wm.wasm_bytes(wm.COMPONENT_ECHO_WAT), '{"q": 1}', UNTRUSTED)

    assert result.stdout == '{"q": 1}'


def test_a_component_importing_the_reference_host_interface_still_runs() -> None:
    assert run_wasm(wm.wasm_bytes(wm.COMPONENT_WITH_HOST_IMPORT_WAT), "[]", UNTRUSTED).stdout == "[]"


def test_a_component_returning_err_fails_the_step_with_its_message() -> None:
    err = fails(wm.COMPONENT_ERROR_WAT, "{}")

    assert err.code == "wasm.skill_error"
    assert "no such city" in err.message


def test_a_component_is_held_to_the_same_limits() -> None:
    assert fails(wm.COMPONENT_SPIN_WAT, limits=UNTRUSTED.override(fuel=1_000_000)).code == "wasm.fuel"
    assert fails(wm.COMPONENT_SPIN_WAT, limits=UNTRUSTED.override(fuel=10**15, timeout_secs=0.5)).code == \
        "wasm.timeout"


def test_a_component_without_execute_is_refused() -> None:
    err = fails(wm.COMPONENT_WITHOUT_EXECUTE_WAT)

    assert err.code == "wasm.invalid_module"
    assert "execute" in err.message


def test_modules_and_components_are_told_apart_by_their_header() -> None:
    assert binary_kind(wm.wasm_bytes(wm.HELLO_TEXT_WAT)) == "module"
    assert binary_kind(wm.wasm_bytes(wm.COMPONENT_ECHO_WAT)) == "component"


# --------------------------------------------------------------------------- cache and limits


def test_a_module_is_compiled_once_per_process() -> None:
    module_cache.clear()
    echo = wm.wasm_bytes(wm.ECHO_JSON_WAT)

    run_wasm(echo, "1", UNTRUSTED)
    run_wasm(bytes(echo), "2", UNTRUSTED)  # equal bytes, another object: still a hit
    run_wasm(wm.wasm_bytes(wm.HELLO_TEXT_WAT), "", UNTRUSTED)

    assert (module_cache.misses, module_cache.hits, len(module_cache)) == (2, 1, 2)


def test_the_tiers_follow_the_reference_memory_and_time_with_realistic_fuel() -> None:
    untrusted, verified = TIER_LIMITS["untrusted"], TIER_LIMITS["verified"]

    assert (untrusted.memory_bytes, untrusted.timeout_secs) == (16 * MIB, 10)
    assert (verified.memory_bytes, verified.timeout_secs) == (64 * MIB, 30)
    assert untrusted.fuel < verified.fuel
    assert untrusted.fuel >= 1_000_000_000  # the reference's 500 000 does not start a C program
    assert untrusted.max_output_bytes == verified.max_output_bytes == 1 * MIB


def test_every_limit_can_be_overridden_up_to_the_ceiling() -> None:
    limits = tier_limits("untrusted", {"memory_bytes": 32 * MIB, "timeout_secs": 2.5, "fuel": 10})

    assert (limits.memory_bytes, limits.timeout_secs, limits.fuel) == (32 * MIB, 2.5, 10)
    assert limits.max_output_bytes == UNTRUSTED.max_output_bytes
    with pytest.raises(LimitError) as info:
        tier_limits("verified", {"memory_bytes": LIMIT_CEILING.memory_bytes + 1})
    assert info.value.field == "memory_bytes"


@pytest.mark.parametrize("changes", [{"fuel": 0}, {"timeout_secs": -1}, {"memory_bytes": 1.5},
                                     {"max_output_bytes": "big"}, {"timeout_secs": float("inf")}])
def test_limits_must_be_positive_numbers(changes) -> None:
    with pytest.raises(LimitError):
        UNTRUSTED.override(**changes)


def test_unknown_tiers_and_limit_names_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown trust tier"):
        tier_limits("local")
    with pytest.raises(LimitError):
        tier_limits("untrusted", {"cpu": 1})
