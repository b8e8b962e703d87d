"""Only ``boternity.store`` talks to DynamoDB and knows the table's key shapes.

The service, handlers, runtime and local engine reach run records, approvals, the registry,
concurrency slots, the queue and start-once claims through the store's named methods. The moto
patches are exempt: they patch the emulated DynamoDB itself. Read from the source (ast), so a
function-level import or a call on a path no test exercises is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "core" / "boternity"
EXEMPT = {"local/moto_patches.py", "local/cloud_patches.py", "local/fast_dynamodb.py"}

# Table and client methods of the DynamoDB API (boto3 resource and low-level client spellings).
DYNAMODB_METHODS = {
    "put_item", "update_item", "get_item", "delete_item", "query", "scan", "transact_write_items",
    "transact_get_items", "batch_write_item", "batch_get_item", "batch_writer", "execute_statement",
    "execute_transaction", "create_table", "Table",
}
# The first part of every partition or sort key the store writes (store/keys.py).
KEY_PREFIXES = ("RUN#", "STEP#", "ATTEMPT#", "SYNC#", "APPROVAL#", "APPROVALS#", "CONC#", "QUEUE#", "WF#", "HOOK#", "IDEM#")
KEY_CONSTANTS = {"FILEWATCH", "WORKFLOWS"}


def storage_code(source: str) -> list[str]:
    """What in ``source`` talks to DynamoDB or spells a key, as ``line: what`` strings."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in DYNAMODB_METHODS:
                found.append(f"{node.lineno}: .{name}(...)")
            first = node.args[0] if node.args else None
            if (name in ("resource", "client") and isinstance(first, ast.Constant)
                    and first.value == "dynamodb"):
                found.append(f"{node.lineno}: {name}('dynamodb')")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("boto3.dynamodb"):
            found.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import) and any(a.name.startswith("boto3.dynamodb") for a in node.names):
            found.append(f"{node.lineno}: import boto3.dynamodb...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith(KEY_PREFIXES) or text in KEY_CONSTANTS:
                found.append(f"{node.lineno}: key {text!r}")
    return sorted(found, key=lambda hit: int(hit.split(":", 1)[0]))


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "store"
                  and p.relative_to(PACKAGE).as_posix() not in EXEMPT)


def test_no_module_outside_the_store_calls_dynamodb_or_builds_a_key() -> None:
    modules = package_modules()
    assert len(modules) > 50, f"expected the whole package under {PACKAGE}, found {len(modules)} modules"
    offenders = {p.relative_to(PACKAGE).as_posix(): hits
                 for p in modules if (hits := storage_code(p.read_text(encoding="utf-8")))}
    assert offenders == {}, "storage code outside boternity.store (move it behind a store method):\n" + "\n".join(
        f"  {path}:{hit}" for path, hits in offenders.items() for hit in hits)


@pytest.mark.parametrize("snippet", [
    pytest.param("table.put_item(Item=item)", id="table-write"),
    pytest.param("client.transact_write_items(TransactItems=[])", id="transaction"),
    pytest.param("boto3.resource('dynamodb').Table(name)", id="resource"),
    pytest.param("ddb = boto3.client('dynamodb', region_name='us-east-1')", id="client"),
    pytest.param("from boto3.dynamodb.conditions import Key", id="key-condition"),
    pytest.param("import boto3.dynamodb.types", id="dynamodb-types"),
    pytest.param("key = {'pk': f'RUN#{run_id}', 'sk': 'RUN'}", id="run-key"),
    pytest.param("pk = 'FILEWATCH'", id="file-watch-partition"),
])
def test_the_scan_catches_each_kind_of_storage_code(snippet: str) -> None:
    assert storage_code(snippet), f"not caught: {snippet}"


def test_the_scan_leaves_ordinary_code_alone() -> None:
    source = ('"""Runs: ``RUN#<run>`` items live in the store."""\n'
              "sfn.start_execution(stateMachineArn=arn, name=run_id)\n"
              "text = f'run {run_id} #{n}'\n"
              "records.create_run(run_id, workflow, slot_limit=2)\n")
    assert storage_code(source) == []
