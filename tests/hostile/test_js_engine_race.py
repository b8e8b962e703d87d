"""Native engines survive their first use from many threads at once.

V8 (mini-racer) aborted the whole process (exit 133, "Check failed: !IsConfigurablePoolInitialized()")
when several threads created their first isolate at the same moment: a ``for_each`` over JavaScript
``code`` steps with ``max_concurrency: 3`` killed ``boternity run`` in 2 of 8 runs. The race only exists
in a process that has not created an isolate yet, so every case runs in a fresh interpreter, and the
same case runs in several processes so a race that hits one time in ten would show.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "layers" / "core"
THREADS = 8
PROCESSES = 12

# Every thread waits at a barrier, so all of them reach their engine's first use together.
_STRESS = textwrap.dedent("""
    import sys, threading
    sys.path.insert(0, {core!r})
    import py_mini_racer, wasmtime  # loaded up front: the import lock would otherwise stagger the threads
    from boternity.executors import code
    from boternity.executors.code import run_code

    code._event_loop()  # created once under its own lock; left in, it would stagger the threads

    WAT = '''(module (import "wasi_snapshot_preview1" "fd_write"
                        (func $w (param i32 i32 i32 i32) (result i32)))
               (memory (export "memory") 1) (data (i32.const 16) "7")
               (func (export "_start") (i32.store (i32.const 0) (i32.const 16))
                     (i32.store (i32.const 4) (i32.const 1))
                     (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))'''
    mode, n = sys.argv[1], int(sys.argv[2])
    barrier = threading.Barrier(n)
    results = []

    def work(i):
        barrier.wait()
        if mode == "javascript" or (mode == "mixed" and i % 2 == 0):
            out = run_code({{"language": "javascript", "source": "input * 2", "input": i}}, base_dir=None)
            results.append(out["output"] == i * 2)
        else:
            out = run_code({{"language": "wasm", "source": WAT, "input": i}}, base_dir=None)
            results.append(out["output"] == 7)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("ok", sum(results))
""").format(core=str(CORE))


def _fresh_process(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _STRESS, mode, str(THREADS)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("mode", ["javascript", "mixed"])
def test_many_first_isolates_at_once_do_not_abort_the_process(mode: str) -> None:
    for attempt in range(PROCESSES):
        done = _fresh_process(mode)
        assert done.returncode == 0, (
            f"process {attempt + 1}/{PROCESSES} died with {done.returncode}: {done.stderr[-600:]}")
        assert done.stdout.split() == ["ok", str(THREADS)], done.stderr[-600:]


WORKFLOW = """\
name: js-fan-out
steps:
  - id: double
    type: code
    for_each: "{{ trigger.items }}"
    max_concurrency: 3
    config:
      language: javascript
      source: "input * 2"
      input: "{{ item }}"
"""


@pytest.mark.parametrize("attempt", range(3), ids=lambda i: f"run-{i + 1}")
def test_boternity_run_of_a_for_each_over_javascript_steps_exits_0(tmp_path: Path, attempt: int) -> None:
    (tmp_path / "fan-out.yaml").write_text(WORKFLOW)
    items = list(range(9))
    done = subprocess.run(
        [sys.executable, "-m", "boternity.cli.main", "run", "fan-out.yaml", "--json",
         "--input", json.dumps({"items": items})],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-800:]
    record = json.loads(done.stdout)["run"]
    assert record["status"] == "SUCCEEDED"
    assert [o["output"] for o in record["output"]["double"]["output"]] == [i * 2 for i in items]
