"""Registry items: workflows (``WF#<name>`` / ``WF``, listed under ``gsi1pk = WORKFLOWS``),
webhook paths (``HOOK#<path>`` / ``HOOK``) and file-watch triggers (``FILEWATCH`` /
``<workflow>#<index>``). What they hold is described in ``boternity.service.registry``.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from boternity.store import dynamo, keys
from boternity.store.dynamo import is_conditional_failure, plain, query_all


class WorkflowRecords:
    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self.table_name = table_name
        self.table = (resource or dynamo.resource()).Table(table_name)

    # ------------------------------------------------------------------ workflows
    def get(self, name: str) -> dict[str, Any] | None:
        """The workflow item as stored (keys included), or None."""
        return self.table.get_item(Key=keys.workflow(name), ConsistentRead=True).get("Item")

    @staticmethod
    def listing() -> dict[str, str]:
        """What every page key of the workflow listing carries (pins a page token to it)."""
        return {"gsi1pk": keys.WORKFLOWS_LIST}

    def page(self, *, limit: int, start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` workflow items by name from ``start`` on, and where the next page starts."""
        kwargs: dict[str, Any] = {"IndexName": "gsi1", "KeyConditionExpression": Key("gsi1pk").eq(keys.WORKFLOWS_LIST),
                                  "Limit": limit}
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = self.table.query(**kwargs)
        return resp.get("Items", []), resp.get("LastEvaluatedKey")

    def put(self, fields: dict[str, Any], *, expected_version: int | None) -> bool:
        """Write the workflow ``fields['name']``; ``expected_version`` None means "must not exist
        yet". False when that condition failed (another request changed it)."""
        item = {**keys.workflow(fields["name"]), **fields, **keys.workflow_index(fields["name"])}
        try:
            if expected_version is None:
                self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            else:
                self.table.put_item(Item=item, ConditionExpression="#v = :v",
                                    ExpressionAttributeNames={"#v": "version"},
                                    ExpressionAttributeValues={":v": expected_version})
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        self.table.delete_item(Key=keys.workflow(name))

    # ------------------------------------------------------------------ webhook index
    def hook(self, path_key: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key=keys.hook(path_key), ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def claim_hook(self, workflow: str, hook: dict[str, Any]) -> bool:
        """Point a webhook path at ``workflow``; False when another workflow owns it."""
        item = {**keys.hook(hook["path"]), "workflow": workflow, "path": hook["path"],
                "index": hook["index"], "auth_type": hook.get("auth_type") or "none",
                "secret_name": hook.get("secret_name"), "when": hook.get("when")}
        try:
            self.table.put_item(Item={k: v for k, v in item.items() if v is not None},
                                ConditionExpression="attribute_not_exists(pk) OR #w = :w",
                                ExpressionAttributeNames={"#w": "workflow"},
                                ExpressionAttributeValues={":w": workflow})
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            return False
        return True

    def release_hook(self, workflow: str, path: str) -> None:
        """Delete the path's item if ``workflow`` still owns it (another workflow's path stays)."""
        try:
            self.table.delete_item(Key=keys.hook(path), ConditionExpression="#w = :w",
                                   ExpressionAttributeNames={"#w": "workflow"},
                                   ExpressionAttributeValues={":w": workflow})
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    # ------------------------------------------------------------------ file-watch index
    def file_watchers(self) -> list[dict[str, Any]]:
        return [plain(i) for i in query_all(self.table, KeyConditionExpression=Key("pk").eq(keys.FILEWATCH_PK),
                                            ConsistentRead=True)]

    def set_file_watchers(self, workflow: str, watchers: list[dict[str, Any]]) -> None:
        """Replace the workflow's file-watch items by ``watchers``."""
        keep = set()
        for w in watchers:
            key = keys.file_watch(workflow, w["index"])
            keep.add(key["sk"])
            self.table.put_item(Item={**key, "workflow": workflow, "index": w["index"],
                                      "bucket": w["bucket"], "paths": w["paths"], "patterns": w["patterns"],
                                      **({"when": w["when"]} if w.get("when") else {})})
        for item in self.file_watchers():
            if item.get("workflow") == workflow and item["sk"] not in keep:
                self.table.delete_item(Key={"pk": keys.FILEWATCH_PK, "sk": item["sk"]})
