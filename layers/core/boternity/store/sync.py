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

# A waiter that is a gate (several producers awaited at once), not a task token.
_GATE = "gate:"
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
                                       ":x": {"N": self._expiry()}},
            ReturnValues="ALL_NEW",
        )
        tokens = resp["Attributes"].get("waiters", {}).get("SS", [])
        sent = 0
        for token in tokens:
            if token.startswith(_GATE):
                consumer = json.loads(token[len(_GATE):])
                sent += self._arrive(run_id, consumer, iteration, step_id)
            else:
                self._send(token, body)
                sent += 1
        return sent

    def gate(self, run_id: str, consumer: str, iteration: str, producers: list[str], token: str) -> bool:
        """Wait for several producers at once: register the gate with each, then open it with the
        token and the producers already done. Whoever completes the set (this call, or the last
        producer's signal) sends the token with every producer's record. Returns True if it was
        this call."""
        ref = _GATE + json.dumps(consumer)
        done: list[str] = []
        for producer in producers:
            resp = self.dynamodb.update_item(
                TableName=self.table_name, Key=self._key(run_id, producer, iteration),
                UpdateExpression="ADD waiters :w SET expires_at = :x",
                ExpressionAttributeValues={":w": {"SS": [ref]}, ":x": {"N": self._expiry()}},
                ReturnValues="ALL_NEW",
            )
            if resp["Attributes"].get("done", {}).get("BOOL"):
                done.append(producer)
        values: dict[str, Any] = {":t": {"S": token}, ":n": {"SS": list(producers)}, ":x": {"N": self._expiry()}}
        update = "SET #t = :t, needed = :n, expires_at = :x"
        if done:
            update += " ADD arrived :a"
            values[":a"] = {"SS": done}
        resp = self.dynamodb.update_item(
            TableName=self.table_name, Key=keys.sync_gate(run_id, consumer, iteration),
            UpdateExpression=update, ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
        )
        return self._release_if_complete(run_id, iteration, resp["Attributes"])

    def _arrive(self, run_id: str, consumer: str, iteration: str, producer: str) -> int:
        resp = self.dynamodb.update_item(
            TableName=self.table_name, Key=keys.sync_gate(run_id, consumer, iteration),
            UpdateExpression="ADD arrived :p SET expires_at = :x",
            ExpressionAttributeValues={":p": {"SS": [producer]}, ":x": {"N": self._expiry()}},
            ReturnValues="ALL_NEW",
        )
        return int(self._release_if_complete(run_id, iteration, resp["Attributes"]))

    def _release_if_complete(self, run_id: str, iteration: str, gate: dict[str, Any]) -> bool:
        """Send the gate's token if it has one and every producer it needs has arrived. Two
        writers can both see it complete (a producer's signal retried); the second send is
        refused by Step Functions and ignored."""
        token = gate.get("token", {}).get("S")
        needed = gate.get("needed", {}).get("SS", [])
        if not token or not needed or not set(needed) <= set(gate.get("arrived", {}).get("SS", [])):
            return False
        records: dict[str, Any] = {}
        for producer in sorted(needed):
            item = self.dynamodb.get_item(TableName=self.table_name, Key=self._key(run_id, producer, iteration),
                                          ConsistentRead=True).get("Item") or {}
            records[producer] = json.loads(item["record"]["S"])
        self._send(token, json.dumps(records))
        return True

    def _expiry(self) -> str:
        return str(int(time.time()) + RECORD_TTL_SECS)

    def wait(self, run_id: str, step_id: str, iteration: str, token: str) -> bool:
        """Register a waiter; if the step is already done, answer at once. Returns True if it was done."""
        resp = self.dynamodb.update_item(
            TableName=self.table_name, Key=self._key(run_id, step_id, iteration),
            UpdateExpression="ADD waiters :w SET expires_at = :x",
            ExpressionAttributeValues={":w": {"SS": [token]}, ":x": {"N": self._expiry()}},
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
