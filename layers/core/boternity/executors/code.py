"""``code`` steps: a WebAssembly module, or a JavaScript snippet, run in a sandbox with limits.

``language: wasm``
    ``module`` is a path relative to the workflow's folder (``base_dir``; it may not leave it)
    or the base64 of the binary; alternatively ``source`` is the module in WAT text. It runs
    exactly like a WASM skill (:mod:`boternity.executors.wasm`) with the ``untrusted`` tier's
    limits: ``input`` JSON-encoded on stdin, stdout parsed as JSON when it is JSON.

``language: javascript``
    ``source`` runs in V8 through `mini-racer <https://pypi.org/project/mini-racer/>`_ (tested
    with 0.14.1), in a fresh isolate per run. The input is the global ``input`` (a JSON value).
    The output is, in this order of precedence:

    1. a global ``result`` (``var``/``let``/``const``/``function``), if the script defines one;
    2. ``module.exports`` (or its ``default``), if the script assigns it (CommonJS style);
    3. the script's completion value (its last expression statement).

    When that value is a function it is called with ``input``; when it is a promise it is
    awaited. It must be JSON-serialisable (``undefined`` becomes ``null``).

    Sandbox: a bare V8 has no ``require``, ``process``, ``fetch``, file system or network. We
    also remove every binary-buffer constructor (``ArrayBuffer``, typed arrays, ``DataView``,
    ``SharedArrayBuffer``, ``Atomics``, ``WebAssembly``): their memory lives outside the V8
    heap, where the memory limit does not see it; so do ``Intl`` and ``Temporal``, whose ICU
    formatters and objects live there too, and the locale-sensitive methods (``toLocaleString``,
    ``localeCompare`` ...) ignore their locale and options arguments, which would build a new
    formatter per call: they answer in the default locale. ``setTimeout`` goes too (it is built on
    ``Atomics``): scripts compute, they do not wait. ``console`` exists but prints nowhere.
    Limits: the ``untrusted`` tier's memory (V8 heap, enforced approximately: V8 checks it
    after a collection), wall-clock time for the whole run, and output size. There is no fuel.

``language: typescript`` / ``type_script``
    Refused. Running TypeScript needs a type stripper, and none that is well kept is
    installable here without a JavaScript toolchain (the TypeScript compiler itself is 9 MB
    of JavaScript to load into every isolate). The validator rejects such steps at load time
    through :func:`unsupported_language_reason`.

Errors (``StepFailed``): ``code.invalid_config``, ``code.module_not_found``,
``code.typescript_unsupported``, ``code.unsupported_language``, ``code.engine_unavailable``
(mini-racer not installed), ``code.syntax_error``, ``code.error`` (the script threw or its
promise was rejected, or its value cannot leave JavaScript: a BigInt), ``code.timeout``,
``code.memory``, ``code.output_too_large``, ``code.output_too_deep`` (nested more than
``BOTERNITY_MAX_DEPTH`` levels, boternity.parsing), ``code.invalid_output`` (an unpaired surrogate), plus the
``wasm.*`` codes for WebAssembly.

Imports: wasmtime only on the wasm path, mini-racer only on the JavaScript path; importing this
module (as the validator does) costs neither.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import threading
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boternity.errors import StepFailed
from boternity.parsing import json_or

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterator, Mapping

    from boternity.executors.wasm import WasmLimits

__all__ = [
    "CODE_LANGUAGES_SUPPORTED",
    "JS_ENGINE",
    "JsLimits",
    "run_code",
    "unsupported_language_reason",
]

CODE_LANGUAGES_SUPPORTED = ("wasm", "javascript")
TYPESCRIPT_LANGUAGES = ("typescript", "type_script")
JS_ENGINE = "mini-racer"  # the PyPI package; its import name is py_mini_racer

_KIB = 1024
_MIB = 1024 * _KIB
_ERROR_TEXT_MAX = 2 * _KIB


class JsLimits:
    """JavaScript limits; the defaults are the ``untrusted`` WASM tier's (16 MiB, 10 s, 1 MiB).

    Defined here rather than taken from :mod:`boternity.executors.wasm`, so that running
    JavaScript does not import wasmtime. Any object with these three attributes will do
    (a ``WasmLimits`` included).
    """

    def __init__(self, memory_bytes: int = 16 * _MIB, timeout_secs: float = 10.0,
                 max_output_bytes: int = 1 * _MIB) -> None:
        self.memory_bytes = memory_bytes
        self.timeout_secs = timeout_secs
        self.max_output_bytes = max_output_bytes


def unsupported_language_reason(language: str) -> str | None:
    """Why ``language`` cannot run here, or ``None`` when it can. Used by the validator."""
    if language in CODE_LANGUAGES_SUPPORTED:
        return None
    if language in TYPESCRIPT_LANGUAGES:
        return ("TypeScript code steps are not supported: the step runtime has no TypeScript type stripper. "
                "Write the step in JavaScript (language: javascript) or compile it to WebAssembly "
                "(language: wasm)")
    return f"unknown code language {language!r}; supported: {', '.join(CODE_LANGUAGES_SUPPORTED)}"


def run_code(config: Mapping[str, Any], *, base_dir: Path | None, limits: Any = None) -> dict[str, Any]:
    """Run a rendered ``code`` step config and return the step output.

    ``limits`` defaults to the untrusted tier (a ``WasmLimits`` for wasm; for JavaScript anything
    with ``memory_bytes``, ``timeout_secs`` and ``max_output_bytes``).
    """
    language = config.get("language")
    if language == "wasm":
        return _run_wasm(config, base_dir, limits)
    if language == "javascript":
        return _run_javascript(config, limits or JsLimits())
    reason = unsupported_language_reason(str(language))
    code = "code.typescript_unsupported" if language in TYPESCRIPT_LANGUAGES else "code.unsupported_language"
    raise StepFailed(reason or f"unsupported language {language!r}", code=code, details={"language": language})


# --------------------------------------------------------------------------- wasm


def _run_wasm(config: Mapping[str, Any], base_dir: Path | None, limits: WasmLimits | None) -> dict[str, Any]:
    from boternity.executors.wasm import parse_output, run_wasm, tier_limits

    module, source = config.get("module"), config.get("source")
    if module and source:
        raise _config_error("a wasm code step takes either 'module' or 'source' (WAT text), not both")
    if module:
        if not isinstance(module, str):
            raise _config_error("'module' must be a path or a base64 string")
        data = _module_bytes(module, base_dir)
    elif source:
        data = _wat_to_wasm(str(source))
    else:
        raise _config_error("a wasm code step needs 'module' (a .wasm path or base64) or 'source' (WAT text)")
    try:
        stdin = json.dumps(config.get("input"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise _config_error(f"the input cannot be encoded as JSON: {exc}") from None
    result = run_wasm(data, stdin, limits or tier_limits("untrusted"), argv0="code.wasm")
    return {"type": "code", "language": "wasm", "output": parse_output(result.stdout),
            "fuel_consumed": result.fuel_consumed, "duration_ms": result.duration_ms}


def _module_bytes(module: str, base_dir: Path | None) -> bytes:
    """Read ``module`` as a file under ``base_dir``, or else decode it as base64 of a binary."""
    if base_dir is not None and not Path(module).is_absolute() and "\n" not in module:
        base = Path(base_dir).resolve()
        path = (base / module).resolve()
        if path.is_file():
            if not path.is_relative_to(base):
                raise _config_error(f"module path {module!r} leads outside the workflow folder")
            try:
                return path.read_bytes()
            except OSError as exc:
                raise StepFailed(f"cannot read module {module!r}: {exc.strerror or exc}",
                                 code="code.module_not_found", details={"module": module}) from None
    try:
        data = base64.b64decode("".join(module.split()), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if data[:4] == b"\0asm":
        return data
    where = f"no file {module!r} under {base_dir}" if base_dir is not None else f"no base directory for {module!r}"
    raise StepFailed(f"module not found: {where}, and it is not base64 of a WebAssembly binary",
                     code="code.module_not_found", details={"module": module[:200]})


def _wat_to_wasm(source: str) -> bytes:
    import wasmtime

    try:
        return bytes(wasmtime.wat2wasm(source))
    except wasmtime.WasmtimeError as exc:
        raise StepFailed(f"the WAT source does not parse: {exc}", code="wasm.invalid_module") from None


# --------------------------------------------------------------------------- javascript

# Runs first in every isolate. See the module docstring for why each global goes.
_HARDEN_JS = r"""
(() => {
  const TypedArray = Object.getPrototypeOf(Int8Array);
  const doomed = ["ArrayBuffer", "SharedArrayBuffer", "DataView", "Atomics", "WebAssembly",
                  "setTimeout", "clearTimeout", "setInterval", "clearInterval",
                  "FinalizationRegistry", "WeakRef", "Intl", "Temporal"];
  // ICU's collators and formatters live outside the V8 heap too (and Temporal's objects and formatters):
  // 200,000 Intl.DateTimeFormat, or toLocaleString calls with changing locales or options (each builds a
  // new formatter), took the process past 1 GB under a 16 MiB limit. So Intl and Temporal go, and the
  // locale-sensitive methods keep only
  // the locale-free form, which V8 serves from the one formatter it caches per isolate.
  const localeFree = [[Date.prototype, ["toLocaleString", "toLocaleDateString", "toLocaleTimeString"], 0],
                      [Number.prototype, ["toLocaleString"], 0], [BigInt.prototype, ["toLocaleString"], 0],
                      [Array.prototype, ["toLocaleString"], 0],
                      [String.prototype, ["toLocaleLowerCase", "toLocaleUpperCase"], 0],
                      [String.prototype, ["localeCompare"], 1]];
  for (const [proto, names, kept] of localeFree) {
    for (const name of names) {
      const original = proto[name];
      const wrapped = { [name](...args) { return original.apply(this, args.slice(0, kept)); } }[name];
      Object.defineProperty(proto, name, { value: wrapped, writable: true, configurable: true });
    }
  }
  for (const key of Object.getOwnPropertyNames(globalThis)) {
    const value = globalThis[key];
    if (typeof value === "function" && (value === TypedArray || Object.getPrototypeOf(value) === TypedArray)) {
      doomed.push(key);
    }
  }
  for (const key of doomed) {
    try { delete globalThis[key]; } catch (e) {}
    // mini-racer's own setTimeout may not be deletable; make it unusable instead.
    if (key in globalThis) { try { globalThis[key] = undefined; } catch (e) {} }
  }
  // The harness's own JSON.stringify, out of the script's reach: a script replacing JSON.stringify
  // broke the envelope the output travels in (a Python JSONDecodeError or KeyError instead of a step error).
  Object.defineProperty(globalThis, "__boternityStringify", { value: JSON.stringify });
  const exportsObject = {};
  Object.defineProperty(globalThis, "__boternityExports", { value: exportsObject });
  globalThis.module = { exports: exportsObject };
  globalThis.exports = exportsObject;
})();
"""

# How a run is driven, and why. mini-racer enforces a timeout on one *task* (an eval or a call),
# by terminating V8 when it runs out. But promise reactions run on V8's microtask queue, after
# the task that queued them, outside any timeout; and some mini-racer operations (function calls
# build their argument list with an eval that has no timeout) wait for the isolate without limit.
# So: everything goes through `eval` with a timeout -- each one queues behind pending reactions,
# and its timeout terminates one that spins -- and a Python-side value is handed back to JS only
# after a "barrier" eval has let every pending reaction run. With the harden step having removed
# every source of *later* work (timers, Atomics.waitAsync, FinalizationRegistry), the isolate is
# then idle.

# Picks the output (see the module docstring) from the completion value the setter stored, calls
# it when it is a function, and installs __boternityState(): null while a promise is pending,
# then "ok:<JSON text>" or "error:<message>".
_FINISH_JS = r"""
(() => {
  let value = globalThis.__boternityCompletion;
  delete globalThis.__boternityCompletion;
  if (typeof result !== "undefined") {
    value = result;
  } else if (module.exports !== __boternityExports || Object.keys(module.exports).length > 0) {
    value = module.exports;
    if (value !== null && typeof value === "object" && "default" in value) value = value.default;
  }
  if (typeof value === "function") value = value(input);
  // The outcome is a string, "ok:<JSON>" or "error:<message>", built by concatenation: an envelope
  // object would go through JSON.stringify, where a script's Object.prototype.toJSON would rewrite it.
  let outcome = null;
  const settle = (v) => {
    const text = __boternityStringify(v);
    outcome = "ok:" + (typeof text === "string" ? text : "null");
  };
  const fail = (e) => {
    let message;
    try { message = e instanceof Error ? String(e.stack || e) : String(e); } catch (_) { message = "(an error that cannot be shown)"; }
    outcome = "error:" + message;
  };
  Object.defineProperty(globalThis, "__boternityState", { value: () => outcome });
  if (value !== null && (typeof value === "object" || typeof value === "function")
      && typeof value.then === "function") {
    Promise.resolve(value).then((v) => { try { settle(v); } catch (e) { fail(e); } }, fail);
  } else {
    settle(value);
  }
})();
"""

_SETTER_JS = "(v) => { globalThis.__boternityCompletion = v; }"
_POLL_SECS = 0.002


class _OutOfTime(Exception):
    """The run's deadline passed between two JavaScript tasks."""


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None

