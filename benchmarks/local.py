"""Section 4: the local engine. Wall time per step of no-op runs, and the api's trigger latency.

* **Engine runs**: workflows of n no-op steps (prompt skill steps, ``echo-prompt``, when the skill
  executor exists, else ``wait`` steps of 0 s) in groups of 10 parallel steps, each group
  depending on the whole previous one. The time of ``engine.run`` (deploy, start, execute, record)
  in a warm engine, per step. ``boternity run`` as a whole command (interpreter, imports, moto set-up
  included) is timed too, as ``cli_wall_s``.
* **Non-series-parallel runs** (full mode): a random layered DAG of 100 steps, whose branches
  synchronise through signals, run several times: how often does a run hang?
* **api trigger**: ``POST /workflows/{name}/runs`` through ``boternity.handlers.api.lambda_handler``
  with an API Gateway REST proxy event, in-process on moto (the emulated cloud of ``boternity
  serve``); each call timed alone, the run it starts finishing before the next call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.dags import Dag, _dag, random_layered, workflow, workflow_doc
from benchmarks.motorun import SKILLS_DIR, local_engine, run_workflow
from benchmarks.report import percentile, table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

GROUP = 10


def kind() -> str:
    return "skill" if importlib.util.find_spec("boternity.executors.skill") is not None else "wait"


def grouped_dag(n: int) -> Dag:
    """n steps in groups of 10; every step depends on every step of the previous group."""
    steps = [f"s{i:03d}" for i in range(n)]
    groups = [steps[i:i + GROUP] for i in range(0, n, GROUP)]
    deps: dict[str, list[str]] = {}
    for prev, group in zip(groups, groups[1:], strict=False):
        for s in group:
            deps[s] = list(prev)
    return _dag(f"grouped-n{n}", "grouped", steps, deps, {s: 0 for s in steps})


def _dynamodb_locked() -> bool:
    """Whether boternity.local.cloud_patches' DynamoDB lock is active in this process."""
    try:
        from boternity.local import cloud_patches
    except ImportError:
        return False
    return bool(getattr(cloud_patches, "_originals", {}).get("applied"))


def engine_runs(sizes: list[int], *, log: Callable[[str], None]) -> dict[str, Any]:
    k = kind()
    out: dict[str, Any] = {}
    with local_engine() as eng:
        warm = grouped_dag(10)
        run_workflow(eng, workflow(warm, kind=k, seconds=warm.durations, name="warm-up"), timeout=60)
        for n in sizes:
            dag = grouped_dag(n)
            wf = workflow(dag, kind=k, seconds=dag.durations, name=f"local-{n}")
            t0 = time.perf_counter()
            r = eng.run(wf, {}, timeout=max(120.0, n * 1.0))
            wall = time.perf_counter() - t0
            out[str(n)] = {"status": r.status, "seconds": round(wall, 3),
                           "ms_per_step": round(wall * 1000 / n, 2) if r.status == "SUCCEEDED" else None}
            log(f"   engine run, {n} steps: {r.status} in {wall:.2f} s")
    return out


def nonsp_runs(n: int, repeats: int, *, log: Callable[[str], None]) -> dict[str, Any]:
    """Run one non-series-parallel DAG ``repeats`` times; count the runs that hang."""
    k = kind()
    dag = random_layered(random.Random(n), 0, n)
    statuses: list[str] = []
    seconds: list[float] = []
    timeout = 60.0
    with local_engine() as eng:
        locked = _dynamodb_locked()
        wf = workflow(dag, kind=k, seconds={s: 0 for s in dag.steps}, name=f"nonsp-{n}")
        for i in range(repeats):
            r = eng.run(wf, {}, timeout=timeout)
            statuses.append(r.status)
            seconds.append(round(r.seconds, 2))
            log(f"   non-series-parallel run {i + 1}/{repeats}, {n} steps: {r.status} in {r.seconds:.1f} s")
    ok = [s for s, st in zip(seconds, statuses, strict=True) if st == "SUCCEEDED"]
    return {"dag": dag.name, "steps": n, "runs": repeats, "succeeded": len(ok),
            "hung": sum(st != "SUCCEEDED" for st in statuses), "timeout_s": timeout, "statuses": statuses,
            "ms_per_step": round(min(ok) * 1000 / n, 2) if ok else None,
            "dynamodb_lock_active": locked}


def cli_runs(sizes: list[int], *, log: Callable[[str], None]) -> dict[str, Any]:
    """``boternity run FILE --json`` as a command: the wall time a user waits."""
    k = kind()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="boternity-bench-cli-") as d:
        for n in sizes:
            dag = grouped_dag(n)
            path = Path(d) / f"local-{n}.yaml"
            path.write_text(json.dumps(workflow_doc(dag, kind="skill" if k == "skill" else "wait",
                                                    seconds=dag.durations, name=f"cli-{n}")))
            cmd = [sys.executable, "-c", "import sys; from boternity.cli.main import main; sys.exit(main())",
                   "run", str(path), "--json", "--skills", str(SKILLS_DIR)]
            t0 = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(180, n * 2), cwd=d, check=False)
                wall = time.perf_counter() - t0
                status = "SUCCEEDED" if p.returncode == 0 else f"exit {p.returncode}"
                note = None if p.returncode == 0 else (p.stderr.strip().splitlines() or [""])[-1][:200]
            except subprocess.TimeoutExpired:
                wall, status, note = time.perf_counter() - t0, "timeout", "no result"
            out[str(n)] = {"status": status, "wall_s": round(wall, 3), "note": note}
            log(f"   boternity run, {n} steps: {status} in {wall:.2f} s")
    return out


# ----------------------------------------------------------------------------- api trigger


