"""Hostile workflow files and trigger payloads: what an attacker sends, and exactly what must come back.

Each case is one input. The workflow cases run through ``boternity validate`` (a subprocess whose
peak memory is measured) and through ``PUT /workflows/{name}``; the payload cases through
``POST /workflows/{name}/runs`` and a webhook. Everything is generated from a few lines here, so
the bombs' sizes are visible and nothing large sits in the repository.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

WAIT_STEP = "  - id: a\n    type: wait\n    config: {seconds: 0}\n"
HEAD = "name: hostile\nsteps:\n" + WAIT_STEP
JSON_STEPS = [{"id": "a", "type": "wait", "config": {"seconds": 0}}]


@dataclass(frozen=True)
class HostileWorkflow:
    id: str
    filename: str       # .yaml/.json: the CLI parses both as YAML; the API picks by Content-Type
    content: bytes
    cli_says: str       # a fragment of the one-line error the CLI prints
    code: str           # the code the API reports (details[0].code inside a validation_failed)
    status: int = 400
    api_says: str = ""  # a fragment of the API's message or details ("" = cli_says)

    @property
    def content_type(self) -> str:
        return "application/json" if self.filename.endswith(".json") else "application/yaml"


def _yaml(extra: str) -> bytes:
    return (HEAD + extra).encode()


def _json(**extra: object) -> bytes:
    return json.dumps({"name": "hostile", "steps": JSON_STEPS, **extra}).encode()


def _json_with(raw: str) -> bytes:
    """A JSON workflow whose ``bomb`` field is ``raw`` verbatim (things json.dumps cannot write)."""
    return ('{"name": "hostile", "steps": ' + json.dumps(JSON_STEPS) + ', "bomb": ' + raw + "}").encode()


def laughs(levels: int, width: int) -> str:
    """Billion laughs: each level is a list of ``width`` aliases of the one below (width**levels leaves)."""
    lines = ["l0: &l0 lol"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def bomb_474_bytes() -> bytes:
    """The size the issue reported: 10**8 leaves from 474 bytes of a valid-looking workflow."""
    body = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [" + ",".join([f"*{p}"] * 10) + "]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True))
    text = "name: hostile\nsteps: [{id: a, type: wait, config: {seconds: 0}}]\n" + body
    return (text + "#" * (473 - len(text)) + "\n").encode()


def merge_bomb() -> str:
    """Merge keys (<<) and mapping values: the mapping-shaped variant."""
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}"]
    for i in range(1, 9):
        keys = ", ".join(f"k{j}: *m{i - 1}" for j in range(8))
        lines.append(f"m{i}: &m{i} {{<<: *m{i - 1}, {keys}}}")
    return "\n".join(lines) + "\n"


DEEP_FLOW_3K = "bomb: " + "[" * 3000 + "]" * 3000 + "\n"
DEEP_FLOW_100K = "bomb: " + "[" * 100_000 + "]" * 100_000 + "\n"
DEEP_MAP_3K = "bomb: " + "{a: " * 3000 + "x" + "}" * 3000 + "\n"
DEEP_BLOCK_3K = "bomb:\n  " + "- " * 3000 + "x\n"
BIG = "1" * 5000

WORKFLOWS: list[HostileWorkflow] = [
    # -- alias bombs (finding 2)
    HostileWorkflow("billion-laughs", "wf.yaml", _yaml(laughs(10, 10)), "expands to more than 100,000 nodes",
                    "too_many_nodes"),
    HostileWorkflow("bomb-474-bytes", "wf.yaml", bomb_474_bytes(), "expands to more than 100,000 nodes",
                    "too_many_nodes"),
    HostileWorkflow("merge-key-bomb", "wf.yaml", _yaml(merge_bomb()), "expands to more than 100,000 nodes",
                    "too_many_nodes"),
    HostileWorkflow("string-bomb", "wf.yaml", _yaml("s: &s " + "A" * 200_000 + "\nl: [" + ", ".join(["*s"] * 30)
                                                    + "]\n"), "expand to more than 4,194,304 characters",
                    "too_large_expanded"),
    HostileWorkflow("too-many-aliases", "wf.yaml", _yaml("s: &s x\nl: [" + ", ".join(["*s"] * 150) + "]\n"),
                    "more than 100 aliases", "too_many_aliases"),
    HostileWorkflow("self-referencing-list", "wf.yaml", _yaml("bomb: &a [*a]\n"),
                    "alias *a refers to a value that contains it", "recursive_alias"),
    HostileWorkflow("self-referencing-map", "wf.yaml", _yaml("bomb: &a {x: {y: *a}}\n"),
                    "field 'bomb.x.y': alias *a refers to a value that contains it", "recursive_alias",
                    api_says="alias *a refers to a value that contains it"),
    HostileWorkflow("self-referencing-steps", "wf.yaml",
                    b"name: hostile\nsteps: &s\n  - {id: a, type: wait, depends_on: *s, config: {seconds: 0}}\n",
                    "alias *s refers to a value that contains it", "recursive_alias"),
    HostileWorkflow("undefined-alias", "wf.yaml", _yaml("bomb: *nowhere\n"), "found undefined alias 'nowhere'",
                    "yaml_syntax"),
    # -- depth (finding 3)
    HostileWorkflow("yaml-flow-3000-deep", "wf.yaml", _yaml(DEEP_FLOW_3K), "nested deeper than 64 levels",
                    "too_deep"),
    HostileWorkflow("yaml-flow-100000-deep", "wf.yaml", _yaml(DEEP_FLOW_100K), "nested deeper than 64 levels",
                    "too_deep"),
    HostileWorkflow("yaml-mapping-3000-deep", "wf.yaml", _yaml(DEEP_MAP_3K), "nested deeper than 64 levels",
                    "too_deep"),
    HostileWorkflow("yaml-block-3000-deep", "wf.yaml", _yaml(DEEP_BLOCK_3K), "nested deeper than 64 levels",
                    "too_deep"),
    HostileWorkflow("json-3000-deep", "wf.json", _json_with("[" * 3000 + "]" * 3000), "nested deeper than 64 levels",
                    "too_deep"),
    HostileWorkflow("json-100000-deep", "wf.json", _json_with("[" * 100_000 + "]" * 100_000),
                    "nested deeper than 64 levels", "too_deep"),
    HostileWorkflow("json-objects-3000-deep", "wf.json", _json_with('{"a":' * 3000 + "1" + "}" * 3000),
                    "nested deeper than 64 levels", "too_deep"),
    # -- numbers
    HostileWorkflow("yaml-5000-digit-int", "wf.yaml", _yaml(f"bomb: {BIG}\n"),
                    "an integer of 5,000 characters is longer than allowed", "number_too_long"),
    HostileWorkflow("yaml-hex-int", "wf.yaml", _yaml("bomb: 0x" + "f" * 5000 + "\n"),
                    "an integer of 5,002 characters is longer than allowed", "number_too_long"),
    HostileWorkflow("json-5000-digit-int", "wf.json", _json_with("-" + BIG),
                    "integer of 5,001 characters is longer than allowed", "number_too_long",
                    api_says="a number of 5,000 characters"),
    HostileWorkflow("json-nan", "wf.json", _json().replace(b'"seconds": 0', b'"seconds": NaN'),
                    "field 'config.seconds': Input should be a valid integer", "invalid_number",
                    api_says="holds NaN, which is not a JSON number"),
    # -- size and encoding
    HostileWorkflow("oversized-file", "wf.yaml", _yaml("#" * (1024 * 1024) + "\n"),
                    "the file is larger than allowed (limit 1,048,576, BOTERNITY_MAX_INPUT_BYTES)",
                    "payload_too_large", 413, api_says="a workflow may be at most 256 KiB"),
    HostileWorkflow("latin-1", "wf.yaml", HEAD.encode() + "description: café\n".encode("latin-1"),
                    "is not UTF-8 text (byte 0xe9 at offset 87)", "invalid_encoding"),
    HostileWorkflow("binary-garbage", "wf.yaml", b"\x89PNG\r\n\x1a\n" + random.Random(13).randbytes(4096),
                    "is not UTF-8 text (byte 0x89 at offset 0)", "invalid_encoding"),
    HostileWorkflow("utf16", "wf.yaml", HEAD.encode("utf-16"), "is not UTF-8 text (byte 0xff at offset 0)",
                    "invalid_encoding"),
    HostileWorkflow("nul-character", "wf.yaml", _yaml("description: a\x00b\n"),
                    "invalid YAML: character #x0000 is not allowed", "yaml_syntax"),
    # -- shape
    HostileWorkflow("duplicate-keys", "wf.yaml", _yaml("name: other\n"), "duplicate key 'name'", "duplicate_key"),
    HostileWorkflow("json-duplicate-keys", "wf.json", b'{"name": "hostile", "steps": [], "steps": '
                    + json.dumps(JSON_STEPS).encode() + b"}", "duplicate key 'steps'", "duplicate_key",
                    api_says="has the key 'steps' twice in one object"),
    HostileWorkflow("impossible-date", "wf.yaml", _yaml("description: 2026-13-45\n"),
                    "invalid value: month must be in 1..12", "invalid_value"),
    HostileWorkflow("two-documents", "wf.yaml", _yaml("---\nname: second\n"),
                    "expected a single document in the stream", "yaml_syntax"),
    HostileWorkflow("a-list-not-a-mapping", "wf.yaml", b"- name: hostile\n",
                    "a workflow must be a mapping", "not_a_mapping"),
    HostileWorkflow("escape-sequence-step-id", "wf.yaml",
                    b'name: hostile\nsteps:\n  - {id: "a\\e[2Jb", type: wait, config: {seconds: 0}}\n',
                    "step 'a\\u001b[2Jb': field 'id'", "invalid_format", api_says="String should match pattern"),
]


@dataclass(frozen=True)
class HostilePayload:
    id: str
    body: bytes
    code: str
    says: str                  # a fragment of the error message
    status: int = 400
    content_type: str = "application/json"


PAYLOADS: list[HostilePayload] = [
    HostilePayload("deep-array-3000", b"[" * 3000 + b"]" * 3000, "too_deep",
                   "is nested deeper than 64 levels (limit 64, BOTERNITY_MAX_DEPTH) (at line 1, column 65)"),
    HostilePayload("deep-array-100000", b"[" * 100_000 + b"]" * 100_000, "too_deep",
                   "is nested deeper than 64 levels"),
    HostilePayload("deep-object-40000", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "too_deep",
                   "is nested deeper than 64 levels (limit 64, BOTERNITY_MAX_DEPTH) (at line 1, column 321)"),
    HostilePayload("deep-inside-a-string-is-not-deep", b'{"a": "' + b"[" * 3000 + b'", "b": NaN}', "invalid_number",
                   "holds NaN, which is not a JSON number (at line 1, column 3016)"),
    HostilePayload("int-5000-digits", b'{"n": ' + BIG.encode() + b"}", "number_too_long",
                   "holds a number of 5,000 characters, longer than allowed (limit 100, "
                   "BOTERNITY_MAX_NUMBER_DIGITS) (at line 1, column 7)"),
    HostilePayload("negative-int-5000-digits", b"[-" + BIG.encode() + b"]", "number_too_long",
                   "holds a number of 5,000 characters"),
    HostilePayload("float-5000-digits", b"[0." + BIG.encode() + b"]", "number_too_long",
                   "holds a number of 5,002 characters"),
    HostilePayload("nan", b'{"x": NaN}', "invalid_number", "holds NaN, which is not a JSON number"),
    HostilePayload("infinity", b'{"x": [1, Infinity]}', "invalid_number", "holds Infinity, which is not a JSON number"),
    HostilePayload("minus-infinity", b"-Infinity", "invalid_number", "holds -Infinity, which is not a JSON number"),
    HostilePayload("latin-1", '{"x": "café"}'.encode("latin-1"), "invalid_encoding",
                   "is not UTF-8 text (byte 0xe9 at offset 10)"),
    HostilePayload("binary-garbage", b"\xff\xfe\x00" + random.Random(7).randbytes(512), "invalid_encoding",
                   "is not UTF-8 text (byte 0xff at offset 0)"),
    HostilePayload("truncated", b'{"x": [1, 2', "invalid_json", "is not valid JSON: Expecting ',' delimiter"),
    HostilePayload("oversized", b'{"x": "' + b"A" * (256 * 1024) + b'"}', "payload_too_large", "256 KiB", 413),
]
