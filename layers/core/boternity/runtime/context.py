"""What a running step sees: the state turned into the template/condition context, and the gate.

One implementation, used by every function locally and in the cloud.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from boternity.compiler.records import flat_records
from boternity.errors import ExpressionError, StepFailed, readable_cause
from boternity.expressions.jexl import condition_references, evaluate_condition
from boternity.expressions.templates import render_value
from boternity.runtime.secrets import lookup_secret
from boternity.store.blobs import SCHEME, BlobStore, blob_store_from_env, make_resolver


class Secrets(Mapping[str, str]):
    """Secrets looked up one at a time, remembering the values so they can be masked."""

    def __init__(self, lookup: Any = None) -> None:
        # Only the workflow-secrets namespace, never the process environment (boternity.runtime.secrets).
        self._lookup = lookup or lookup_secret
        self.used: dict[str, str] = {}
        # Every form of the used values that mask() replaces, longest first (see _written_forms).
        self._forms: list[str] = []

    def __getitem__(self, name: str) -> str:
        if name not in self.used:
            value = self._lookup(name)
            if value is None:
                raise KeyError(name)
            self.used[name] = value
            forms = {*self._forms, *_written_forms(value)}
            self._forms = sorted(forms, key=len, reverse=True)
        return self.used[name]

    def __contains__(self, name: object) -> bool:
        try:
            self[str(name)]
        except KeyError:
            return False
        return True

    def __iter__(self):  # noqa: ANN204 - never enumerate secrets
        return iter(())

    def __len__(self) -> int:
        return 0

    def mask(self, value: Any) -> Any:
        """Replace every secret value used so far by '***' in strings inside value."""
        if not self.used:
            return value
        if isinstance(value, str):
            for form in self._forms:
                value = value.replace(form, "***")
            return value
        if isinstance(value, dict):
            # Keys too: a JSON reply may use what it was sent as a key. Two keys masked alike keep
            # the last value, which loses data only where the secret was about to be written down.
            return {self.mask(k): self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value


# What requests does to a URL it sends (requests.utils.requote_uri): these stay, the rest is quoted.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


def _written_forms(secret: str) -> set[str]:
    """The secret as the steps themselves may write it into an output, besides verbatim.

    The http step's ``url`` output is the URL as sent: a secret in ``query:`` is form-encoded
    ("+" becomes "%2B"), one in the URL's path or query is quoted by requests; an echoed JSON
    body kept as text holds it JSON-escaped. Masking only the verbatim value let a base64 token
    ("ab+cd/ef==") reach the records as "ab%2Bcd%2Fef%3D%3D". A target may of course echo it
    in any encoding it likes: what it sends back is its own, not a form we produced.
    """
    if not secret:
        return set()
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret, safe=_URL_SAFE),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return {form for form in forms if form}


FINAL = ("completed", "skipped", "failed")


class StepRecords(Mapping[str, Any]):
    """The step records a task reads (``steps.<id>``).

    * Those its payload carries. The compiler sends a task the records it can prove are in its
      state; an ancestor that finished in another branch, before one of this step's own
      dependencies, may not be: its final record is then read from the run table (its function
      wrote it before it returned, so before anything after it could start).
    * A failed record whose run went on (``continue_on_error``) gives its cause as a sentence, not
      as the Lambda runtime's or Step Functions' JSON.
    """

    def __init__(self, carried: Mapping[str, Any], fetch: Callable[[str], dict[str, Any] | None] | None) -> None:
        self._carried = carried
        self._fetch = fetch
        self._seen: dict[str, Any] = {}

    def __getitem__(self, step_id: str) -> Any:
        if step_id not in self._seen:
            record = self._carried.get(step_id) if step_id in self._carried else self._stored(step_id)
            if record is None:
                raise KeyError(step_id)
            self._seen[step_id] = _readable(record)
        return self._seen[step_id]

    def __contains__(self, step_id: object) -> bool:
        try:
            self[str(step_id)]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._carried)

    def __len__(self) -> int:
        return len(self._carried)

    def _stored(self, step_id: str) -> dict[str, Any] | None:
        if self._fetch is None or not isinstance(step_id, str):
            return None
        record = self._fetch(step_id)
        if not record or record.get("status") not in FINAL:
            return None
        return {"status": record["status"], "output": record.get("output")}


def _readable(record: Any) -> Any:
    if not isinstance(record, dict) or record.get("status") != "failed":
        return record
    out = record.get("output")
    if not isinstance(out, dict) or not isinstance(out.get("cause"), str):
        return record
    return {**record, "output": {**out, "cause": readable_cause(out.get("error"), out["cause"])}}


@dataclass
class StepContext:
    spec: dict[str, Any]
    state: dict[str, Any]
    item: Any = None
    index: int | None = None
    blobs: BlobStore | None = None
    secrets: Secrets = field(default_factory=Secrets)

    def __post_init__(self) -> None:
        self._records: StepRecords | None = None
        if self.item is None and "item" in self.state:
            self.item = self.state.get("item")
            self.index = self.state.get("index")
        self.blobs = self.blobs or blob_store_from_env()
        self.resolver = _claim_checks_only(make_resolver(self.blobs))

    @property
    def ctx(self) -> dict[str, Any]:
        return self.state.get("ctx", {})

    @property
    def steps(self) -> StepRecords:
        if self._records is None:
            self._records = StepRecords(flat_records(self.state.get("steps", {})), self._fetch_record)
        return self._records

    def _fetch_record(self, step_id: str) -> dict[str, Any] | None:
        import os

        if not self.run_id or not os.environ.get("BOTERNITY_TABLE"):
            return None
        # Only here: the skill and code functions otherwise never import boto3 (cold start).
        from boternity.store.run_records import RunStore

        return RunStore.from_env().step_record(self.run_id, step_id)

    @property
    def run_id(self) -> str:
        return str(self.ctx.get("run", {}).get("id", ""))

    @property
    def step_id(self) -> str:
        return str(self.spec["id"])

    def iteration_key(self) -> str:
        """Which repetition of the step this is: loop iterations (outermost first) and the item index."""
        parts = [str((self.steps.get(loop, {}).get("output") or {}).get("iterations", 0)) for loop in self.spec.get("loops", [])]
        if self.index is not None:
            parts.append(f"i{self.index}")
        return "/".join(parts)

    def names(self, *, with_secrets: bool = False) -> dict[str, Any]:
        """The names templates and conditions can read."""
        ctx = self.ctx
        out: dict[str, Any] = {
            "steps": self.steps,
            "trigger": ctx.get("trigger"),
            "variables": ctx.get("variables", {}),
            "workflow": {"name": ctx.get("workflow", {}).get("name")},
            "run": ctx.get("run", {}),
        }
        # One convention with the records (iteration "1", "2", ...): in the body, loop.iteration
        # is the number of the iteration running, from 1; in the loop's own condition, the number
        # of iterations finished (0 before the first).
        loops = self.spec.get("loops", [])
        if loops:
            iters = (self.steps.get(loops[-1], {}).get("output") or {}).get("iterations", 1)
            out["loop"] = {"iteration": max(1, int(iters))}
        if self.spec.get("type") == "loop":
            iters = (self.steps.get(self.step_id, {}).get("output") or {}).get("iterations", 0)
            out["loop"] = {"iteration": int(iters)}
        if self.index is not None or "for_each" in self.spec:
            out["item"] = self.item
            out["index"] = self.index
        if with_secrets:
            out["secrets"] = self.secrets
        return out

    def render(self, value: Any, *, field_name: str, with_secrets: bool = False) -> Any:
        try:
            return render_value(value, self.names(with_secrets=with_secrets), resolver=self.resolver)
        except ExpressionError as exc:
            raise StepFailed(f"step '{self.step_id}', field '{field_name}': {exc}", code="template") from exc

    def condition(self, expr: str, *, field_name: str) -> bool:
        try:
            return evaluate_condition(expr, self.names(), resolver=self.resolver)
        except ExpressionError as exc:
            raise StepFailed(f"step '{self.step_id}', field '{field_name}': {exc}", code="condition") from exc

    # ------------------------------------------------------------------ gate
    def skip_reason(self, *, per_item: bool = False) -> str | None:
        """Why this step must be skipped, or None to run it.

        A step runs when at least one dependency completed (or none exist) and it is on the
        selected side of every conditional it belongs to, and its own condition holds.
        """
        deps = self.spec.get("deps", [])
        statuses = [self.steps.get(d, {}).get("status") for d in deps]
        if deps and all(s == "skipped" for s in statuses):
            return "all dependencies were skipped"
        for cond_id, side in self.spec.get("branches", []):
            rec = self.steps.get(cond_id, {})
            if rec.get("status") == "skipped":
                return f"conditional '{cond_id}' was skipped"
            met = bool((rec.get("output") or {}).get("condition_met"))
            if met != (side == "then"):
                return f"not the branch selected by '{cond_id}'"
        cond = self.spec.get("condition")
        if cond and (per_item or not _reads_item(cond)) and not self.condition(cond, field_name="condition"):
            return f"condition is false: {cond}"
        return None


_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_claim_check(value: Any) -> bool:
    """True for exactly what ``store.blobs`` writes: ``{"$ref": "blob:<sha256>", "size": n}``, or a
    reference from before content addressing, ``{"$ref": <uri>, "size": n, "sha256": <hex>}``.

    Anything else with a ``$ref`` key is data: JSON Schema and OpenAPI documents are full of them.
    A legacy reference must carry its hash, so its content is checked when read: without one, a
    payload could name any key of the project bucket (bots, skills, other runs' outputs).
    """
    if not isinstance(value, dict) or not isinstance(value.get("$ref"), str):
        return False
    size = value.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return False
    ref = value["$ref"]
    if set(value) == {"$ref", "size"}:
        return ref.startswith(SCHEME) and bool(_DIGEST.fullmatch(ref[len(SCHEME):]))
    sha = value.get("sha256")
    return set(value) == {"$ref", "size", "sha256"} and isinstance(sha, str) and bool(_DIGEST.fullmatch(sha))


def _claim_checks_only(resolve: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    # The template engine treats any dict with "$ref" as a claim; only real ones are looked up.
    def resolve_claim(value: dict[str, Any]) -> Any:
        return resolve(value) if is_claim_check(value) else value

    return resolve_claim


def _reads_item(expr: str) -> bool:

    return any(r.root in ("item", "index") for r in condition_references(expr))
