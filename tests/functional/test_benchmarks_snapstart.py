"""The cold start section's SnapStart verdict: which functions the measured imports say it pays for."""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks import __main__ as bench
from benchmarks import coldstart, dags


def _per(ms: float, boto3_ms: float = 100.0) -> dict[str, Any]:
    return {"ms": ms, "vs_boto3": round(ms / boto3_ms, 2)}


def test_snapstart_pays_where_init_is_several_times_a_boto3_import() -> None:
    per = {"boto3": _per(100), "agent": _per(800), "api": _per(130), "skill": _per(40),
           "skill+first_use": _per(90)}
    verdicts = coldstart.snapstart_verdicts(per)
    assert set(verdicts) == {"agent", "api", "skill"}
    assert {k: v["pays"] for k, v in verdicts.items()} == {"agent": True, "api": False, "skill": False}
    # The SDK a handler loads on its first step counts: it is what a snapshot would save.
    assert verdicts["skill"]["init_ms"] == 90 and verdicts["skill"]["vs_boto3"] == 0.9
    assert all(v["agrees"] for v in verdicts.values())


def test_a_heavy_first_use_sdk_makes_snapstart_pay_and_the_template_is_then_out_of_date() -> None:
    per = {"boto3": _per(100), "code": _per(40), "code+first_use": _per(400)}
    (verdict,) = coldstart.snapstart_verdicts(per).values()
    assert verdict["pays"] is True and verdict["in_template"] is False and verdict["agrees"] is False


def test_the_summary_says_whether_the_template_agrees() -> None:
    args = argparse.Namespace(quick=True, seed=dags.DEFAULT_SEED, only=["coldstart"])
    cold = {"snapstart": coldstart.snapstart_verdicts({"boto3": _per(100), "agent": _per(800)})}
    assert "SnapStart pays for agent (template.yaml agrees)" in bench.summary(bench.assemble(
        {"coldstart": cold}, args, {}))