# V8 (as built into mini-racer 0.14) aborts the whole process -- "Check failed:
# !IsConfigurablePoolInitialized()", exit 133 -- when two threads bring up isolates at the same moment
# in a process that has none yet: each one initialises the process-wide PartitionAlloc pool. mini-racer
# only locks the loading of the library, and it builds each isolate on a thread of its own after
# ``mini_racer()`` has returned. So isolates are brought up -- created *and* made to run a first task,
# which proves the isolate exists -- and freed one at a time under this lock (a few milliseconds each);
# the scripts themselves still run concurrently.
_isolate_lock = threading.Lock()
_ISOLATE_START_SECS = 30.0  # bringing up an isolate takes milliseconds; this only stops a hang


@contextmanager
def _isolate(mr_mod: Any) -> Iterator[Any]:
    """A fresh MiniRacer whose bring-up and disposal never overlap another thread's."""
    with _isolate_lock:
        manager = mr_mod.mini_racer(event_loop=_event_loop())
        racer = manager.__enter__()
        try:
            racer.eval("0", timeout_sec=_ISOLATE_START_SECS)
            _guard_conversions(racer, mr_mod)
        except BaseException:
            manager.__exit__(*sys.exc_info())
            raise
    try:
        yield racer
    except BaseException:
        with _isolate_lock:
            if not manager.__exit__(*sys.exc_info()):
                raise
    else:
        with _isolate_lock:
            manager.__exit__(None, None, None)


