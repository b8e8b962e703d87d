"""Small WebAssembly programs, written in WAT, that exercise the sandbox from the guest's side.

Each ``*_WAT`` constant is a complete WASI preview1 *command* module (it exports ``_start`` and
``memory``) unless its name says ``COMPONENT``. :func:`wasm_bytes` turns a source into a binary
with ``wasmtime.wat2wasm`` (cached, so tests can call it freely); :func:`write_wasm` puts one in a
file for tests that need a path (skill folders, ``code`` steps with a ``module`` path).

Memory layout used by the command modules (one 64 KiB page unless stated):

=========  ==============================================================
offset     what
=========  ==============================================================
0..16      an iovec {ptr, len} for fd_read / fd_write
16..20     n (bytes read or written)
20..24     scratch (an opened fd, ...)
64..1024   constant strings (data segments)
4096..     the input buffer / output buffer
=========  ==============================================================
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import wasmtime

# The WASI imports the modules below use. `fd_read`/`fd_write` take (fd, iovs, iovs_len, n_ptr) and
# return an errno; `proc_exit` does not return.
_WASI_IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"""

# write(fd, ptr, len) -> errno: one fd_write through the iovec at offset 0.
_WRITE_HELPER = """
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 16)))
"""

# Reads all of stdin, writes {"skill":"echo","input":<stdin>} to stdout and a line to stderr.
# The input must be JSON for the output to be JSON: that is the contract of a WASM skill.
ECHO_JSON_WAT = f"""
(module
  {_WASI_IMPORTS}
  (memory (export "memory") 4)
  (data (i32.const 64) "{{\\"skill\\":\\"echo\\",\\"input\\":")   ;; 24 bytes
  (data (i32.const 128) "}}")
  (data (i32.const 192) "echo: done\\n")                       ;; 11 bytes
  {_WRITE_HELPER}
  (func (export "_start")
    (local $end i32)
    (local.set $end (i32.const 4096))
    ;; read until EOF (n == 0) or the buffer (up to the end of memory) is full
    (block $eof
      (loop $more
        (i32.store (i32.const 0) (local.get $end))
        (i32.store (i32.const 4) (i32.sub (i32.const 262144) (local.get $end)))
        (br_if $eof (i32.eqz (i32.load (i32.const 4))))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16))
          (then (call $proc_exit (i32.const 70))))
        (br_if $eof (i32.eqz (i32.load (i32.const 16))))
        (local.set $end (i32.add (local.get $end) (i32.load (i32.const 16))))
        (br $more)))
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 24)))
    (drop (call $write (i32.const 1) (i32.const 4096) (i32.sub (local.get $end) (i32.const 4096))))
    (drop (call $write (i32.const 1) (i32.const 128) (i32.const 1)))
    (drop (call $write (i32.const 2) (i32.const 192) (i32.const 11)))))
"""

# Writes a plain-text greeting (not JSON) and exits normally.
HELLO_TEXT_WAT = f"""
(module
  {_WASI_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 64) "hello, world")
  {_WRITE_HELPER}
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 12)))))
"""

# Complains on stderr and exits with status 3, like a CLI rejecting its input.
EXIT_3_WAT = f"""
(module
  {_WASI_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 64) "bad input: expected an object\\n")   ;; 30 bytes
  {_WRITE_HELPER}
  (func (export "_start")
    (drop (call $write (i32.const 2) (i32.const 64) (i32.const 30)))
    (call $proc_exit (i32.const 3))))
"""

# Calls proc_exit(0) explicitly: a normal, successful end (an ExitTrap with code 0 on the host).
EXIT_0_WAT = f"""
(module
  {_WASI_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 64) "{{\\"ok\\":true}}")
  {_WRITE_HELPER}
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 11)))
    (call $proc_exit (i32.const 0))))
"""

# Writes 64 KiB of '.' to stderr, then "the end" -- more than the 2 KB tail the runner keeps.
STDERR_CHATTER_WAT = f"""
(module
  {_WASI_IMPORTS}
  (memory (export "memory") 2)
  (data (i32.const 64) "the end\\n")
  {_WRITE_HELPER}
  (func (export "_start")
    (memory.fill (i32.const 65536) (i32.const 46) (i32.const 65536))
    (drop (call $write (i32.const 2) (i32.const 65536) (i32.const 65536)))
    (drop (call $write (i32.const 2) (i32.const 64) (i32.const 8)))))
"""

