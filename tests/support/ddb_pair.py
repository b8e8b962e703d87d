"""Two copies of the run table in one moto mock: ``moto`` answered by moto's own DynamoDB, ``fast``
by ``boternity.local.fast_dynamodb``. The same call goes to both and the answers must be equal."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from boternity.local import fast_dynamodb
from boternity.store.run_records import table_definition

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REGION = "us-east-1"
MOTO, FAST = "moto_table", "fast_table"


def normalised(answer: Any, table: str) -> Any:
    """An answer with what legitimately differs removed: request ids, the table's own name, and
    the order of a set's members (DynamoDB promises none; moto's follows Python's set order)."""
    if isinstance(answer, dict):
        out = {}
        for k, v in answer.items():
            if k == "ResponseMetadata":
                continue
            if k in ("SS", "NS") and isinstance(v, list):
                out[k] = sorted(v)
            else:
                out[k] = normalised(v, table)
        return out
    if isinstance(answer, list | tuple):
        return [normalised(v, table) for v in answer]
    if isinstance(answer, set):
        return sorted(answer, key=str)
    if isinstance(answer, str):
        # moto's messages name the table ("Invalid index: x for table: <name>")
        return re.sub(rf"\b{table}\b", "<table>", answer)
    return answer


def _retarget(kwargs: dict[str, Any], table: str) -> dict[str, Any]:
    out = copy.deepcopy(kwargs)
    if out.get("TableName") == FAST:
        out["TableName"] = table
    for entry in out.get("TransactItems") or []:
        for op in entry.values():
            if op.get("TableName") == FAST:
                op["TableName"] = table
    return out


class Pair:
    """The same low-level DynamoDB call against both tables."""

    def __init__(self) -> None:
        self.client = boto3.client("dynamodb", region_name=REGION)

    def call(self, operation: str, **kwargs: Any) -> tuple[str, Any]:
        """Call both; assert the answers (or errors) are equal; return ("ok"|"error"|"exception", answer)."""
        answers = [self._one(operation, _retarget(kwargs, t), t) for t in (MOTO, FAST)]
        assert answers[1] == answers[0], (
            f"{operation} {json.dumps(kwargs, default=str)}\n moto: {answers[0]}\n fast: {answers[1]}")
        return answers[0]

    def _one(self, operation: str, kwargs: dict[str, Any], table: str) -> tuple[str, Any]:
        try:
            return "ok", normalised(getattr(self.client, operation)(**kwargs), table)
        except ClientError as exc:
            return "error", normalised(exc.response, table)
        except Exception as exc:  # noqa: BLE001 - moto fails some malformed requests with a Python error
            return "exception", normalised(f"{type(exc).__name__}: {exc}", table)

    def scan_both(self) -> tuple[Any, Any]:
        """Every item of both tables, sorted, read by moto: the fast table is handed to it first,
        so this also proves a handover loses nothing."""
        fast_dynamodb.disable()
        out = []
        for t in (MOTO, FAST):
            items = self.client.scan(TableName=t, ConsistentRead=True)["Items"]
            out.append(sorted((normalised(i, t) for i in items), key=lambda i: json.dumps(i, sort_keys=True)))
        return out[0], out[1]


@contextlib.contextmanager
def table_pair(definition: Callable[[str], dict[str, Any]] = table_definition) -> Iterator[Pair]:
    """A fresh moto mock holding both tables (the run table's definition unless told otherwise),
    the fast one answered by fast_dynamodb."""
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**definition(MOTO))   # before enable(): moto's own
        fast_dynamodb.enable()
        try:
            client.create_table(**definition(FAST))
            assert fast_dynamodb.held_tables() == [FAST]
            yield Pair()
        finally:
            fast_dynamodb.disable()