def _event_loop() -> asyncio.AbstractEventLoop:
    """One asyncio loop for all isolates, on a daemon thread, never closed.

    By default each MiniRacer closes its own loop on close(); a task terminated by a timeout
    reports back a moment later and would then hit a closed loop (a traceback on stderr).
    A loop that outlives the isolates just drops such late reports.
    """
    import asyncio  # here, not at the top: asyncio alone costs ~40 ms of import time

    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="boternity-js-loop", daemon=True).start()
            _loop = loop
    return _loop


@cache
def _unconvertible_error(mr_mod: Any) -> type[Exception]:
    # A JSEvalException subclass, because only those reach the caller (see _guard_conversions).
    return type("UnconvertibleValue", (mr_mod.JSEvalException,), {})


def _guard_conversions(racer: Any, mr_mod: Any) -> None:
    """Make a value mini-racer cannot convert fail the eval at once, instead of after its whole timeout.

    mini-racer 0.14 converts an eval's result on its event loop thread, and only a JSEvalException
    raised there reaches the waiting caller; anything else (a BigInt raises JSConversionException, a
    string with an unpaired surrogate UnicodeDecodeError) is printed as a traceback and the caller waits
    out its timeout, then reports a time-out that never happened. A script's completion value is
    converted like that (``1n`` as the last line). Each isolate has its own converter object, so the
    wrapper is installed per isolate; another mini-racer layout keeps its own behaviour.
    """
    factory = getattr(getattr(racer, "_ctx", None), "_object_factory", None)
    convert = getattr(factory, "value_handle_to_python", None)
    if convert is None:
        return

    def guarded(context: Any, handle: Any) -> Any:
        try:
            return convert(context, handle)
        except mr_mod.JSEvalException:
            raise
        except Exception as exc:  # any other exception would be lost on the loop thread (see above)
            what = ("a string with an unpaired surrogate" if isinstance(exc, UnicodeDecodeError)
                    else "a BigInt or another value with no Python equivalent")
            raise _unconvertible_error(mr_mod)(
                f"the script's value is {what}, which cannot leave JavaScript; the output must be JSON"
            ) from None

    factory.value_handle_to_python = guarded


