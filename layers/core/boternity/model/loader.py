"""Load workflow files, keeping YAML line numbers so every error can point at a line.

The loader only turns text into a :class:`Workflow` (syntax, types, unknown fields); graph and
reference checks live in :mod:`boternity.validate`, whose ``load_workflow`` runs both (the model
layer never imports the validator).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from boternity.errors import ValidationFailed, WorkflowError
from boternity.model.workflow import STEP_ID_MAX, Workflow
from boternity.parsing import Limits, ParseError, decode_utf8
from boternity.parsing.yaml_loader import load_yaml_node

if TYPE_CHECKING:
    from collections.abc import Iterable

Path_ = tuple[str | int, ...]

# Discriminated unions put the tag into pydantic's error location ("config", "agent", "prompt");
# these tags are not part of the user's file, so they are dropped when mapping to YAML paths.
_UNION_TAGS = {
    "agent", "skill", "code", "http", "conditional", "loop", "approval", "sub_workflow", "wait",
    "manual", "cron", "webhook", "event", "file_watch", "global", "bot",
}


@dataclass
class SourceMap:
    """YAML path → (line, column), 1-based."""

    file: str | None = None
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def line_of(self, path: Iterable[str | int]) -> int | None:
        p = tuple(path)
        while True:
            if p in self.marks:
                return self.marks[p][0]
            if not p:
                return None
            p = p[:-1]


@dataclass
class LoadedWorkflow:
    workflow: Workflow
    source: SourceMap
    raw: dict[str, Any]


_YAML = "tag:yaml.org,2002:"
# Values YAML's safe schema makes that JSON has no form for: a workflow is stored, compared and
# compiled as JSON, so each is refused where it is written (json.dumps raised TypeError and the
# ASL parser choked on NaN later, answering 500). tag -> (code, message).
_NOT_JSON = {
    _YAML + "timestamp": ("not_json", "a date/time is not a JSON value: quote it to keep it as text"),
    _YAML + "binary": ("not_json", "binary data (!!binary) is not a JSON value: write it as a base64 string"),
    _YAML + "set": ("not_json", "a set (!!set) is not a JSON value: write it as a list"),
    _YAML + "omap": ("not_json", "an ordered map (!!omap) is not a JSON value: write it as a mapping"),
    _YAML + "pairs": ("not_json", "a list of pairs (!!pairs) is not a JSON value: write it as a mapping"),
}
# What PyYAML makes of a float scalar, to see whether it is finite: besides .nan and .inf, an
# explicit tag (!!float nan, !!float inf) and an implicit 1.0e+999 become NaN or Infinity too.
_FLOATS = yaml.constructor.SafeConstructor()


def _not_json(node: yaml.Node) -> tuple[str, str] | None:
    """(code, message) when ``node`` holds a value JSON cannot: see _NOT_JSON."""
    if node.tag in _NOT_JSON:
        return _NOT_JSON[node.tag]
    if node.tag == _YAML + "float" and isinstance(node, yaml.ScalarNode):
        try:
            value = _FLOATS.construct_yaml_float(node)
        except (ValueError, OverflowError):
            return None   # the loader has already refused what it cannot construct
        if not math.isfinite(value):
            word = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            return "invalid_number", f"{shown} is {word}, which is not a JSON number"
    return None


def _walk_marks(node: yaml.Node, path: Path_, marks: dict[Path_, tuple[int, int]], errors: list[WorkflowError],
                file: str | None) -> None:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    problem = _not_json(node)
    if problem is not None:
        errors.append(WorkflowError(problem[1], code=problem[0], file=file, line=node.start_mark.line + 1,
                                    field=".".join(str(p) for p in path) or None))
        return
    if isinstance(node, yaml.MappingNode):
        # Duplicates among the keys written in this mapping only: keys a merge (<<: *base) brings
        # in are meant to be overridden by them (PyYAML's construction has already spliced the
        # merged pairs into node.value; the loader kept the mapping's own pairs).
        seen: set[str] = set()
        for key_node, _ in getattr(node, "own_pairs", node.value):
            key = key_node.value
            if key_node.tag == _YAML + "merge" or not isinstance(key, str):
                continue
            if key in seen:
                errors.append(WorkflowError(
                    f"duplicate key '{key}'", code="duplicate_key", file=file,
                    line=key_node.start_mark.line + 1, field=".".join(str(p) for p in (*path, key)),
                ))
            seen.add(key)
        for key_node, value_node in node.value:
            key = key_node.value
            problem = _not_json(key_node)
            if problem is not None:
                errors.append(WorkflowError(f"a key: {problem[1]}", code=problem[0], file=file,
                                            line=key_node.start_mark.line + 1,
                                            field=".".join(str(p) for p in path) or None))
                continue
            _walk_marks(value_node, (*path, key), marks, errors, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_marks(item, (*path, i), marks, errors, file)


def _workflow_error(exc: ParseError, file: str | None) -> ValidationFailed:
    return ValidationFailed([WorkflowError(exc.message, code=exc.code, file=file, line=exc.line, column=exc.column,
                                           field=exc.path)])


def parse_yaml(text: str, *, file: str | None = None, limits: Limits | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML (or JSON) text into plain data plus a source map, within the parsing limits.

    Raises ValidationFailed on syntax errors and on text beyond a limit (boternity.parsing).
    """
    try:
        data, node = load_yaml_node(text, limits=limits)
    except ParseError as exc:
        raise _workflow_error(exc, file) from exc
    source = SourceMap(file=file)
    errors: list[WorkflowError] = []
    if node is not None:
        # Bounded by the expanded node limit the parser already enforced.
        _walk_marks(node, (), source.marks, errors, file)
    if errors:
        raise ValidationFailed(errors)
    _check_expanded_json(data, file)
    return data, source


