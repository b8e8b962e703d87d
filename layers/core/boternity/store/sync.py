"""Signals between Parallel branches: how a non-series-parallel DAG keeps exact dataflow.

A producer marks itself done with its record; a consumer in another branch registers its task
token. Each side does one atomic UpdateItem that returns the item as it is afterwards, so
whichever writes second sees the other and sends the token: the consumer never waits for a
signal that has already been given, and never misses one. A token sent twice gets
``InvalidToken``/``TaskTimedOut`` the second time, which is harmless and ignored.

Task tokens live only in this table (TTL'd) and in the Step Functions API calls: never in
logs, run records or responses.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from boternity.store import dynamo, keys
from boternity.store.run_records import RECORD_TTL_SECS

# Errors meaning "this token was already answered or its task is gone": fine for a signal.
_GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


@dataclass
class SyncStore:
    table_name: str
    dynamodb: Any = None
    sfn: Any = None

    def __post_init__(self) -> None:
        self.dynamodb = self.dynamodb or dynamo.client()
        self.sfn = self.sfn or boto3.client("stepfunctions")

    def _key(self, run_id: str, step_id: str, iteration: str) -> dict[str, Any]:
        return keys.sync(run_id, step_id, iteration)

    def signal(self, run_id: str, step_id: str, iteration: str, record: dict[str, Any]) -> int:
        """Mark the step done and wake every waiter. Returns how many tokens were sent."""
        body = json.dumps(record)
        resp = self.dynamodb.update_item(
            TableName=self.table_name, Key=self._key(run_id, step_id, iteration),
            UpdateExpression="SET done = :t, #r = :r, expires_at = :x",
            ExpressionAttributeNames={"#r": "record"},
            ExpressionAttributeValues={":t": {"BOOL": True}, ":r": {"S": body},
                                       ":x": {"N": str(int(time.time()) + RECORD_TTL_SECS)}},
            ReturnValues="ALL_NEW",
        )
        tokens = resp["Attributes"].get("waiters", {}).get("SS", [])
        for token in tokens:
            self._send(token, body)
        return len(tokens)

    def wait(self, run_id: str, step_id: str, iteration: str, token: str) -> bool:
        """Register a waiter; if the step is already done, answer at once. Returns True if it was done."""
        resp = self.dynamodb.update_item(
            TableName=self.table_name, Key=self._key(run_id, step_id, iteration),
            UpdateExpression="ADD waiters :w SET expires_at = :x",
            ExpressionAttributeValues={":w": {"SS": [token]}, ":x": {"N": str(int(time.time()) + RECORD_TTL_SECS)}},
            ReturnValues="ALL_NEW",
        )
        attrs = resp["Attributes"]
        if attrs.get("done", {}).get("BOOL"):
            self._send(token, attrs["record"]["S"])
            return True
        return False

    def _send(self, token: str, output: str) -> None:
        try:
            self.sfn.send_task_success(taskToken=token, output=output)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _GONE:
                raise
