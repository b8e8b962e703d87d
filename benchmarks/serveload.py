"""Section 6: `boternity serve` under load, on loopback. Nothing may be lost or run twice.

* **Free triggers**: a workflow without a concurrency limit gets ``triggers`` POST /runs from
  ``clients`` threads at once, each payload carrying its own sequence number. Every answer's latency
  is recorded (p50/p99). Then every accepted run is followed to its end, and the runs the API lists
  for the workflow are compared with the accepted ones: **lost** = accepted but never listed or
  never ended SUCCEEDED; **duplicated** = listed but not accepted, or a sequence number whose step
  output appears in more than one run.
* **concurrency: 2**: a workflow with ``concurrency: 2`` (queueing, 1 s steps) gets ``limited``
  triggers at once; the same loss/duplicate accounting, plus the most runs seen RUNNING at once
  (sampled every 0.1 s; must stay at most 2).

A benchmark section, not a unit test: the counts are asserted by nobody but reported (and read by
docs/reliability.md); CI's ``--quick`` run proves the code works.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from benchmarks.report import percentile, table
from benchmarks.served import served

if TYPE_CHECKING:
    from collections.abc import Callable

FREE = "load-free"
LIMITED = "load-c2"
FREE_DOC = (f"name: {FREE}\nsteps:\n  - id: echo\n    type: skill\n"
            "    config: {skill: echo-prompt, input: 'seq {{ trigger.seq }}'}\n")
LIMITED_DOC = (f"name: {LIMITED}\nconcurrency: 2\nsteps:\n  - id: nap\n    type: wait\n    config: {{seconds: 1}}\n"
               "  - id: echo\n    type: skill\n    depends_on: [nap]\n"
               "    config: {skill: echo-prompt, input: 'seq {{ trigger.seq }}'}\n")
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# Generous: requests to the api function queue one at a time (as in one Lambda environment)
# behind the runs moto executes in the same process.
REQUEST_TIMEOUT = 180


def _call(base: str, method: str, path: str, body: bytes | None = None,
          ctype: str = "application/json") -> tuple[int, Any]:
    req = urllib.request.Request(base + path, data=body, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _trigger_all(base: str, workflow: str, count: int, clients: int) -> dict[str, Any]:
    """``count`` triggers from ``clients`` threads, released together; each answer timed."""
    start = threading.Barrier(clients)
    per_client = [list(range(c, count, clients)) for c in range(clients)]

    def client(seqs: list[int]) -> list[tuple[int, int, str | None, float]]:
        start.wait(60)
        out = []
        for seq in seqs:
            t0 = time.perf_counter()
            status, body = _call(base, "POST", f"/workflows/{workflow}/runs", json.dumps({"seq": seq}).encode())
            out.append((seq, status, (body or {}).get("run_id") if status == 202 else None,
                        (time.perf_counter() - t0) * 1000))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = [a for part in pool.map(client, per_client) for a in part]
    return {"answers": answers, "seconds": time.perf_counter() - t0}


def _listed_runs(base: str, workflow: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query = "?limit=100" + (f"&next_token={urllib.request.quote(token)}" if token else "")
        status, body = _call(base, "GET", f"/workflows/{workflow}/runs{query}")
        if status != 200:
            raise RuntimeError(f"listing runs answered {status}: {body}")
        runs += body["runs"]
        token = body.get("next_token")
        if not token:
            return runs


def _follow(base: str, run_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Each run's final record (or its last seen one, when it has not ended in time)."""
    final: dict[str, dict[str, Any]] = {}
    end = time.monotonic() + timeout
    pending = list(run_ids)
    while pending and time.monotonic() < end:
        still = []
        for rid in pending:
            status, body = _call(base, "GET", f"/runs/{rid}")
            if status == 200:
                final[rid] = body
                if body["run"]["status"] in TERMINAL:
                    continue
            still.append(rid)
        pending = still
        if pending:
            time.sleep(0.5)
    return final