def _run_javascript(config: Mapping[str, Any], limits: Any) -> dict[str, Any]:
    source = config.get("source")
    if not isinstance(source, str) or not source.strip():
        raise _config_error("a javascript code step needs 'source'")
    try:
        input_json = json.dumps(config.get("input"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise _config_error(f"the input cannot be encoded as JSON: {exc}") from None
    try:
        import py_mini_racer as mr_mod
    except ImportError:
        raise StepFailed(f"JavaScript code steps need the {JS_ENGINE} package, which is not installed",
                         code="code.engine_unavailable") from None

    started = time.monotonic()
    deadline = started + float(limits.timeout_secs)
    memory = int(limits.memory_bytes)

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime
        return left

    finished = False
    try:
        with _isolate(mr_mod) as racer:
            racer.set_hard_memory_limit(memory)

            def run(code: str) -> Any:
                return racer.eval(code, timeout_sec=remaining(), max_memory=memory)

            run(_HARDEN_JS)
            # The input crosses as JSON text inside a JS string literal (a JSON string is one).
            run(f"Object.defineProperty(globalThis, 'input', {{value: JSON.parse({json.dumps(input_json)}), "
                "writable: true, configurable: true});")
            completion = run(source)
            run("0")  # the barrier: the script's pending reactions run now, under the deadline
            run(_SETTER_JS)(completion, timeout_sec=remaining())
            run(_FINISH_JS)
            finished = True
            while (state := run("__boternityState()")) is None:
                time.sleep(_POLL_SECS)
    except (mr_mod.JSTimeoutException, _OutOfTime):
        waiting = " (its result promise had not settled)" if finished else ""
        raise StepFailed(f"JavaScript exceeded the {limits.timeout_secs:g} s time limit{waiting}",
                         code="code.timeout", details={"limit": limits.timeout_secs}) from None
    except mr_mod.JSOOMException:
        raise StepFailed(f"JavaScript exceeded the memory limit of {memory} bytes", code="code.memory",
                         details={"limit": memory}) from None
    except mr_mod.JSParseException as exc:
        raise StepFailed(f"JavaScript syntax error: {_js_message(str(exc))}{_module_hint(source)}",
                         code="code.syntax_error") from None
    except (mr_mod.JSEvalException, mr_mod.JSPromiseError) as exc:
        raise StepFailed(f"JavaScript error: {_js_message(str(exc))}", code="code.error") from None
    return _output(state, limits, started)


def _output(state: str, limits: Any, started: float) -> dict[str, Any]:
    """The step output from the ``__boternityState()`` string, held to the output limits."""
    if not isinstance(state, str) or not state.startswith(("ok:", "error:")):
        # The harness builds this string; nothing a script does should reach here, but if it ever
        # does it is the script's doing, and the step says so instead of failing with a Python error.
        raise StepFailed("JavaScript output could not be read back (the script interfered with the runtime)",
                         code="code.invalid_output")
    kind, _, text = state.partition(":")
    if kind == "error":
        raise StepFailed(f"JavaScript error: {_js_message(text)}", code="code.error")
    size = len(text.encode("utf-8"))
    if size > limits.max_output_bytes:
        raise StepFailed(f"JavaScript output is {size} bytes, more than the {limits.max_output_bytes} allowed",
                         code="code.output_too_large", details={"limit": limits.max_output_bytes})

    unparsed = object()
    output = json_or(text, unparsed, what="the output")   # JSON.stringify nests as deep as the code likes
    if output is unparsed:
        raise StepFailed("JavaScript output is nested too deeply (or holds a number too long) to be a step output",
                         code="code.output_too_deep", details={"limit": "BOTERNITY_MAX_DEPTH"})
    try:
        # JSON.stringify escapes an unpaired surrogate, json.loads restores it, and no UTF-8 record
        # (logs, DynamoDB, Step Functions) can hold it: refused here, where the step can say why.
        json.dumps(output, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise StepFailed("JavaScript output contains a string with an unpaired surrogate, which is not valid "
                         "Unicode", code="code.invalid_output") from None
    return {"type": "code", "language": "javascript", "output": output,
            "duration_ms": round((time.monotonic() - started) * 1000)}


def _js_message(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _ERROR_TEXT_MAX else text[:_ERROR_TEXT_MAX] + " ..."


def _module_hint(source: str) -> str:
    if any(line.lstrip().startswith(("import ", "export ")) for line in source.splitlines()):
        return (" (ES module syntax -- import/export -- is not available: assign `result`, set "
                "`module.exports`, or end with an expression)")
    return ""


def _config_error(message: str) -> StepFailed:
    return StepFailed(message, code="code.invalid_config")
