"""``skill`` steps: load a skill folder and run it, as a prompt or as sandboxed WebAssembly.

A skill is a folder ``<skills_dir>/<name>/`` holding:

- ``SKILL.md``: YAML frontmatter between two ``---`` lines, then a markdown body (the
  agentskills.io format the reference uses). Frontmatter fields: ``name`` (lowercase letters,
  digits and ``-``, no ``-`` at either end, at most 64 characters, equal to the folder name),
  ``description`` (required), ``license``, ``compatibility``, ``allowed-tools``, and
  ``metadata``: ``author``, ``version`` (semver), ``skill-type`` (``prompt`` | ``tool``),
  ``capabilities``, ``trust-tier`` (``local`` | ``verified`` | ``untrusted``, default
  ``untrusted``), ``dependencies``, ``conflicts-with``, ``parents``, ``secrets``,
  ``categories``, and our extension ``limits`` (below). Unknown fields are ignored, as in the
  reference, so skills written for newer versions of the format still load.
- ``skill.wasm`` (optional): a WASI command module or a skill component, see
  :mod:`boternity.executors.wasm`.
- ``.boternity-meta.toml`` (optional, written by an installer): ``source``, ``installed_at``,
  ``version``, ``checksum``, ``trust_tier``.

**Kind.** ``metadata.skill-type: prompt``, or no ``skill.wasm``: a *prompt* skill, whose output is
the body with ``{{ input }}`` / ``{{input}}`` replaced by the input (strings as they are, anything
else as compact JSON; every other ``{{...}}`` is left alone). Otherwise a *WASM* skill: the input
is JSON-encoded on stdin, and stdout is the output (parsed as JSON when it is JSON, else the text
without its trailing newline).

**Trust tier.** The manifest's ``trust_tier`` wins over the frontmatter's. ``verified`` and
``untrusted`` pick the sandbox limits (:data:`boternity.executors.wasm.TIER_LIMITS`). ``local``
means "run the skill's scripts on the host" in the reference: never done here, so a WASM skill
with that tier fails with ``skill.local_tier_unsupported``. A prompt skill runs nothing, so its
tier does not matter and ``local`` is accepted.

**Limits.** ``metadata.limits: {fuel, memory_mb, timeout_secs, max_output_bytes}`` overrides the
tier's limits one by one, up or down, but never above four times the verified tier
(:data:`boternity.executors.wasm.LIMIT_CEILING`): 40e9 fuel, 256 MiB, 120 s, 4 MiB.

**Checksum.** The manifest's ``checksum`` (``sha256:<hex>`` or bare hex) is the SHA-256 of
``skill.wasm`` when the folder has one, else of ``SKILL.md`` -- the file whose content decides
what the step does, chosen by presence alone so an installer can compute it without parsing
anything. It is verified when the skill is loaded and, for WASM skills, again on the exact bytes
about to run (the file may change between the two). A mismatch is ``skill.checksum_mismatch``.
No checksum, no check: a skill copied in by hand is trusted as it is.

Errors (all ``StepFailed``): ``skill.not_found``, ``skill.invalid`` (names the field),
``skill.checksum_mismatch``, ``skill.local_tier_unsupported``, ``skill.invalid_input``, and the
``wasm.*`` codes of the runner.

Loaded skills are cached per container by folder and name, and reloaded when the modification
time or size of any of the three files changes.

Import cost: wasmtime is imported only when a WASM skill is loaded, so a Lambda that only runs
prompt skills never pays for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from boternity.errors import StepFailed
from boternity.parsing import ParseError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from boternity.executors.wasm import WasmLimits

__all__ = [
    "MANIFEST_FILE",
    "SKILL_FILE",
    "TRUST_TIERS",
    "WASM_FILE",
    "Skill",
    "clear_skill_cache",
    "load_skill",
    "render_prompt",
    "run_skill",
]

log = logging.getLogger("boternity.skill")

SKILL_FILE = "SKILL.md"
WASM_FILE = "skill.wasm"
MANIFEST_FILE = ".boternity-meta.toml"
TRUST_TIERS = ("local", "verified", "untrusted")
SKILL_TYPES = ("prompt", "tool")
NAME_MAX = 64

# Anchored with \Z, not $: "$" also matches before a final newline ("summarize\n", "1.2.0\n").
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")
# Semantic Versioning 2.0.0, the official pattern.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)
_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})\Z")
_FRONTMATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
_INPUT_PLACEHOLDER = re.compile(r"\{\{(?: input |input)\}\}")
_LIST_FIELDS = ("capabilities", "dependencies", "conflicts-with", "parents", "secrets", "categories")
_LIMIT_FIELDS = {"fuel": "fuel", "memory_mb": "memory_bytes", "timeout_secs": "timeout_secs",
                 "max_output_bytes": "max_output_bytes"}


@dataclass(frozen=True, eq=False)
class Skill:
    """A loaded, validated skill. ``limits`` is set for WASM skills only."""

    name: str
    description: str
    body: str
    kind: Literal["prompt", "wasm"]
    path: Path
    trust_tier: str
    wasm_path: Path | None = None
    limits: WasmLimits | None = None
    checksum: str | None = None  # lowercase hex SHA-256 the manifest promises, if it has one
    version: str | None = None
    frontmatter: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    manifest: Mapping[str, Any] | None = None


# --------------------------------------------------------------------------- loading

_cache: dict[tuple[str, str], tuple[tuple[Any, ...], Skill]] = {}
_cache_lock = threading.Lock()


def clear_skill_cache() -> None:
    with _cache_lock:
        _cache.clear()


def skill_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a skill folder, or None (the validator asks this at load time)."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > NAME_MAX:
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        return f"{shown} is not a skill name (lowercase letters, digits and '-', at most {NAME_MAX} characters)"
    return None


def load_skill(skills_dir: Path | str, name: str) -> Skill:
    """Load and validate ``<skills_dir>/<name>``; cached until one of its files changes."""
    problem = skill_name_problem(name)
    if problem is not None:
        # Checked before touching the file system: the name comes from a workflow file and must
        # not be able to name a folder outside skills_dir ("../x").
        raise StepFailed(problem, code="skill.invalid", details={"field": "name"})
    folder = Path(skills_dir) / name
    signature = _signature(folder)
    key = (str(folder.resolve()), name)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == signature:
        return hit[1]
    skill = _load(folder, name)
    with _cache_lock:
        _cache[key] = (signature, skill)
    return skill


def _signature(folder: Path) -> tuple[Any, ...]:
    sig: list[Any] = []
    for fname in (SKILL_FILE, WASM_FILE, MANIFEST_FILE):
        try:
            st = os.stat(folder / fname)
        except OSError:
            sig.append(None)
        else:
            sig.append((st.st_mtime_ns, st.st_size))
    return tuple(sig)


def _load(folder: Path, name: str) -> Skill:
    skill_md = folder / SKILL_FILE
    try:
        raw = skill_md.read_bytes()
    except FileNotFoundError:
        where = skill_md if folder.is_dir() else folder
        raise StepFailed(f"skill '{name}' not found: {where} does not exist", code="skill.not_found",
                         details={"skill": name, "path": str(where)}) from None
    except OSError as exc:
        raise StepFailed(f"skill '{name}': cannot read {skill_md}: {exc.strerror or exc}",
                         code="skill.not_found", details={"skill": name, "path": str(skill_md)}) from None

    manifest = _read_manifest(folder, name)
    wasm_path = folder / WASM_FILE
    has_wasm = wasm_path.is_file()
    expected = _expected_checksum(manifest, name)
    if expected is not None and not has_wasm:
        _verify(name, SKILL_FILE, raw, expected)

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid(name, SKILL_FILE, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    front, body = _split_frontmatter(name, text)
    meta = _validate_frontmatter(name, front, folder.name)

    tier = meta.get("trust-tier", "untrusted")
    if manifest is not None and manifest.get("trust_tier") is not None:
        tier = _manifest_tier(name, manifest["trust_tier"])
    kind: Literal["prompt", "wasm"] = "prompt" if meta.get("skill-type") == "prompt" or not has_wasm else "wasm"

    limits = None
    if kind == "wasm":
        if tier == "local":
            raise StepFailed(
                f"skill '{name}' has trust tier 'local', which means running its code directly on the host; "
                "that is not supported here. Build it as WebAssembly and give it the 'untrusted' or "
                "'verified' tier", code="skill.local_tier_unsupported", details={"skill": name})
        limits = _limits(name, tier, meta.get("limits"))
        if expected is not None:
            _verify(name, WASM_FILE, _read_wasm(name, wasm_path), expected)

    version = meta.get("version")
    if version is None and manifest is not None and isinstance(manifest.get("version"), str):
        version = manifest["version"]
    return Skill(
        name=name,
        description=front["description"].strip(),
        body=body,
        kind=kind,
        path=folder,
        trust_tier=tier,
        wasm_path=wasm_path if kind == "wasm" else None,
        limits=limits,
        checksum=expected,
        version=version,
        frontmatter=MappingProxyType(front),
        manifest=MappingProxyType(manifest) if manifest is not None else None,
    )


def _split_frontmatter(name: str, text: str) -> tuple[dict[str, Any], str]:
    m = _FRONTMATTER.match(text)
    if m is None:
        if not text.startswith("---"):
            raise _invalid(name, "frontmatter", "SKILL.md must start with YAML frontmatter between '---' lines")
        raise _invalid(name, "frontmatter", "SKILL.md has no closing '---' line after its frontmatter")
    # PyYAML on first use: validate.py imports this module for skill_name_problem alone.
    from boternity.parsing.yaml_loader import load_yaml

    try:
        front = load_yaml(m.group(1))   # bounded: a SKILL.md is as untrusted as a workflow
    except ParseError as exc:
        where = f" (frontmatter line {exc.line})" if exc.line else ""
        raise _invalid(name, "frontmatter", f"invalid YAML{where}: {exc.message.removeprefix('invalid YAML: ')}"
                       ) from None
    if not isinstance(front, dict):
        raise _invalid(name, "frontmatter", "the frontmatter must be a YAML mapping of fields")
    return front, text[m.end():].lstrip("\r\n")


def _validate_frontmatter(name: str, front: dict[str, Any], folder_name: str) -> dict[str, Any]:
    """Check the fields we know; returns ``metadata`` (``{}`` when absent)."""
    fm_name = front.get("name")
    if not isinstance(fm_name, str) or not fm_name:
        raise _invalid(name, "name", "required, a non-empty string")
    if not _NAME.match(fm_name) or len(fm_name) > NAME_MAX:
        raise _invalid(name, "name", f"{fm_name!r} must be 1-{NAME_MAX} lowercase letters, digits and '-', "
                                     "not starting or ending with '-'")
    if fm_name != folder_name:
        raise _invalid(name, "name", f"{fm_name!r} must equal the skill's folder name {folder_name!r}")
    desc = front.get("description")
    if not isinstance(desc, str) or not desc.strip():
        raise _invalid(name, "description", "required, a non-empty string")
    for key in ("license", "compatibility"):
        if front.get(key) is not None and not isinstance(front[key], str):
            raise _invalid(name, key, "must be a string")
    tools = front.get("allowed-tools")
    if tools is not None and not isinstance(tools, str) and not _is_str_list(tools):
        raise _invalid(name, "allowed-tools", "must be a string or a list of strings")

    meta = front.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise _invalid(name, "metadata", "must be a mapping")
    if meta.get("author") is not None and not isinstance(meta["author"], str):
        raise _invalid(name, "metadata.author", "must be a string")
    version = meta.get("version")
    if version is not None and (not isinstance(version, str) or not _SEMVER.match(version)):
        raise _invalid(name, "metadata.version", f"{version!r} is not a semantic version like \"1.2.0\" "
                                                 "(quote it in YAML)")
    stype = meta.get("skill-type")
    if stype is not None and stype not in SKILL_TYPES:
        raise _invalid(name, "metadata.skill-type", f"{stype!r} must be one of {', '.join(SKILL_TYPES)}")
    tier = meta.get("trust-tier")
    if tier is not None and tier not in TRUST_TIERS:
        raise _invalid(name, "metadata.trust-tier", f"{tier!r} must be one of {', '.join(TRUST_TIERS)}")
    for key in _LIST_FIELDS:
        if meta.get(key) is not None and not _is_str_list(meta[key]):
            raise _invalid(name, f"metadata.{key}", "must be a list of strings")
    if fm_name in (meta.get("conflicts-with") or ()):
        raise _invalid(name, "metadata.conflicts-with", "a skill cannot conflict with itself")
    limits = meta.get("limits")
    if limits is not None:
        if not isinstance(limits, dict):
            raise _invalid(name, "metadata.limits", "must be a mapping")
        for key in limits:
            if key not in _LIMIT_FIELDS:
                raise _invalid(name, f"metadata.limits.{key}",
                               f"unknown limit; expected one of {', '.join(_LIMIT_FIELDS)}")
    return meta


def _limits(name: str, tier: str, overrides: Mapping[str, Any] | None) -> WasmLimits:
    from boternity.executors.wasm import MIB, LimitError, tier_limits

    converted: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key == "memory_mb" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = int(value * MIB)
        converted[_LIMIT_FIELDS[key]] = value
    try:
        return tier_limits(tier, converted)
    except LimitError as exc:
        src = {v: k for k, v in _LIMIT_FIELDS.items()}.get(exc.field, exc.field)
        raise _invalid(name, f"metadata.limits.{src}", str(exc).split(": ", 1)[-1]) from None


def _read_manifest(folder: Path, name: str) -> dict[str, Any] | None:
    try:
        raw = (folder / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _invalid(name, MANIFEST_FILE, f"cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _invalid(name, MANIFEST_FILE, f"invalid TOML: {exc}") from None


def _manifest_tier(name: str, value: Any) -> str:
    # Installers may write the tier capitalised (a Rust enum's name): accept any case.
    tier = value.lower() if isinstance(value, str) else value
    if tier not in TRUST_TIERS:
        raise _invalid(name, f"{MANIFEST_FILE}: trust_tier", f"{value!r} must be one of {', '.join(TRUST_TIERS)}")
    return tier


def _expected_checksum(manifest: Mapping[str, Any] | None, name: str) -> str | None:
    if manifest is None or manifest.get("checksum") in (None, ""):
        return None
    value = manifest["checksum"]
    m = _SHA256.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise _invalid(name, f"{MANIFEST_FILE}: checksum",
                       f"{value!r} is not a SHA-256 ('sha256:' followed by 64 hex digits, or the digits alone)")
    return m.group(1).lower()


def _verify(name: str, fname: str, data: bytes, expected: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise StepFailed(
            f"skill '{name}': {fname} does not match the checksum in {MANIFEST_FILE} "
            f"(expected sha256:{expected}, found sha256:{actual}); reinstall the skill",
            code="skill.checksum_mismatch", details={"skill": name, "file": fname, "expected": expected,
                                                     "actual": actual})


def _read_wasm(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StepFailed(f"skill '{name}': cannot read {path}: {exc.strerror or exc}", code="skill.not_found",
                         details={"skill": name, "path": str(path)}) from None


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _invalid(name: str, fieldname: str, message: str) -> StepFailed:
    return StepFailed(f"skill '{name}': {fieldname}: {message}", code="skill.invalid",
                      details={"skill": name, "field": fieldname})


# --------------------------------------------------------------------------- running


def render_prompt(body: str, input_value: Any) -> str:
    """``body`` with ``{{ input }}`` and ``{{input}}`` replaced; any other ``{{...}}`` stays as written."""
    text = input_value if isinstance(input_value, str) else _compact_json(input_value)
    return _INPUT_PLACEHOLDER.sub(lambda _m: text, body)


def run_skill(skill: Skill, input_value: Any) -> dict[str, Any]:
    """Run a loaded skill on ``input_value`` and return the step output."""
    if skill.kind == "prompt":
        return {"type": "skill", "skill": skill.name, "kind": "prompt",
                "output": render_prompt(skill.body, input_value)}

    from boternity.executors.wasm import parse_output, run_wasm

    try:
        stdin = json.dumps(input_value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StepFailed(f"skill '{skill.name}': the input cannot be encoded as JSON: {exc}",
                         code="skill.invalid_input", details={"skill": skill.name}) from None
    assert skill.wasm_path is not None and skill.limits is not None
    data = _read_wasm(skill.name, skill.wasm_path)
    if skill.checksum is not None:
        _verify(skill.name, WASM_FILE, data, skill.checksum)
    result = run_wasm(data, stdin, skill.limits, argv0=skill.name)
    if result.stderr_tail:
        log.info("skill %s stderr (tail): %s", skill.name, result.stderr_tail)
    return {"type": "skill", "skill": skill.name, "kind": "wasm", "output": parse_output(result.stdout),
            "fuel_consumed": result.fuel_consumed, "duration_ms": result.duration_ms}


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)