# Traps with `unreachable` at once (memory far below any limit): a plain crash.
UNREACHABLE_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
"""

# A library ("reactor") module: no _start, so not a command.
REACTOR_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "run")))
"""

# Imports a function the sandbox does not provide.
FOREIGN_IMPORT_WAT = """
(module
  (import "env" "fetch_url" (func (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
"""

# Never returns: only fuel or the wall-clock deadline can stop it.
SPIN_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
"""

# Grows memory a page at a time until memory.grow fails, then traps -- what a Rust or C program
# does when its allocator gives up (abort -> `unreachable`).
MEMORY_BOMB_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
"""

# Declares a 64 MiB (1024-page) minimum memory: more than the untrusted tier allows.
HUGE_MIN_MEMORY_WAT = """
(module
  (memory (export "memory") 1024)
  (func (export "_start")))
"""

# Writes 64 KiB blocks of 'x' to stdout until a write fails, then exits 1 (a well-behaved writer).
FLOOD_WAT = f"""
(module
  {_WASI_IMPORTS}
  (memory (export "memory") 2)
  {_WRITE_HELPER}
  (func (export "_start")
    (memory.fill (i32.const 65536) (i32.const 120) (i32.const 65536))
    (loop $again
      (br_if $again (i32.eqz (call $write (i32.const 1) (i32.const 65536) (i32.const 65536)))))
    (call $proc_exit (i32.const 1))))
"""

# Writes 64 KiB blocks forever, ignoring errors: only fuel or the deadline stops it.
FLOOD_IGNORING_ERRORS_WAT = f"""
(module
  {_WASI_IMPORTS}
  (memory (export "memory") 2)
  {_WRITE_HELPER}
  (func (export "_start")
    (memory.fill (i32.const 65536) (i32.const 120) (i32.const 65536))
    (loop $again
      (drop (call $write (i32.const 1) (i32.const 65536) (i32.const 65536)))
      (br $again))))
"""

# Looks around the sandbox from the inside and reports what it saw, as JSON on stdout:
#   {"argc":"A","envc":"E","prestat3":"P","open3":"O"}
# argc/envc come from args_sizes_get/environ_sizes_get; prestat3 and open3 are the errnos of
# fd_prestat_get(3) and path_open(3, "secret.txt") -- fd 3 is where the first preopened directory
# would be (rights asked for: fd_read). Values are two-digit strings ("99" for anything above).
SANDBOX_PROBE_WAT = f"""
(module
  {_WASI_IMPORTS}
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "secret.txt")                                        ;; 10 bytes
  (data (i32.const 128) "{{\\"argc\\":\\"00\\",\\"envc\\":\\"00\\",\\"prestat3\\":\\"00\\",\\"open3\\":\\"00\\"}}")  ;; 54 bytes
  {_WRITE_HELPER}
  ;; writes min(n, 99) as two ASCII digits at ptr
  (func $digits (param $ptr i32) (param $n i32)
    (if (i32.gt_u (local.get $n) (i32.const 99)) (then (local.set $n (i32.const 99))))
    (i32.store8 (local.get $ptr) (i32.add (i32.const 48) (i32.div_u (local.get $n) (i32.const 10))))
    (i32.store8 (i32.add (local.get $ptr) (i32.const 1))
                (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10)))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 1024) (i32.const 1028)))
    (call $digits (i32.const 137) (i32.load (i32.const 1024)))
    (drop (call $environ_sizes_get (i32.const 1032) (i32.const 1036)))
    (call $digits (i32.const 149) (i32.load (i32.const 1032)))
    (call $digits (i32.const 165) (call $fd_prestat_get (i32.const 3) (i32.const 1040)))
    (call $digits (i32.const 178)
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 10) (i32.const 0)
                       (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 20)))
    (drop (call $write (i32.const 1) (i32.const 128) (i32.const 54)))))
"""

# Asks WASI to sleep for an hour with poll_oneoff (a relative clock subscription). A host call
# cannot be interrupted by the epoch deadline, so the runner must refuse to sleep at all.
SLEEP_WAT = f"""
(module
  {_WASI_IMPORTS}
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  {_WRITE_HELPER}
  (func (export "_start")
    ;; subscription at 256: userdata u64, tag u8 = 0 (clock), clock id u32 = 1 (monotonic)
    ;; at +16, timeout u64 at +24 (3600 s in ns), precision u64 at +32, flags u16 at +40
    (i64.store (i32.const 256) (i64.const 7))
    (i32.store8 (i32.const 264) (i32.const 0))
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 3600000000000))
    (i64.store (i32.const 288) (i64.const 0))
    (i32.store16 (i32.const 296) (i32.const 0))
    ;; exit with the errno poll_oneoff returned (0 would mean it slept)
    (call $proc_exit (call $poll_oneoff (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 16)))))
"""