def _account(base: str, workflow: str, answers: list[tuple[int, int, str | None, float]],
             timeout: float) -> dict[str, Any]:
    accepted = {rid: seq for seq, status, rid, _ in answers if rid}
    final = _follow(base, list(accepted), timeout)
    listed = {r["run_id"] for r in _listed_runs(base, workflow)}
    seq_runs: dict[str, list[str]] = {}
    for rid, detail in final.items():
        for step in detail.get("steps") or []:
            if step.get("step_id") == "echo" and isinstance(step.get("output"), dict):
                seq_runs.setdefault(str(step["output"].get("output")), []).append(rid)
    succeeded = {rid for rid, d in final.items() if d["run"]["status"] == "SUCCEEDED"}
    latencies = [ms for *_, ms in answers]
    return {
        "triggers": len(answers),
        "statuses": {str(s): sum(1 for _, st, _, _ in answers if st == s) for s in sorted({a[1] for a in answers})},
        "accepted": len(accepted),
        "succeeded": len(succeeded),
        "lost": len(set(accepted) - (listed & succeeded)),
        "duplicated": len(listed - set(accepted)) + sum(len(r) - 1 for r in seq_runs.values() if len(r) > 1),
        "listed_not_accepted": sorted(listed - set(accepted))[:5],
        "repeated_outputs": {k: v for k, v in seq_runs.items() if len(v) > 1},
        "not_ended": sorted(set(accepted) - {rid for rid, d in final.items() if d["run"]["status"] in TERMINAL})[:5],
        "trigger_ms": {"p50": _r(percentile(latencies, 50)), "p99": _r(percentile(latencies, 99)),
                       "max": _r(max(latencies) if latencies else None)},
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _max_running(base: str, workflow: str, stop: threading.Event, seen: list[int]) -> None:
    while not stop.is_set():
        try:
            status, body = _call(base, "GET", f"/workflows/{workflow}/runs?status=running&limit=100")
        except OSError:   # a sample lost to a slow answer; the next one counts
            continue
        if status == 200:
            seen.append(len(body["runs"]))
        stop.wait(0.1)


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    triggers, clients, limited = (40, 4, 12) if quick else (200, 8, 50)
    out: dict[str, Any] = {"triggers": triggers, "clients": clients, "limited_triggers": limited}
    with served(env={"LOG_LEVEL": "ERROR"}) as base:
        for name, doc in ((FREE, FREE_DOC), (LIMITED, LIMITED_DOC)):
            status, body = _call(base, "PUT", f"/workflows/{name}", doc.encode(), "application/yaml")
            if status not in (200, 201):
                raise RuntimeError(f"deploying {name} answered {status}: {body}")

        sent = _trigger_all(base, FREE, triggers, clients)
        free = _account(base, FREE, sent["answers"], timeout=120 + triggers)
        free["trigger_seconds"] = round(sent["seconds"], 2)
        out["free"] = free
        log(f"   {triggers} triggers from {clients} clients in {sent['seconds']:.1f} s: "
            f"lost {free['lost']}, duplicated {free['duplicated']}")

        stop, seen = threading.Event(), []
        sampler = threading.Thread(target=_max_running, args=(base, LIMITED, stop, seen), daemon=True)
        sampler.start()
        sent = _trigger_all(base, LIMITED, limited, min(clients, limited))
        capped = _account(base, LIMITED, sent["answers"], timeout=60 + limited * 3)
        stop.set()
        sampler.join(10)
        capped["max_running_seen"] = max(seen, default=None)
        out["concurrency_2"] = capped
        log(f"   concurrency: 2 under {limited} triggers: lost {capped['lost']}, duplicated "
            f"{capped['duplicated']}, most RUNNING at once {capped['max_running_seen']}")
    log(table(["workflow", "triggers", "accepted", "succeeded", "lost", "duplicated", "p50 ms", "p99 ms"], [
        [name, r["triggers"], r["accepted"], r["succeeded"], r["lost"], r["duplicated"], r["trigger_ms"]["p50"],
         r["trigger_ms"]["p99"]] for name, r in (("free", out["free"]), ("concurrency: 2", out["concurrency_2"]))],
        title="boternity serve under load (loopback)"))
    return out
