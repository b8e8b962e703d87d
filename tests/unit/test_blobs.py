"""Claim-check references: short, content-addressed, checked when read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from boternity.compiler import limits
from boternity.store.blobs import (
    MAX_REF_BYTES,
    BlobIntegrityError,
    LocalBlobStore,
    claim_check,
    make_resolver,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_small_values_stay_inline(store: LocalBlobStore) -> None:
    value = {"title": "short"}
    assert claim_check(value, limit=1000, store=store) is value
    assert not (store.root / "runs").exists()


def test_a_large_value_becomes_a_short_reference_named_by_its_content(store: LocalBlobStore) -> None:
    value = {"text": "x" * 50_000}
    ref = claim_check(value, limit=1000, store=store)
    data = json.dumps(value, separators=(",", ":")).encode()
    assert ref == {"$ref": "blob:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert len(json.dumps(ref, separators=(",", ":"))) <= MAX_REF_BYTES <= limits.MAX_REF_BYTES
    assert make_resolver(store)(ref) == value


def test_the_reference_does_not_grow_with_the_folder_path(tmp_path: Path) -> None:
    deep = LocalBlobStore(tmp_path / ("d" * 100) / ("e" * 100) / "blobs")
    ref = claim_check("y" * 5000, limit=10, store=deep)
    assert len(json.dumps(ref, separators=(",", ":"))) <= MAX_REF_BYTES


def test_the_same_content_is_stored_once(store: LocalBlobStore) -> None:
    a = claim_check(["same"] * 1000, limit=10, store=store)
    b = claim_check(["same"] * 1000, limit=10, store=store)
    assert a == b
    assert len(list((store.root / "runs").iterdir())) == 1


def test_tampered_content_is_refused(store: LocalBlobStore) -> None:
    ref = claim_check({"n": list(range(1000))}, limit=10, store=store)
    path = store.root / "runs" / f"{ref['$ref'].removeprefix('blob:')}.json"
    path.write_text(json.dumps({"n": "changed"}))
    with pytest.raises(BlobIntegrityError, match="does not match its hash"):
        make_resolver(store)(ref)


@pytest.mark.parametrize("target", ["blob:../../etc/passwd", "blob:" + "A" * 64, "blob:"])
def test_malformed_references_are_refused_before_any_read(store: LocalBlobStore, target: str) -> None:
    with pytest.raises(ValueError, match="malformed blob reference"):
        make_resolver(store)({"$ref": target, "size": 1})


def test_references_written_before_content_addressing_still_resolve(store: LocalBlobStore) -> None:
    data = json.dumps({"old": True}).encode()
    uri = store.put("runs/run-1/fetch/0-0.json", data)
    ref = {"$ref": uri, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert make_resolver(store)(ref) == {"old": True}


def test_a_full_uri_outside_the_store_is_refused(store: LocalBlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    with pytest.raises(ValueError, match="outside the blob folder"):
        make_resolver(store)({"$ref": outside.as_uri(), "size": 2})


def test_local_blobs_are_readable_by_their_owner_only(store: LocalBlobStore) -> None:
    import os
    import stat

    uri = store.put("runs/r1/fetch.json", b'{"secret": "output"}')
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode)
             for p in (store.root, store.root / "runs", store.root / "runs" / "r1", store.root / "runs" / "r1" / "fetch.json")}
    assert modes == {"blobs": 0o700, "runs": 0o700, "r1": 0o700, "fetch.json": 0o600}
    assert store.get(uri) == b'{"secret": "output"}'
