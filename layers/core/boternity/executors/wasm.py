"""Run untrusted WebAssembly inside a step Lambda, with hard limits on CPU, time, memory and output.

Two kinds of binaries are accepted (told apart by the version/layer bytes of the header):

- **WASI preview1 command modules** (the main format): a program with ``_start``, e.g. C built
  for ``wasm32-wasi`` or Rust for ``wasm32-wasip1``. The input is on **stdin**, the output is
  what it writes to **stdout**, stderr is captured (its last 2 KB are kept as ``stderr_tail``
  for the caller's logs). Exit status 0 (or returning from ``_start``) is success.
- **Component Model components** exporting the reference's skill interface
  ``execute: func(input: string) -> result<string, string>``. ``ok`` is the output, ``err``
  fails the step (``wasm.skill_error``). Components get **no** imports: every import they
  declare (WASI preview2, the reference's ``boternity:skill/host``) is defined as a function
  that traps when called. WASI p2's blocking calls (``wasi:io/poll``, sleeps) cannot be
  interrupted by the wall-clock deadline, so they are not offered at all.

The sandbox a guest sees: stdin, stdout and stderr; ``argv == [argv0]``; no environment
variables; no preopened directories (so no file system: ``path_open`` on any fd fails); no
sockets (preview1 has no way to create one). Clocks and ``random_get`` work. ``poll_oneoff``
(sleep, waiting on fds) always answers ``ENOTSUP``, because a host call cannot be interrupted by
the epoch deadline: a guest asking to sleep an hour would otherwise hold the Lambda for an hour.

Limits (:class:`WasmLimits`), all enforced by wasmtime or by this module, never by the guest:

=====================  ========================================================================
fuel                   instructions executed (wasmtime's fuel: about one unit per instruction).
                       Deterministic: the same input always stops at the same point.
timeout_secs           wall clock, by epoch interruption: one daemon thread bumps the engine's
                       epoch every 10 ms; the store's deadline is ``timeout / 10 ms`` ticks.
memory_bytes           the size any linear memory may reach. A module whose *minimum* is larger
                       fails to instantiate; past it ``memory.grow`` returns -1.
max_output_bytes       stdout. Collection stops at the cap and the guest's later writes fail
                       (EPIPE), so a flood costs CPU until fuel or time runs out, never host
                       memory nor disk (stdout and stderr are pipes, see :class:`_Pipe`).
=====================  ========================================================================

The tiers come from the reference (untrusted: 16 MiB / 10 s; verified: 64 MiB / 30 s) except
fuel, where the reference's 500 000 / 1 000 000 units stop real work early: measured here
(wasmtime 50), a C ``wc`` built with wasi-libc spends ~8 000 units on start-up and output but
~47 units per input byte, so 500 000 units end it at about 10 KB of input -- well inside a
step's 256 KB payload. Throughput is 1-4 * 10^9 units per second (tight loops to real code), so
the defaults give roughly 0.5-2 s (untrusted, 2 * 10^9) and 2.5-10 s (verified, 10^10) of pure
computation, below the wall-clock limits, which remain the backstop for slow hosts (a 128 MB
Lambda has a fraction of a vCPU) and for time spent in host calls.

Failures are ``StepFailed`` (retrying cannot help: the same module with the same input does the
same thing) with one of these codes:

==========================  ================================================================
``wasm.exit``               non-zero exit status (message has the status and stderr tail)
``wasm.fuel``               out of fuel
``wasm.timeout``            wall-clock deadline reached
``wasm.memory``             memory limit: instantiation refused, or a trap at the limit
``wasm.output_too_large``   stdout went past ``max_output_bytes``
``wasm.invalid_module``     not WebAssembly, does not compile, no ``_start``/``execute``, or
                            imports something other than WASI preview1
``wasm.trap``               any other trap (unreachable, out of bounds, stack overflow ...)
``wasm.skill_error``        a component's ``execute`` returned ``err(message)``
==========================  ================================================================

Compiled modules are cached per process (a warm Lambda compiles a skill once), keyed by the
SHA-256 of the bytes, in a small LRU (:data:`module_cache`). Compiling itself is not metered by
any of the limits above, so it happens in a child process with its own memory and time limits
(:mod:`boternity.executors.wasmcompile`); a module past them fails ``wasm.invalid_module``.
"""

