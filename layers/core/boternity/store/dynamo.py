"""DynamoDB plumbing shared by the store modules: handles, failure codes, plain values.

Only ``boternity.store`` talks to DynamoDB; the service layer sees the named methods of the store
modules and the outcomes they return, never a ``ClientError`` code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


def resource() -> Any:
    # A new resource per store object: boto3 resources are cheap, and creating them at call time
    # keeps them valid across the emulator's (moto's) per-test backends.
    return boto3.resource("dynamodb")


def client(**kwargs: Any) -> Any:
    """A low-level client: Powertools writes typed attribute values (``{"S": ...}``), which the
    resource's client would serialise a second time; table creation uses it too."""
    return boto3.client("dynamodb", **kwargs)


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancellation_codes(exc: ClientError) -> list[str]:
    """The per-item reasons of a cancelled TransactWriteItems, in request order."""
    return [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons") or []]


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float, recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "as_integer_ratio") and not isinstance(value, bool | int | float):
        return int(value) if value == int(value) else float(value)
    return value


def query_all(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a query matches, across pages, as stored."""
    items: list[dict[str, Any]] = []
    while True:
        resp = table.query(**kwargs)
        items += resp.get("Items", [])
        if "LastEvaluatedKey" not in resp:
            return items
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