# A workflow is stored as its source but answered (PUT, GET) as JSON with its aliases expanded and
# non-ASCII escaped: an 80 KB file aliasing a 40,000-character string 100 times answered 24 MB,
# over Lambda's 6 MB response limit (API Gateway: 502), on every GET. Any JSON body the API
# accepts (256 KiB) stays under this even written entirely in escaped characters.
MAX_WORKFLOW_JSON_BYTES = 2 * 1024 * 1024


def _check_expanded_json(data: Any, file: str | None) -> None:
    try:
        size = len(json.dumps(data, separators=(",", ":")))
    except (TypeError, ValueError):
        return   # not JSON data: the model refuses it, naming the field
    if size > MAX_WORKFLOW_JSON_BYTES:
        raise ValidationFailed([WorkflowError(
            f"the workflow is {size:,} bytes as JSON once its aliases are expanded, more than "
            f"{MAX_WORKFLOW_JSON_BYTES:,}: write fewer aliases of long values", code="too_large_expanded",
            file=file, line=1)])


def _step_id_at(raw: Any, index: int) -> str | None:
    try:
        sid = raw["steps"][index].get("id")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    # An id too long to be one is named by its position: a message must not repeat 500,000 characters.
    return sid if isinstance(sid, str) and len(sid) <= STEP_ID_MAX else None


def _user_path(loc: tuple[Any, ...]) -> list[str | int]:
    out: list[str | int] = []
    for i, p in enumerate(loc):
        prev = loc[i - 1] if i else None
        after_union = prev in ("config", "owner") or (isinstance(prev, int) and i >= 2 and loc[i - 2] == "triggers")
        if isinstance(p, str) and (("[" in p) or (after_union and p in _UNION_TAGS)):
            continue  # pydantic's union-member labels, not part of the user's file
        out.append(p)
    return out


