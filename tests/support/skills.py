"""Write skill folders for tests: ``SKILL.md``, optionally ``skill.wasm`` and ``.boternity-meta.toml``."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pathlib import Path

_UNSET: Any = object()


def skill_md(name: str, *, description: str = "A test skill", body: str = "Do the thing.\n",
             metadata: dict[str, Any] | None = None, **fields: Any) -> str:
    """The text of a SKILL.md: YAML frontmatter from the arguments, then ``body``.

    Extra keyword arguments become frontmatter fields (``allowed_tools`` -> ``allowed-tools``);
    pass ``description=None`` to leave the field out.
    """
    front: dict[str, Any] = {"name": name}
    if description is not None:
        front["description"] = description
    front.update({k.replace("_", "-"): v for k, v in fields.items()})
    if metadata is not None:
        front["metadata"] = metadata
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + body


def write_skill(skills_dir: Path, name: str, *, text: str | None = None, wasm: bytes | None = None,
                manifest: dict[str, Any] | str | None = None, checksum: str | None = _UNSET,
                **md: Any) -> Path:
    """Create ``skills_dir/name/`` and return it.

    ``text`` is the whole SKILL.md (else built by :func:`skill_md` from ``md``); ``wasm`` the
    bytes of skill.wasm. ``manifest`` is the .boternity-meta.toml (a dict of scalar fields, or raw
    TOML). ``checksum="auto"`` adds the correct checksum to the manifest (of skill.wasm when there
    is one, else of SKILL.md); any other string is written as given.
    """
    folder = skills_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    content = text if text is not None else skill_md(name, **md)
    (folder / "SKILL.md").write_text(content, encoding="utf-8")
    if wasm is not None:
        (folder / "skill.wasm").write_bytes(wasm)
    if checksum is not _UNSET:
        manifest = dict(manifest or {}) if not isinstance(manifest, str) else manifest
        assert isinstance(manifest, dict), "checksum= needs a dict manifest"
        if checksum == "auto":
            target = wasm if wasm is not None else content.encode("utf-8")
            checksum = "sha256:" + hashlib.sha256(target).hexdigest()
        manifest["checksum"] = checksum
    if manifest is not None:
        toml = manifest if isinstance(manifest, str) else "".join(
            f"{key} = {json.dumps(value)}\n" for key, value in manifest.items())
        (folder / ".boternity-meta.toml").write_text(toml, encoding="utf-8")
    return folder
