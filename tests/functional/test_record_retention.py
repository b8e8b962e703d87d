"""Every item a run writes expires with it: DynamoDB's TTL (`expires_at`) is on the run, its
steps, attempts, signals and approvals, so the table does not grow without limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from boternity.model import parse_workflow
from boternity.validate import check_workflow


def test_every_item_of_a_run_carries_an_expiry(engine):
    w = parse_workflow({"name": "ttl", "steps": [
        {"id": "a", "type": "wait", "config": {"seconds": 0}},
        {"id": "b", "type": "code", "depends_on": ["a"], "for_each": "{{ trigger.items }}",
         "config": {"language": "javascript", "source": "input", "input": "{{ item }}"}},
        {"id": "c", "type": "code", "continue_on_error": True, "retry": {"max_attempts": 2},
         "config": {"language": "javascript", "source": "throw new Error('no')"}},
    ]})
    check_workflow(w)
    before = int(time.time())
    result = engine.run(w, {"items": [1, 2]}, timeout=60)
    assert result.status == "SUCCEEDED", result.cause
    items = engine.runs.table.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"RUN#{result.run_id}"})["Items"]
    kinds = {str(i["sk"]).split("#")[0] for i in items}
    assert {"RUN", "STEP", "ATTEMPT"} <= kinds
    missing = [i["sk"] for i in items if "expires_at" not in i]
    assert missing == []
    for item in items:
        assert before + 89 * 86_400 <= int(item["expires_at"]) <= int(time.time()) + 90 * 86_400 + 5


def test_the_retention_comes_from_the_environment():
    code = "from boternity.store.run_records import RECORD_TTL_SECS as t; print(t)"
    for value, days in (("7", 7), ("", 90), ("zero", 90), ("0", 90), ("4000", 90)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "BOTERNITY_RECORD_RETENTION_DAYS": value}).stdout
        assert int(out) == days * 86_400, value
