"""The hostile workflow corpus (tests/support/hostile_corpus.py) sent to ``PUT /workflows/{name}``:
each is a 4xx with the JSON error body naming what and where, in bounded time, and registers
nothing (no registry item, no state machine).
"""

from __future__ import annotations

import json
import time

import pytest

from boternity.handlers.api import lambda_handler as api
from tests.support.apigw import call, local_cloud
from tests.support.hostile_corpus import WORKFLOWS, HostileWorkflow

SECONDS_MAX = 30        # generous: proves a bound, not a speed


def ids(case: HostileWorkflow) -> str:
    return case.id


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory):
    from boternity.local.engine import LocalEngine

    base = tmp_path_factory.mktemp("hostile-workflows")
    with LocalEngine(base_dir=base, blob_dir=base / "blobs", fast_retry=True) as engine, local_cloud(engine):
        yield engine


def reported_code(error: dict) -> str:
    """The specific code: a workflow's problems come as one validation_failed listing each."""
    return error["details"][0]["code"] if error["code"] == "validation_failed" else error["code"]


@pytest.mark.parametrize("case", WORKFLOWS, ids=ids)
def test_put_workflow_refuses_and_registers_nothing(case: HostileWorkflow, cloud):
    t0 = time.monotonic()
    r = call(api, "PUT", "/workflows/hostile", body=case.content, binary=True,
             headers={"Content-Type": case.content_type})
    assert time.monotonic() - t0 < SECONDS_MAX
    assert r.status == case.status, r.text[:500]
    error = r.error
    assert reported_code(error) == case.code
    said = error["message"] + " " + json.dumps(error["details"], ensure_ascii=False)
    assert (case.api_says or case.cli_says) in said, said[:500]
    assert call(api, "GET", "/workflows/hostile").status == 404
    assert cloud.sfn.list_state_machines()["stateMachines"] == []