def pydantic_errors(exc: ValidationError, raw: Any, source: SourceMap) -> list[WorkflowError]:
    """Map pydantic's errors to WorkflowErrors naming the file, line, step and field."""
    out: list[WorkflowError] = []
    for err in exc.errors(include_url=False):
        loc = _user_path(err["loc"])
        step_id: str | None = None
        field_path: list[str | int] = list(loc)
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            step_id = _step_id_at(raw, loc[1]) or f"#{loc[1] + 1}"
            field_path = list(loc[2:])
        etype = err["type"]
        msg = err["msg"]
        if etype == "extra_forbidden":
            code, msg = "unknown_field", f"unknown field '{loc[-1]}'"
        elif etype == "missing":
            code, msg = "missing_field", f"required field '{loc[-1]}' is missing"
        elif etype in ("union_tag_invalid", "literal_error") and loc and loc[-1] == "type":
            code = "invalid_type"
        elif etype == "string_pattern_mismatch":
            code = "invalid_format"
        else:
            code = etype
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(WorkflowError(
            msg, code=code, file=source.file, line=source.line_of(loc), step_id=step_id,
            field=".".join(str(p) for p in field_path) or None,
        ))
    return out


def _path_keys(data: Any, source: SourceMap) -> list[WorkflowError]:
    """Keys ending in '.$' anywhere in the workflow. Its values are embedded in the state machine's
    Parameters, where Step Functions reads such a key as a path or intrinsic function to evaluate:
    ``{'k.$': '$'}`` handed a step the run's whole state, ``'a.$': '$$.Execution.Input'`` the
    payload, and an intrinsic the definition parser refused answered 500."""
    errors: list[WorkflowError] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:   # bounded by the parser's node limit (YAML) or the body size (JSON)
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if isinstance(key, str) and key.endswith(".$"):
                    errors.append(WorkflowError(
                        f"the key {key[:64]!r} ends in '.$', which Step Functions reads as a path to evaluate: "
                        "rename it", code="reserved_key", file=source.file, line=source.line_of((*path, key)),
                        field=".".join(str(p) for p in (*path, key))))
                else:
                    stack.append((child, (*path, key)))
        elif isinstance(value, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(value))
    return errors


def parse_workflow(data: Any, *, source: SourceMap | None = None) -> Workflow:
    """Validate plain data (from YAML or a JSON API body) into a Workflow model."""
    source = source or SourceMap()
    if not isinstance(data, dict):
        raise ValidationFailed([WorkflowError(
            "a workflow must be a mapping with at least 'name' and 'steps'", code="not_a_mapping",
            file=source.file, line=1,
        )])
    reserved = _path_keys(data, source)
    if reserved:
        raise ValidationFailed(reserved)
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(pydantic_errors(exc, data, source)) from exc


def read_workflow_text(text: str, *, file: str | None = None) -> LoadedWorkflow:
    """Parse a workflow from YAML (or JSON) text into the model, without the graph and reference
    checks (``boternity.validate.load_workflow_text`` adds them)."""
    data, source = parse_yaml(text, file=file)
    wf = parse_workflow(data, source=source)
    return LoadedWorkflow(workflow=wf, source=source, raw=data)


def read_workflow(path: str | Path) -> LoadedWorkflow:
    """Read a workflow file into the model (``boternity.validate.load_workflow`` also checks it);
    raises ValidationFailed listing every problem found."""
    p = Path(path)
    limits = Limits.from_env()
    try:
        with p.open("rb") as f:
            raw = f.read(limits.max_bytes + 1)   # never more than the limit into memory
    except FileNotFoundError as exc:
        raise ValidationFailed([WorkflowError("file not found", code="file_not_found", file=str(p))]) from exc
    except OSError as exc:
        raise ValidationFailed([WorkflowError(f"cannot read file: {exc.strerror or exc}", code="unreadable",
                                              file=str(p))]) from exc
    try:
        text = decode_utf8(raw, limits=limits, what="the file")
    except ParseError as exc:
        raise _workflow_error(exc, str(p)) from exc
    return read_workflow_text(text, file=str(p))
