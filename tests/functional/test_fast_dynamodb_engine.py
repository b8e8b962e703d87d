"""The local engine on fast_dynamodb: the same workflows give the same runs and step records as on
moto's DynamoDB, and the run table stays on the fast path for the whole run (nothing the engine,
its handlers or its stores ask goes to moto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from boternity.local import fast_dynamodb
from boternity.model import parse_workflow
from boternity.validate import check_workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Written from the clock, so they differ between any two runs.
_CLOCK_FIELDS = {"started_at", "ended_at", "last_attempt_at", "expires_at", "at", "seconds", "decided_at", "until",
                 "ends_at"}


def _noop(step_id: str, **kw: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "wait", "config": {"seconds": 0}, **kw}


def _gated(step_id: str, **kw: Any) -> dict[str, Any]:
    # A condition (even "true") means something could skip it: not planned ahead, so its end is
    # signalled to the other branch (compiler/waits.py plans only static waits).
    return _noop(step_id, condition="true", **kw)


WORKFLOWS = {
    # non-series-parallel: the cross-branch signals of store/sync.py
    "n-shape": ([_gated("a"), _gated("b"), _gated("c", depends_on=["a"]), _gated("d", depends_on=["a", "b"])], None),
    # the same of static waits: planned ahead by one task, records written whole
    "n-shape-planned": ([_noop("a"), _noop("b"), _noop("c", depends_on=["a"]), _noop("d", depends_on=["a", "b"])],
                        None),
    "conditional": ([
        {"id": "route", "type": "conditional",
         "config": {"condition": "trigger.amount > 10", "then_steps": ["big"], "else_steps": ["small"]}},
        _noop("big"), _noop("small"), _noop("join", depends_on=["big", "small"])], {"amount": 50}),
    "continue-on-error": ([
        {"id": "fetch", "type": "http", "continue_on_error": True, "config": {"url": "http://127.0.0.1:9/x"}},
        _noop("after", depends_on=["fetch"])], None),
    "loop": ([
        {"id": "again", "type": "loop",
         "config": {"condition": "loop.iteration < 3", "max_iterations": 10, "body_steps": ["tick"]}},
        _noop("tick"), _noop("after", depends_on=["again"])], None),
}


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in _CLOCK_FIELDS}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _runs(tmp_path: Path, *, fast: bool) -> dict[str, Any]:
    from boternity.local.engine import TABLE, LocalEngine

    env = {"BOTERNITY_SKILLS_DIR": str(EXAMPLES / "skills"), "BOTERNITY_BOTS_DIR": str(EXAMPLES / "bots")}
    out: dict[str, Any] = {}
    if fast:
        fast_dynamodb.enable()   # before the engine creates its table, as the engine will do
    try:
        with LocalEngine(base_dir=tmp_path, blob_dir=tmp_path / "blobs", fast_retry=True, env=env) as eng:
            for name, (steps, payload) in WORKFLOWS.items():
                w = parse_workflow({"name": name, "steps": steps})
                check_workflow(w)
                result = eng.run(w, payload, timeout=60)
                out[name] = _comparable({"status": result.status, "error": result.error, "output": result.output,
                                         "steps": sorted(result.steps, key=lambda s: (s["step_id"],
                                                                                      str(s.get("iteration")))),
                                         "record": {k: v for k, v in (result.record or {}).items()
                                                    if k not in ("run_id", "execution_arn", "gsi1sk")}})
            if fast:
                assert fast_dynamodb.held_tables() == [TABLE], fast_dynamodb.handovers()
    finally:
        if fast:
            fast_dynamodb.disable()
    return out


def test_the_engine_runs_the_same_on_fast_dynamodb(tmp_path: Path) -> None:
    on_moto = _runs(tmp_path / "moto", fast=False)
    on_fast = _runs(tmp_path / "fast", fast=True)
    assert {name: run["status"] for name, run in on_fast.items()} == {
        "n-shape": "SUCCEEDED", "n-shape-planned": "SUCCEEDED", "conditional": "SUCCEEDED",
        "continue-on-error": "SUCCEEDED", "loop": "SUCCEEDED"}
    assert on_fast == on_moto
