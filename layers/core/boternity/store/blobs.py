"""Claim-check storage for outputs too large to travel in the state.

A stored value becomes ``{"$ref": "blob:<sha256>", "size": n}`` in the state; templates and
conditions resolve it transparently. The reference names the content, not the run: it is short and
of fixed length (at most 100 bytes, whatever the bucket, folder, run or step ids), so the compiler can
bound the state of a run with hundreds of steps, and a sub-workflow's references resolve in its
parent. Content lives under ``runs/<sha256>.json`` (the bucket's expiry rule covers ``runs/``;
storing the same content again refreshes it) and is checked against its hash when read. S3 in the
cloud (``BOTERNITY_BUCKET``), a local folder locally (``BOTERNITY_BLOB_DIR``). References written
before (a full ``s3://`` or ``file://`` URI) still resolve.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Protocol

SCHEME = "blob:"
_DIGEST = re.compile(r"[0-9a-f]{64}")
# The longest reference claim_check writes: {"$ref":"blob:<64 hex>","size":<up to 12 digits>}.
MAX_REF_BYTES = len(json.dumps({"$ref": SCHEME + "0" * 64, "size": 10**12 - 1}, separators=(",", ":")))


class BlobIntegrityError(ValueError):
    """Stored content does not match the hash its reference names."""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> str: ...
    def get(self, uri: str) -> bytes: ...
    def uri(self, key: str) -> str: ...


class LocalBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def put(self, key: str, data: bytes) -> str:
        """Write a blob readable by this user only: outputs can hold whatever a step fetched."""
        path = self.root / key
        for folder in [Path(), *reversed(path.relative_to(self.root).parents[:-1])]:
            (self.root / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path.resolve().as_uri()

    def uri(self, key: str) -> str:
        return (self.root / key).resolve().as_uri()

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
        return self.uri(key)

    def uri(self, key: str) -> str:
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


def blob_key(digest: str) -> str:
    return f"runs/{digest}.json"


def claim_check(value: Any, *, limit: int, store: BlobStore) -> Any:
    """Return the value itself if it is small enough, else a reference to a stored copy."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) <= limit:
        return value
    digest = hashlib.sha256(data).hexdigest()
    store.put(blob_key(digest), data)
    return {"$ref": SCHEME + digest, "size": len(data)}


def execution_input(text: str, store: BlobStore | None = None) -> str:
    """The input to start an execution with: the trigger payload, or a reference to it when it is
    too big to sit in every state of the run next to the step records."""
    from boternity.compiler.limits import TRIGGER_INLINE_BYTES

    data = text.encode()
    if len(data) <= TRIGGER_INLINE_BYTES:
        return text
    ref = reference_to(data)
    (store or blob_store_from_env()).put(blob_key(str(ref["$ref"])[len(SCHEME):]), data)
    return json.dumps(ref)


def reference_to(data: bytes) -> dict[str, Any]:
    """The claim-check reference of ``data`` (content-addressed: the same bytes, the same reference),
    without storing anything."""
    return {"$ref": SCHEME + hashlib.sha256(data).hexdigest(), "size": len(data)}


def read_ref(store: BlobStore, ref: dict[str, Any]) -> bytes:
    """The stored bytes a reference stands for, checked against its hash."""
    target = str(ref["$ref"])
    if not target.startswith(SCHEME):
        data = store.get(target)   # a full URI, as written before content addressing
        expected = ref.get("sha256")
    else:
        expected = target[len(SCHEME):]
        if not _DIGEST.fullmatch(expected):
            raise ValueError(f"malformed blob reference {target[:80]!r}")
        data = store.get(store.uri(blob_key(expected)))
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise BlobIntegrityError(f"stored content for {target[:80]} does not match its hash")
    return data


def make_resolver(store: BlobStore):  # noqa: ANN201 - a small closure
    cache: dict[str, Any] = {}

    def resolve(ref: dict[str, Any]) -> Any:
        key = str(ref["$ref"])
        if key not in cache:
            cache[key] = json.loads(read_ref(store, ref))
        return cache[key]

    return resolve