from __future__ import annotations

import hashlib
import math
import os
import select
import shutil
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import wasmtime

from boternity.errors import LimitError, StepFailed
from boternity.executors import wasmcompile
from boternity.parsing import json_or

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LIMIT_CEILING",
    "STDERR_TAIL_BYTES",
    "TIER_LIMITS",
    "LimitError",
    "WasmLimits",
    "WasmResult",
    "binary_kind",
    "module_cache",
    "parse_output",
    "run_wasm",
    "tier_limits",
]

KIB = 1024
MIB = 1024 * KIB

STDERR_TAIL_BYTES = 2 * KIB
# Bigger binaries are refused before compiling: compilation itself is not metered by fuel or the
# deadline, and 64 MiB is far above any real skill (a whole CPython build is ~25 MiB).
MAX_MODULE_BYTES = 64 * MIB
EPOCH_TICK_SECS = 0.01
# Store limits besides memory. Tables hold function references (8 bytes each on the host): a
# large C++/Rust program has tens of thousands; a million caps host memory at 8 MiB per table.
_TABLE_ELEMENTS = 1_000_000
# Components instantiate several core instances (and each may have a memory); commands have one.
_MAX_INSTANCES = 32
_MAX_TABLES = 32
_MAX_MEMORIES = 8
_WASI_ENOTSUP = 58
_MODULE_CACHE_SIZE = 32


@dataclass(frozen=True)
class WasmLimits:
    """What one run may use. Every field is checked: positive, and a whole number where it must be."""

    fuel: int
    memory_bytes: int
    timeout_secs: float
    max_output_bytes: int = 1 * MIB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            whole = f.name != "timeout_secs"
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
                raise LimitError(f.name, f"must be a {'whole ' if whole else ''}number, got {value!r}")
            if not value > 0 or (not whole and not math.isfinite(value)):
                raise LimitError(f.name, f"must be positive, got {value!r}")

    def override(self, **changes: Any) -> WasmLimits:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


TIER_LIMITS: Mapping[str, WasmLimits] = MappingProxyType(
    {
        "untrusted": WasmLimits(
            fuel=2_000_000_000, memory_bytes=16 * MIB, timeout_secs=10, max_output_bytes=1 * MIB
        ),
        "verified": WasmLimits(
            fuel=10_000_000_000, memory_bytes=64 * MIB, timeout_secs=30, max_output_bytes=1 * MIB
        ),
    }
)

# Overrides (a skill's metadata.limits) may raise any limit, but never past four times the verified
# tier: a typo must not give a skill a 10 GB memory or an hour of CPU inside a step Lambda.
_VERIFIED = TIER_LIMITS["verified"]
LIMIT_CEILING = WasmLimits(
    fuel=4 * _VERIFIED.fuel,
    memory_bytes=4 * _VERIFIED.memory_bytes,
    timeout_secs=4 * _VERIFIED.timeout_secs,
    max_output_bytes=4 * _VERIFIED.max_output_bytes,
)


def tier_limits(tier: str, overrides: Mapping[str, Any] | None = None) -> WasmLimits:
    """The limits of ``tier`` with ``overrides`` (field name -> value) applied and checked.

    Raises :class:`LimitError` for an unknown field, a bad value or one above :data:`LIMIT_CEILING`,
    and ``ValueError`` for an unknown tier.
    """
    try:
        base = TIER_LIMITS[tier]
    except KeyError:
        raise ValueError(f"unknown trust tier {tier!r}; expected one of {', '.join(TIER_LIMITS)}") from None
    if not overrides:
        return base
    known = {f.name for f in fields(WasmLimits)}
    for name in overrides:
        if name not in known:
            raise LimitError(name, f"unknown limit; expected one of {', '.join(sorted(known))}")
    limits = base.override(**overrides)
    for name in overrides:
        if getattr(limits, name) > getattr(LIMIT_CEILING, name):
            raise LimitError(
                name, f"{getattr(limits, name)} is above the maximum {getattr(LIMIT_CEILING, name)}"
            )
    return limits


