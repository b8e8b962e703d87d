"""Compile untrusted WebAssembly in a child process with a memory and a time limit.

Fuel, the epoch deadline and the store limits hold a guest while it *runs*; compiling it is not metered
at all, and Cranelift's cost grows with the shape of the code, not only its size: a 3 MB module of a
million nested ``block`` instructions took 15 s and 900 MB here, so a 64 MiB one would take the whole
Lambda down (out of memory) before any limit applied. So the compiler runs in a child process under
``RLIMIT_AS`` and a timeout, and hands back wasmtime's serialized artifact, which the parent loads with
``deserialize`` (the artifact is the compiler's output, as trusted as an in-process compile's).

Limits (environment variables, read at each compile so a test or a deployment can change them):

=================================  ========  ===============================================
``BOTERNITY_WASM_COMPILE_MEMORY_MB``  768       address space of the compiler process (MiB)
``BOTERNITY_WASM_COMPILE_TIMEOUT_SECS``  30     wall clock for one compilation
=================================  ========  ===============================================

The child is started with the parent's interpreter and environment (in Lambda, wasmtime comes from
the layer through ``PYTHONPATH``), and needs only wasmtime.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["CompileLimits", "CompileRefused", "compile_limits", "compile_serialized"]

MEMORY_ENV, MEMORY_DEFAULT_MB = "BOTERNITY_WASM_COMPILE_MEMORY_MB", 768
TIMEOUT_ENV, TIMEOUT_DEFAULT_SECS = "BOTERNITY_WASM_COMPILE_TIMEOUT_SECS", 30.0

# Reads the binary on stdin; writes b"K" + the serialized artifact, or b"E" + wasmtime's error text.
# The limit is set before wasmtime is even imported, so nothing in the child escapes it.
_CHILD = r"""
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import wasmtime
config = wasmtime.Config()
for name, value in json.loads(sys.argv[3]).items():
    setattr(config, name, value)
engine = wasmtime.Engine(config)
data = sys.stdin.buffer.read()
try:
    if sys.argv[2] == "module":
        compiled = wasmtime.Module(engine, data)
    else:
        from wasmtime import component
        compiled = component.Component(engine, data)
except wasmtime.WasmtimeError as exc:
    sys.stdout.buffer.write(b"E" + str(exc).encode("utf-8", "replace"))
else:
    sys.stdout.buffer.write(b"K" + compiled.serialize())
"""


class CompileRefused(Exception):
    """The compiler failed or ran out of its limits; ``reason`` says which, for a step error."""

    def __init__(self, reason: str, *, invalid: bool) -> None:
        self.reason = reason
        self.invalid = invalid  # True: wasmtime rejected the binary itself (its message is the reason)
        super().__init__(reason)


@dataclass(frozen=True)
class CompileLimits:
    memory_mb: int
    timeout_secs: float


def compile_limits() -> CompileLimits:
    """The limits from the environment; a value that is not a positive number is a ValueError naming it."""
    return CompileLimits(int(_positive(MEMORY_ENV, MEMORY_DEFAULT_MB)), _positive(TIMEOUT_ENV, TIMEOUT_DEFAULT_SECS))


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"environment variable {name} must be a positive number, got {raw!r}")
    return value


def compile_serialized(data: bytes, kind: str, engine_flags: dict[str, bool], limits: CompileLimits) -> bytes:
    """Compile ``data`` (``kind``: "module" or "component") in a child; return the serialized artifact.

    ``engine_flags`` are set on the child's ``wasmtime.Config``: they must be the parent engine's, or
    ``deserialize`` refuses the artifact.
    """
    command = [sys.executable, "-c", _CHILD, str(limits.memory_mb * 1024 * 1024), kind, json.dumps(engine_flags)]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=limits.timeout_secs, check=False)
    except subprocess.TimeoutExpired:
        raise CompileRefused(
            f"compiling the {kind} took more than {limits.timeout_secs:g} s ({TIMEOUT_ENV})", invalid=False
        ) from None
    if done.returncode == 0 and done.stdout[:1] == b"K":
        return done.stdout[1:]
    if done.returncode == 0 and done.stdout[:1] == b"E":
        raise CompileRefused(done.stdout[1:].decode("utf-8", "replace"), invalid=True)
    errors = done.stderr.decode("utf-8", "replace")
    if done.returncode < 0 or "memory allocation" in errors or "MemoryError" in errors:
        # Rust aborts (SIGABRT) when an allocation fails and Python raises MemoryError: the limit was hit.
        raise CompileRefused(
            f"compiling the {kind} needed more than {limits.memory_mb} MiB of memory ({MEMORY_ENV})", invalid=False
        )
    last = errors.strip().splitlines()[-1][:300] if errors.strip() else "no message"
    raise CompileRefused(f"the compiler process failed (exit {done.returncode}): {last}", invalid=False)
