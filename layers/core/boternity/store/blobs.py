"""Claim-check storage for outputs too large to travel in the state.

A stored value becomes ``{"$ref": "<uri>", "size": n, "sha256": "..."}`` in the state; templates
and conditions resolve it transparently. S3 in the cloud (``BOTERNITY_BUCKET``), a local folder
locally (``BOTERNITY_BLOB_DIR``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> str: ...
    def get(self, uri: str) -> bytes: ...


class LocalBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def put(self, key: str, data: bytes) -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path.resolve().as_uri()

    def get(self, uri: str) -> bytes:
        if not uri.startswith("file://"):
            raise ValueError(f"not a local blob: {uri}")
        path = Path(uri[len("file://"):]).resolve()
        # Only files this store wrote: a crafted reference must not read anything else.
        if self.root.resolve() not in path.parents:
            raise ValueError("blob reference outside the blob folder")
        return path.read_bytes()


class S3BlobStore:
    def __init__(self, bucket: str, client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.client = client or boto3.client("s3")

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")
        return f"s3://{self.bucket}/{key}"

    def get(self, uri: str) -> bytes:
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            raise ValueError("blob reference outside the project bucket")
        return self.client.get_object(Bucket=self.bucket, Key=uri[len(prefix):])["Body"].read()


def blob_store_from_env() -> BlobStore:
    if os.environ.get("BOTERNITY_BUCKET"):
        return S3BlobStore(os.environ["BOTERNITY_BUCKET"])
    return LocalBlobStore(os.environ.get("BOTERNITY_BLOB_DIR", ".boternity/blobs"))


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and "$ref" in value


def claim_check(value: Any, *, limit: int, key: str, store: BlobStore) -> Any:
    """Return the value itself if it is small enough, else a reference to a stored copy."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) <= limit:
        return value
    uri = store.put(key, data)
    return {"$ref": uri, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def make_resolver(store: BlobStore):  # noqa: ANN201 - a small closure
    cache: dict[str, Any] = {}

    def resolve(ref: dict[str, Any]) -> Any:
        uri = ref["$ref"]
        if uri not in cache:
            cache[uri] = json.loads(store.get(uri))
        return cache[uri]

    return resolve
