"""Where bots and skills come from: a local folder, or the project bucket (cached per container)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from boternity.errors import StepFailed

# \Z, not $: "$" also matches before a final newline, and "writer\n" passed as a plain segment.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_CACHE = Path(os.environ.get("BOTERNITY_ASSET_CACHE", "/tmp/boternity-assets"))


def asset_dir(kind: str, name: str) -> Path | None:
    """The folder holding bots/<name> or skills/<name>, or None when there is none configured.

    Locally ``BOTERNITY_BOTS_DIR`` / ``BOTERNITY_SKILLS_DIR`` point at folders; in the cloud the
    folder is synced from ``s3://$BOTERNITY_BUCKET/<kind>/<name>/`` into /tmp once per container.
    """
    if not _SEGMENT.match(name) or ".." in name:
        # The name becomes a folder under the cache and an S3 prefix: it must stay one plain segment,
        # or a bucket object under "bots/../../x/" would be written outside the cache.
        code = "agent.bot_invalid" if kind == "bots" else "skill.invalid"   # the codes the loaders use
        raise StepFailed(f"{kind[:-1]} name {name!r:.80} is not a plain folder name", code=code,
                         details={"field": kind[:-1]})
    local = os.environ.get(f"BOTERNITY_{kind.upper()}_DIR")
    if local:
        return Path(local)
    bucket = os.environ.get("BOTERNITY_BUCKET")
    if not bucket:
        return None
    target = _CACHE / kind
    if not (target / name).is_dir():
        _download(bucket, f"{kind}/{name}/", target / name)
    return target


def _download(bucket: str, prefix: str, dest: Path) -> None:
    import boto3

    s3 = boto3.client("s3")
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix):]
            if not rel or rel.endswith("/") or ".." in Path(rel).parts:
                continue
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(path))