def rest_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A minimal but complete API Gateway REST (v1) proxy event."""
    now = dt.datetime.now(dt.UTC)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": headers or None, "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench", "resourceId": "r1", "resourcePath": "/{proxy+}", "httpMethod": method,
            "path": f"/prod{path}", "stage": "prod", "requestId": uuid.uuid4().hex,
            "extendedRequestId": uuid.uuid4().hex[:16], "protocol": "HTTP/1.1",
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "benchmarks", "accountId": "123456789012",
                         "caller": "AIDAEXAMPLE", "user": "AIDAEXAMPLE",
                         "userArn": "arn:aws:iam::123456789012:user/bench", "accessKey": "AKIAEXAMPLE",
                         "cognitoIdentityId": None, "cognitoIdentityPoolId": None, "apiKey": None, "apiKeyId": None},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


@contextlib.contextmanager
def _local_cloud(engine: Any) -> Iterator[None]:
    """What ``boternity serve`` sets up inside the engine's moto for the api function."""
    from boternity.local import cloud_patches
    from boternity.local.server import prepare_local_cloud

    cloud_patches.apply()
    env = prepare_local_cloud(engine)
    env["BOTERNITY_TRIGGER_FUNCTION_ARN"] = cloud_patches.install_trigger_function(role_arn=engine.role_arn)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def api_trigger(calls: int, *, log: Callable[[str], None]) -> dict[str, Any]:
    if importlib.util.find_spec("boternity.handlers.api") is None:
        return {"p50": None, "p99": None, "note": "boternity.handlers.api does not exist yet"}
    name = "bench-trigger"
    doc = {"name": name, "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]}
    samples: list[float] = []
    with local_engine() as eng, _local_cloud(eng):
        from boternity.handlers.api import lambda_handler

        put = lambda_handler(rest_event("PUT", f"/workflows/{name}", doc), None)
        if int(put["statusCode"]) not in (200, 201):
            return {"p50": None, "p99": None, "note": f"PUT /workflows failed: {put.get('body')}"}
        arn = json.loads(put["body"]).get("state_machine_arn") or next(
            m["stateMachineArn"] for m in eng.sfn.list_state_machines()["stateMachines"]
            if m["name"].endswith(name))
        for i in range(calls + 3):   # 3 warm-up calls, not timed
            event = rest_event("POST", f"/workflows/{name}/runs", {"i": i})
            t0 = time.perf_counter()
            resp = lambda_handler(event, None)
            elapsed = (time.perf_counter() - t0) * 1000
            if int(resp["statusCode"]) != 202:
                return {"p50": None, "p99": None, "note": f"POST returned {resp['statusCode']}: {resp.get('body')}"}
            if i >= 3:
                samples.append(elapsed)
            _drain(eng, arn)
    log(f"   api trigger: {len(samples)} calls")
    return {"p50": round(percentile(samples, 50) or 0, 2), "p99": round(percentile(samples, 99) or 0, 2),
            "mean": round(sum(samples) / len(samples), 2), "max": round(max(samples), 2), "calls": len(samples),
            "note": "POST /workflows/{name}/runs through the api handler (REST proxy event), in-process on moto"}


def _drain(eng: Any, arn: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not eng.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
            return
        time.sleep(0.01)


# ----------------------------------------------------------------------------- section


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    sizes = [10, 100] if quick else [10, 100, 500]
    runs = engine_runs(sizes, log=log)
    ms = {str(n): runs.get(str(n), {}).get("ms_per_step") for n in (10, 100, 500)}
    notes = {}
    if quick:
        notes["500"] = "not measured in --quick mode"
    cli = cli_runs([10] if quick else sizes, log=log)
    nonsp = None if quick else nonsp_runs(100, 5, log=log)
    api = api_trigger(20 if quick else 100, log=log)
    result: dict[str, Any] = {
        "step_kind": kind(),
        "shape": f"groups of {GROUP} parallel steps, each group after the whole previous one (series-parallel)",
        "ms_per_step": ms,
        "notes": notes,
        "engine_runs": runs,
        "cli_wall_s": {n: c["wall_s"] if c["status"] == "SUCCEEDED" else None for n, c in cli.items()},
        "cli_runs": cli,
        "non_series_parallel": nonsp,
        "dynamodb_lock_active_during_runs": _dynamodb_locked() if nonsp is None else nonsp["dynamodb_lock_active"],
        "api_trigger": api,
    }
    log(_render(result))
    return result


def _render(res: dict[str, Any]) -> str:
    rows = []
    for n in ("10", "100", "500"):
        er = res["engine_runs"].get(n)
        cli = res["cli_runs"].get(n)
        rows.append([n, er["seconds"] if er else None, res["ms_per_step"].get(n),
                     cli["wall_s"] if cli else None, (er or {}).get("status") or res["notes"].get(n, "-")])
    out = [f"4. Local engine: {res['step_kind']} steps, {res['shape']}"]
    out.append(table(["steps", "engine.run s", "ms/step", "boternity run s", "status"], rows))
    ns = res.get("non_series_parallel")
    if ns:
        out.append(f"non-series-parallel {ns['dag']}: {ns['succeeded']}/{ns['runs']} runs finished, {ns['hung']} hung "
                   f"(stopped after {ns['timeout_s']:.0f} s); best {ns['ms_per_step']} ms/step")
    api = res["api_trigger"]
    if api.get("p50") is not None:
        out.append(f"api trigger (POST /workflows/{{name}}/runs, in-process on moto): p50 {api['p50']} ms, "
                   f"p99 {api['p99']} ms over {api['calls']} calls")
    else:
        out.append(f"api trigger: {api.get('note')}")
    return "\n".join(out)