# Not a valid module: the magic number is right but the body is garbage.
INVALID_MODULE_BYTES = b"\x00asm\x01\x00\x00\x00\xff\xff\xff\xff"

# A Component Model component exporting `execute: func(input: string) -> result<string, string>`
# (the reference's skill-plugin interface). It returns ok(input) unchanged. The core module is a
# hand-written canonical-ABI implementation: a bump allocator for `realloc` and a return area at 16.
COMPONENT_ECHO_WAT = """
(component
  (core module $m
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $bump))
      (global.set $bump (i32.add (global.get $bump) (local.get 3)))
      (local.get $p))
    (func (export "execute") (param $ptr i32) (param $len i32) (result i32)
      (i32.store (i32.const 16) (i32.const 0))         ;; discriminant: ok
      (i32.store (i32.const 20) (local.get $ptr))
      (i32.store (i32.const 24) (local.get $len))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (func (export "execute") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "execute")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))
"""

# The same interface, answering err("no such city").
COMPONENT_ERROR_WAT = """
(component
  (core module $m
    (memory (export "memory") 1)
    (data (i32.const 64) "no such city")
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "execute") (param i32 i32) (result i32)
      (i32.store (i32.const 16) (i32.const 1))         ;; discriminant: err
      (i32.store (i32.const 20) (i32.const 64))
      (i32.store (i32.const 24) (i32.const 12))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (func (export "execute") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "execute")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))
"""

# The echo component, also importing the reference's host interface (as reference skills do).
# The import is satisfied by a trap; a skill that never calls it runs normally.
COMPONENT_WITH_HOST_IMPORT_WAT = COMPONENT_ECHO_WAT.replace(
    "(component",
    """(component
  (import "boternity:skill/host" (instance
    (export "log" (func (param "level" string) (param "message" string)))))""",
    1,
)

# A component whose `execute` never returns.
COMPONENT_SPIN_WAT = """
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "execute") (param i32 i32) (result i32)
      (loop $forever (br $forever))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (func (export "execute") (param "input" string) (result (result string (error string)))
    (canon lift (core func $i "execute")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))
"""

# A component with no `execute` export.
COMPONENT_WITHOUT_EXECUTE_WAT = """
(component
  (core module $m (func (export "run")))
  (core instance $i (instantiate $m))
  (func (export "run") (canon lift (core func $i "run"))))
"""


@cache
def wasm_bytes(wat: str) -> bytes:
    """The binary for a WAT source (a module or a component)."""
    return bytes(wasmtime.wat2wasm(wat))


def write_wasm(path: Path, wat: str) -> Path:
    """Write the binary for ``wat`` to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wasm_bytes(wat))
    return path


# A real program: C against wasi-libc. Counts the bytes, words and lines of stdin and answers
# {"bytes":B,"words":W,"lines":L}; exits 2 with a message on stderr when stdin is empty.
C_WORD_COUNT_SOURCE = r"""
#include <stdio.h>

int main(void) {
    long bytes = 0, words = 0, lines = 0;
    int c, in_word = 0;
    while ((c = getchar()) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        if (c == ' ' || c == '\n' || c == '\t' || c == '"') in_word = 0;
        else if (!in_word) { in_word = 1; words++; }
    }
    if (bytes == 0) { fprintf(stderr, "wc: empty input\n"); return 2; }
    printf("{\"bytes\":%ld,\"words\":%ld,\"lines\":%ld}\n", bytes, words, lines);
    return 0;
}
"""


def build_c_wasm(source: str, workdir: Path) -> bytes | None:
    """Compile C to a WASI command with clang, or ``None`` when clang/wasi-libc are not installed.

    Debian: ``apt-get install clang lld wasi-libc libclang-rt-dev-wasm32``.
    """
    clang = shutil.which("clang")
    if clang is None:
        return None
    src, out = workdir / "program.c", workdir / "program.wasm"
    src.write_text(source)
    done = subprocess.run([clang, "--target=wasm32-wasi", "-O2", "-o", str(out), str(src)],
                          capture_output=True, text=True, timeout=120)
    return out.read_bytes() if done.returncode == 0 else None