@dataclass(frozen=True)
class WasmResult:
    stdout: str
    stderr_tail: str
    fuel_consumed: int
    duration_ms: int


# --------------------------------------------------------------------------- engine, ticker, cache

_engine_lock = threading.Lock()
# The engine's settings, shared with the compiler process (see wasmcompile): its artifacts only load
# into an engine configured the same way.
_ENGINE_FLAGS = {"consume_fuel": True, "epoch_interruption": True}
_engine: wasmtime.Engine | None = None
_linker: wasmtime.Linker | None = None


def _get_engine() -> wasmtime.Engine:
    """The process-wide engine (one per container), created on first use with its epoch ticker."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                cfg = wasmtime.Config()
                for name, value in _ENGINE_FLAGS.items():
                    setattr(cfg, name, value)
                engine = wasmtime.Engine(cfg)
                threading.Thread(
                    target=_tick, args=(engine,), name="boternity-wasm-epoch", daemon=True
                ).start()
                _engine = engine
    return _engine


def _tick(engine: wasmtime.Engine) -> None:
    # ctypes releases the GIL while wasm runs, so this thread keeps ticking during a guest's loop.
    # Between invocations Lambda freezes the process: ticks stop, and no store is running anyway.
    while True:
        time.sleep(EPOCH_TICK_SECS)
        engine.increment_epoch()


def _no_poll(*_args: Any) -> int:
    return _WASI_ENOTSUP


def _get_linker() -> wasmtime.Linker:
    """WASI preview1, with ``poll_oneoff`` replaced (see the module docstring). Shared by all stores."""
    global _linker
    engine = _get_engine()
    if _linker is None:
        with _engine_lock:
            if _linker is None:
                linker = wasmtime.Linker(engine)
                linker.define_wasi()
                linker.allow_shadowing = True
                i32 = wasmtime.ValType.i32()
                linker.define_func(
                    "wasi_snapshot_preview1",
                    "poll_oneoff",
                    wasmtime.FuncType([i32, i32, i32, i32], [i32]),
                    _no_poll,
                )
                _linker = linker
    return _linker


class _ModuleCache:
    """Compiled modules and components by SHA-256 of their bytes; least recently used evicted."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Any | None:
        with self._lock:
            item = self._items.get(digest)
            if item is None:
                self.misses += 1
            else:
                self.hits += 1
                self._items.move_to_end(digest)
            return item

    def put(self, digest: str, item: Any) -> None:
        with self._lock:
            self._items[digest] = item
            self._items.move_to_end(digest)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __contains__(self, digest: object) -> bool:
        return digest in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


module_cache = _ModuleCache(_MODULE_CACHE_SIZE)


# --------------------------------------------------------------------------- output pipes


class _Pipe:
    """A FIFO the guest writes to (WASI opens it as a file) and a thread that reads it.

    Why a FIFO: wasmtime's alternative, ``stdout_custom``, calls back into Python from Rust
    threads, and wasmtime-wasi keeps those callbacks alive until process exit, where they race
    with interpreter shutdown (a Rust panic on stderr, sometimes an abort). A plain file would
    put a flood on the (small, shared) disk. A pipe holds 64 KiB in the kernel; the reader keeps
    what we want and nothing else:

    - ``cap`` mode (stdout): keeps up to ``cap`` bytes, then closes its end, so the guest's
      next writes fail (EPIPE; Python ignores SIGPIPE) instead of piling up anywhere.
    - ``tail`` mode (stderr): reads everything, keeps only the last ``tail`` bytes.
    """

    def __init__(self, path: str, *, cap: int | None = None, tail: int | None = None) -> None:
        os.mkfifo(path, 0o600)
        self.path = path
        self.cap = cap
        self.tail = tail
        self.data = bytearray()
        self.overflowed = False
        # Non-blocking open: a FIFO's read end opens at once this way, so the guest's write end
        # (opened by WasiConfig) finds a reader and does not block either.
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread: threading.Thread | None = None
        self._done = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start reading; call once the write end is open (before, the reader would see EOF)."""
        self._thread = threading.Thread(target=self._pump, name="boternity-wasm-pipe", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while True:
                # select() rather than a blocking read: once the run is over (finish() sets _done)
                # the reader stops when the pipe is empty, whether or not EOF has arrived yet.
                readable, _, _ = select.select([self._fd], [], [], 0.05)
                if not readable:
                    if self._done:
                        return
                    continue
                try:
                    chunk = os.read(self._fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    return  # EOF: the store, and with it the write end, is gone
                if self.cap is not None:
                    room = self.cap - len(self.data)
                    if len(chunk) > room:
                        self.data += chunk[:room]
                        self.overflowed = True
                        return  # closing our end makes the guest's next write fail
                    self.data += chunk
                else:
                    self.data += chunk
                    del self.data[: -self.tail or None]
        except OSError:
            return
        finally:
            self._close()

    def finish(self, timeout: float = 2.0) -> None:
        """The guest is done: collect what is still in the pipe, then stop the reader."""
        self._done = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._close()

    def _close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, -1
            if fd >= 0:
                os.close(fd)

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- loading


def binary_kind(data: bytes) -> str:
    """``"module"`` (core wasm) or ``"component"``, from the header; raises ``wasm.invalid_module``."""
    if len(data) < 8 or data[:4] != b"\0asm":
        raise _invalid("not a WebAssembly binary (no \\0asm header)")
    # The 4 bytes after the magic are a u16 version and a u16 layer: layer 0 is a core module
    # (version 1), layer 1 a component.
    layer = int.from_bytes(data[6:8], "little")
    if layer == 0:
        return "module"
    if layer == 1:
        return "component"
    raise _invalid(f"unknown WebAssembly binary layer {layer}")


def _read_module(module: bytes | bytearray | memoryview | str | os.PathLike[str]) -> bytes:
    if isinstance(module, (bytes, bytearray, memoryview)):
        data = bytes(module)
    else:
        path = Path(module)
        try:
            size = path.stat().st_size
            if size > MAX_MODULE_BYTES:
                raise _invalid(f"{path}: {size} bytes is more than the {MAX_MODULE_BYTES} allowed")
            data = path.read_bytes()
        except OSError as exc:
            raise _invalid(f"cannot read module file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_MODULE_BYTES:
        raise _invalid(f"module of {len(data)} bytes is more than the {MAX_MODULE_BYTES} allowed")
    return data


def _compile(data: bytes, kind: str) -> Any:
    digest = hashlib.sha256(data).hexdigest()
    cached = module_cache.get(digest)
    if cached is not None:
        return cached
    engine = _get_engine()
    try:
        # Compiling is not metered by fuel or the deadline, and its cost depends on the code's shape:
        # it happens in a child process with its own memory and time limits.
        artifact = wasmcompile.compile_serialized(data, kind, _ENGINE_FLAGS, wasmcompile.compile_limits())
    except wasmcompile.CompileRefused as exc:
        if exc.invalid:
            raise _invalid(f"the {kind} does not compile: {_first_line(exc.reason)}", detail=exc.reason) from None
        raise _invalid(exc.reason) from None
    except ValueError as exc:  # a compile limit in the environment is not a positive number
        raise _invalid(str(exc)) from None
    try:
        if kind == "module":
            compiled: Any = wasmtime.Module.deserialize(engine, artifact)
        else:
            from wasmtime import component  # only components pay for the component API

            compiled = _Component(component.Component.deserialize(engine, artifact))
    except wasmtime.WasmtimeError as exc:
        raise _invalid(f"the compiled {kind} does not load: {_first_line(str(exc))}", detail=str(exc)) from None
    module_cache.put(digest, compiled)
    return compiled


class _Component:
    """A compiled component with its linker (every import defined as a trap)."""

    def __init__(self, component: Any) -> None:
        from wasmtime import component as cm

        self.component = component
        self.linker = cm.Linker(_get_engine())
        self.linker.define_unknown_imports_as_traps(component)


# --------------------------------------------------------------------------- running


@dataclass
class _Outcome:
    """What happened inside the store; plain data only, so no wasmtime object outlives the run."""

    exit_code: int | None = None
    trap_code: Any = None
    error: str | None = None  # a trap's or an instantiation error's message
    instantiated: bool = False
    memory_bytes: int = 0
    fuel_consumed: int = 0
    duration_ms: int = 0
    returned: Any = None  # a component's Variant


def run_wasm(
    module: bytes | bytearray | memoryview | str | os.PathLike[str],
    input_text: str,
    limits: WasmLimits,
    *,
    argv0: str = "skill.wasm",
) -> WasmResult:
    """Run a WASI command module (input on stdin) or a skill component (input as ``execute``'s
    argument) under ``limits``. ``module`` is the binary or a path to it.

    Returns stdout (UTF-8, invalid bytes replaced), the stderr tail, fuel used and wall time;
    raises ``StepFailed`` with a ``wasm.*`` code (see the module docstring).
    """
    data = _read_module(module)
    kind = binary_kind(data)
    compiled = _compile(data, kind)
    if kind == "module":
        outcome, stdout, stderr_tail, overflowed = _run_command(compiled, input_text, limits, argv0)
    else:
        outcome = _run_component(compiled, input_text, limits)
        stdout, stderr_tail, overflowed = "", "", False
        if outcome.returned is not None and outcome.returned.tag == "ok":
            # ok(string) plays the part of a command's stdout, under the same cap.
            stdout = str(outcome.returned.payload)
            overflowed = len(stdout.encode("utf-8")) > limits.max_output_bytes
    result = WasmResult(
        stdout=stdout,
        stderr_tail=stderr_tail,
        fuel_consumed=outcome.fuel_consumed,
        duration_ms=outcome.duration_ms,
    )
    _raise_for_outcome(outcome, result, limits, overflowed)
    return result


def parse_output(stdout: str) -> Any:
    """A program's stdout as a step output: JSON when it parses, else the text minus trailing newlines.

    Bounded (boternity.parsing): JSON nested too deep, numbers too long and NaN/Infinity stay text.
    """
    return json_or(stdout, stdout.rstrip("\r\n"), what="the output")   # bounded: deep JSON stays text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _new_store(limits: WasmLimits) -> wasmtime.Store:
    store = wasmtime.Store(_get_engine())
    store.set_fuel(limits.fuel)
    store.set_limits(
        memory_size=limits.memory_bytes,
        table_elements=_TABLE_ELEMENTS,
        instances=_MAX_INSTANCES,
        tables=_MAX_TABLES,
        memories=_MAX_MEMORIES,
    )
    # +1: the current tick is already partly over.
    store.set_epoch_deadline(math.ceil(limits.timeout_secs / EPOCH_TICK_SECS) + 1)
    return store


def _run_command(
    module: wasmtime.Module, input_text: str, limits: WasmLimits, argv0: str
) -> tuple[_Outcome, str, str, bool]:
    """Run ``_start``; returns the outcome, stdout, the stderr tail and whether stdout overflowed."""
    # A private directory (0700) for the stdin file (WASI reads stdin only from a file) and the
    # two pipes; removed, with all it holds, right after the run.
    workdir = tempfile.mkdtemp(prefix="boternity-wasm-")
    stdout = stderr = None
    try:
        stdin_path = os.path.join(workdir, "stdin")
        with open(stdin_path, "wb") as f:
            f.write(input_text.encode("utf-8"))
        stdout = _Pipe(os.path.join(workdir, "stdout"), cap=limits.max_output_bytes)
        stderr = _Pipe(os.path.join(workdir, "stderr"), tail=STDERR_TAIL_BYTES)
        wasi = wasmtime.WasiConfig()
        wasi.argv = [argv0]
        wasi.stdin_file = stdin_path
        wasi.stdout_file = stdout.path
        wasi.stderr_file = stderr.path
        stdout.start()
        stderr.start()
        store = _new_store(limits)
        store.set_wasi(wasi)
        del wasi  # the store owns it now
        outcome = _invoke(store, limits, lambda s, out: _start(s, module, out))
        del store  # closes the write ends: the readers see EOF
        stdout.finish()
        stderr.finish()
        return outcome, stdout.text(), stderr.text(), stdout.overflowed
    finally:
        for pipe in (stdout, stderr):
            if pipe is not None:
                pipe.finish(timeout=0)
        shutil.rmtree(workdir, ignore_errors=True)


def _start(store: wasmtime.Store, module: wasmtime.Module, out: _Outcome) -> None:
    instance = _get_linker().instantiate(store, module)
    out.instantiated = True
    exports = instance.exports(store)
    memory = exports.get("memory")
    try:
        start = exports.get("_start")
        if not isinstance(start, wasmtime.Func):
            out.error = (
                "the module has no _start export: build it as a WASI command (a program with "
                "main that reads stdin and writes stdout), not as a library/reactor"
            )
            out.trap_code = "no_start"
            return
        start(store)
    finally:
        if isinstance(memory, wasmtime.Memory):
            out.memory_bytes = memory.data_len(store)


def _run_component(compiled: _Component, input_text: str, limits: WasmLimits) -> _Outcome:
    store = _new_store(limits)
    return _invoke(store, limits, lambda s, out: _execute(s, compiled, input_text, out))


def _execute(store: wasmtime.Store, compiled: _Component, input_text: str, out: _Outcome) -> None:
    from wasmtime import component as cm

    instance = compiled.linker.instantiate(store, compiled.component)
    out.instantiated = True
    func = instance.get_func(store, "execute")
    if func is None:
        out.error = "the component does not export `execute: func(input: string) -> result<string, string>`"
        out.trap_code = "no_execute"
        return
    fty = func.type(store)
    params, result = fty.params, fty.result
    if not (
        len(params) == 1
        and isinstance(params[0][1], cm.String)
        and isinstance(result, cm.ResultType)
        and isinstance(result.ok, cm.String)
        and isinstance(result.err, cm.String)
    ):
        out.error = "the component's `execute` must be `func(input: string) -> result<string, string>`"
        out.trap_code = "no_execute"
        return
    out.returned = func(store, input_text)


def _invoke(store: wasmtime.Store, limits: WasmLimits, body: Any) -> _Outcome:
    """Run ``body(store, outcome)``, turning every wasmtime exception into data on the outcome.

    Nothing from wasmtime escapes: when this returns, the store (and the WASI context holding our
    Python callbacks) is freed, instead of lingering in a traceback until interpreter exit.
    """
    out = _Outcome()
    started = time.monotonic()
    try:
        body(store, out)
    except wasmtime.ExitTrap as exc:
        out.exit_code = exc.code
        _release_frames(exc)
    except wasmtime.Trap as exc:
        out.trap_code = exc.trap_code
        out.error = exc.message
        _release_frames(exc)
    except wasmtime.WasmtimeError as exc:
        # Component calls (and host functions that fail) report traps as plain errors.
        out.error = str(exc)
        out.trap_code = _trap_code_in(out.error)
        _release_frames(exc)
    finally:
        out.duration_ms = round((time.monotonic() - started) * 1000)
        try:
            out.fuel_consumed = limits.fuel - store.get_fuel()
        except wasmtime.WasmtimeError:
            out.fuel_consumed = limits.fuel
    return out


def _release_frames(exc: BaseException) -> None:
    """Let go of the store now rather than at the next garbage collection.

    wasmtime-py raises from frames that hold the exception in a local, a reference cycle
    (exception -> traceback -> frame -> exception) that keeps every frame of the call alive,
    and with them the store, its WASI files (our pipes never see EOF) and its memory.
    """
    traceback.clear_frames(exc.__traceback__)
    exc.__traceback__ = None


def _raise_for_outcome(out: _Outcome, result: WasmResult, limits: WasmLimits, overflowed: bool) -> None:
    details: dict[str, Any] = {
        "fuel_consumed": result.fuel_consumed,
        "duration_ms": result.duration_ms,
        "stderr_tail": result.stderr_tail,
    }
    tail = f"; stderr: {result.stderr_tail.strip()}" if result.stderr_tail.strip() else ""
    trap = out.trap_code
    # Output first: a writer past the cap usually dies of it (an exit status after EFBIG, or fuel
    # spent retrying), and the cap is the cause worth reporting.
    if overflowed:
        raise StepFailed(
            f"WebAssembly output exceeded {limits.max_output_bytes} bytes",
            code="wasm.output_too_large",
            details={**details, "limit": limits.max_output_bytes},
        )
    if out.exit_code is not None:
        if out.exit_code == 0:
            return
        raise StepFailed(
            f"WebAssembly program exited with status {out.exit_code}{tail}",
            code="wasm.exit",
            details={**details, "exit_code": out.exit_code},
        )
    if trap in ("no_start", "no_execute"):
        raise _invalid(out.error or "no entry point")
    if trap == wasmtime.TrapCode.OUT_OF_FUEL:
        raise StepFailed(
            f"WebAssembly program ran out of fuel ({limits.fuel} units){tail}",
            code="wasm.fuel",
            details={**details, "limit": limits.fuel},
        )
    if trap == wasmtime.TrapCode.INTERRUPT:
        raise StepFailed(
            f"WebAssembly program exceeded the {limits.timeout_secs:g} s time limit{tail}",
            code="wasm.timeout",
            details={**details, "limit": limits.timeout_secs},
        )
    if out.error is not None and not out.instantiated:
        if "exceeds memory limits" in out.error:
            raise StepFailed(
                f"WebAssembly module needs more memory than the {limits.memory_bytes} bytes allowed: "
                f"{_first_line(out.error)}",
                code="wasm.memory",
                details={**details, "limit": limits.memory_bytes},
            )
        if "unknown import" in out.error:
            raise _invalid(
                f"{_first_line(out.error)}: only WASI preview1 (wasi_snapshot_preview1) is provided",
                detail=out.error,
            )
        if trap is None:
            raise _invalid(f"the module cannot be instantiated: {_first_line(out.error)}", detail=out.error)
    if out.error is not None:
        # A trap with memory at the limit is (almost always) an allocator giving up after a
        # refused memory.grow: report the cause, not the symptom.
        if trap is not None and out.memory_bytes + 65536 > limits.memory_bytes:
            raise StepFailed(
                f"WebAssembly program hit the memory limit of {limits.memory_bytes} bytes "
                f"({_first_line(out.error)}){tail}",
                code="wasm.memory",
                details={**details, "limit": limits.memory_bytes},
            )
        raise StepFailed(
            f"WebAssembly trap: {_first_line(out.error)}{tail}",
            code="wasm.trap",
            details={**details, "trap": _first_line(out.error)},
        )
    if out.returned is not None and out.returned.tag == "err":
        text = str(out.returned.payload)[:STDERR_TAIL_BYTES]
        raise StepFailed(
            f"skill returned an error: {text}", code="wasm.skill_error", details={**details, "error": text}
        )


def _invalid(message: str, *, detail: str | None = None) -> StepFailed:
    return StepFailed(message, code="wasm.invalid_module", details={"error": detail} if detail else {})


def _trap_code_in(message: str) -> wasmtime.TrapCode | None:
    for needle, code in _TRAP_MESSAGES:
        if needle in message:
            return code
    return None


# wasmtime's Display text for the traps the limits cause.
_TRAP_MESSAGES = (
    ("wasm trap: all fuel consumed", wasmtime.TrapCode.OUT_OF_FUEL),
    ("wasm trap: interrupt", wasmtime.TrapCode.INTERRUPT),
)


def _first_line(text: str) -> str:
    """The informative line of a wasmtime error: the trap or the innermost cause, not the backtrace."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return text
    if "Caused by:" in lines:
        causes = [
            line.split(": ", 1)[1] if line[:1].isdigit() and ": " in line else line
            for line in lines[lines.index("Caused by:") + 1 :]
        ]
        for cause in causes:
            if cause.startswith("wasm trap:"):
                return cause.removeprefix("wasm trap:").strip()
        return causes[0] if causes else lines[0]
    return lines[0]
