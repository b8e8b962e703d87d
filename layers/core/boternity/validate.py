"""Whole-workflow checks that the models alone cannot do: the graph and every reference.

Runs when a workflow is loaded, never first at run time, and reports every problem at once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from boternity.errors import ExpressionError, ValidationFailed, WorkflowError
from boternity.executors.bots import bot_name_problem
from boternity.executors.skill import skill_name_problem
from boternity.expressions.jexl import condition_references
from boternity.expressions.jexl import parse as parse_condition
from boternity.expressions.templates import value_references
from boternity.graph import TOP, build_graph, find_cycle
from boternity.model.loader import LoadedWorkflow, read_workflow, read_workflow_text
from boternity.model.workflow import WORKFLOW_NAME_MAX, WORKFLOW_NAME_PATTERN, Workflow
from boternity.runtime.secrets import secret_name_problem

if TYPE_CHECKING:
    from pathlib import Path

    from boternity.expressions.paths import Ref
    from boternity.model.loader import SourceMap
    from boternity.model.workflow import Step

TEMPLATE_ROOTS = {"steps", "trigger", "variables", "workflow", "run", "item", "index", "secrets", "loop"}
WHEN_ROOTS = {"event", "trigger"}
HTTP_SECRET_FIELDS = {"config.url", "config.headers", "config.query", "config.body"}
STEP_FIELDS = {"output", "status", "error"}
WORKFLOW_FIELDS = {"name"}
RUN_FIELDS = {"id", "started_at"}
LOOP_FIELDS = {"iteration"}
CONTROL_TYPES = {"conditional", "loop"}
NO_RETRY_TYPES = {"conditional", "loop", "wait", "approval"}
# Step types on which a step-level timeout_secs could not mean anything: refused rather than ignored.
NO_TIMEOUT_REASONS = {
    "wait": "a wait step waits exactly its seconds or until; bound the whole run with the workflow's "
            "timeout_secs instead",
    "approval": "an approval waits config.timeout_secs for a decision and then applies on_timeout; "
                "set the time there",
    "conditional": "a conditional only evaluates its condition; give the steps it selects their own timeout_secs",
    "loop": "a loop is bounded by config.max_iterations; give its body steps their own timeout_secs",
}


def _template_fields(step: Step) -> list[tuple[str, Any]]:
    """(field path, value) of every field whose strings are templates."""
    c = step.config
    fields: list[tuple[str, Any]] = []
    match c.type:
        case "agent":
            fields += [("config.prompt", c.prompt), ("config.system", c.system)]
        case "skill":
            fields += [("config.input", c.input)]
        case "code":
            fields += [("config.input", c.input)]
        case "http":
            fields += [("config.url", c.url), ("config.headers", c.headers), ("config.query", c.query),
                       ("config.body", c.body)]
        case "approval":
            fields += [("config.prompt", c.prompt)]
        case "sub_workflow":
            fields += [("config.input", c.input)]
        case "wait":
            fields += [("config.until", c.until)]
    return [(f, v) for f, v in fields if v is not None]


class _Checker:
    def __init__(self, wf: Workflow, source: SourceMap | None) -> None:
        self.wf = wf
        self.source = source
        self.errors: list[WorkflowError] = []
        self.index = {}
        for i, s in enumerate(wf.steps):
            self.index.setdefault(s.id, i)

    def err(self, code: str, message: str, *, step: str | None = None, field: str | None = None,
            path: tuple[str | int, ...] | None = None) -> None:
        line = None
        if self.source is not None:
            if path is None and step is not None and step in self.index:
                path = ("steps", self.index[step], *(field.split(".") if field else ()))
            if path is not None:
                line = self.source.line_of(path)
        self.errors.append(WorkflowError(message, code=code, file=self.source.file if self.source else None,
                                         line=line, step_id=step, field=field))

    # ------------------------------------------------------------------ structure
    def check_structure(self) -> bool:
        wf = self.wf
        if "on_limit" in wf.model_fields_set and wf.concurrency is None:
            self.err("on_limit_without_concurrency", "on_limit only applies with a concurrency limit; set "
                     "concurrency: N (runs at once) or remove on_limit", field="on_limit", path=("on_limit",))
        seen: dict[str, int] = {}
        for i, s in enumerate(wf.steps):
            if s.id in seen:
                self.err("duplicate_step", f"duplicate step id '{s.id}' (first defined as step {seen[s.id] + 1})",
                         step=s.id, field="id", path=("steps", i, "id"))
            else:
                seen[s.id] = i
        ids = set(seen)
        for s in wf.steps:
            for d in s.depends_on:
                if d not in ids:
                    self.err("unknown_dependency", f"depends on unknown step '{d}'", step=s.id, field="depends_on")
            c = s.config
            lists: list[tuple[str, list[str]]] = []
            if c.type == "conditional":
                lists = [("config.then_steps", c.then_steps), ("config.else_steps", c.else_steps)]
                both = set(c.then_steps) & set(c.else_steps)
                for b in sorted(both):
                    self.err("branch_conflict", f"step '{b}' is in both then_steps and else_steps",
                             step=s.id, field="config.then_steps")
                if not c.then_steps and not c.else_steps:
                    self.err("empty_branches", "a conditional needs at least one step in then_steps or else_steps",
                             step=s.id, field="config.then_steps")
            elif c.type == "loop":
                lists = [("config.body_steps", c.body_steps)]
            for fname, lst in lists:
                for b in lst:
                    if b not in ids:
                        self.err("unknown_step", f"{fname.split('.')[-1]} names unknown step '{b}'",
                                 step=s.id, field=fname)
            if s.for_each is not None and c.type in CONTROL_TYPES:
                self.err("for_each_unsupported", f"for_each cannot be used on a {c.type} step: it "
                         "decides which steps run, and a Map cannot repeat other steps once per item. "
                         "Put the steps in a workflow of their own and use for_each on a sub_workflow step "
                         "that runs it", step=s.id, field="for_each")
            if s.max_concurrency is not None and s.for_each is None:
                self.err("max_concurrency_without_for_each", "max_concurrency only applies to for_each steps",
                         step=s.id, field="max_concurrency")
            if "timeout_secs" in s.model_fields_set and c.type in NO_TIMEOUT_REASONS:
                self.err("timeout_unsupported", f"timeout_secs does not apply to a {c.type} step: "
                         f"{NO_TIMEOUT_REASONS[c.type]}", step=s.id, field="timeout_secs")
            if s.retry is not None and c.type in NO_RETRY_TYPES:
                self.err("retry_unsupported", f"retry cannot be used on a {c.type} step", step=s.id, field="retry")
            if s.retry is not None and s.retry.strategy == "llm_self_correct" and c.type != "agent":
                self.err("retry_unsupported", "retry strategy llm_self_correct only applies to agent steps",
                         step=s.id, field="retry.strategy")
            if c.type == "sub_workflow" and c.workflow_name == self.wf.name:
                self.err("recursive_sub_workflow", "a workflow cannot run itself as a sub-workflow",
                         step=s.id, field="config.workflow_name")
            if c.type == "code":
                self._check_code_language(s)
            self._check_asset_name(s)
        return not self.errors

    def _check_asset_name(self, s: Step) -> None:
        """Names that become a folder or a state machine name: one plain segment each, so a
        workflow cannot reach a file or a machine outside its own (``../``, ``/``, ``:``)."""
        c = s.config
        problem, fieldname = None, ""
        if c.type == "agent":
            problem, fieldname = bot_name_problem(c.bot), "config.bot"
        elif c.type == "skill":
            problem, fieldname = skill_name_problem(c.skill), "config.skill"
        elif c.type == "sub_workflow" and (len(c.workflow_name) > WORKFLOW_NAME_MAX
                                           or not re.match(WORKFLOW_NAME_PATTERN, c.workflow_name)):
            problem = (f"{_shown(c.workflow_name)} is not a workflow name (letters, digits and '-', "
                       f"at most {WORKFLOW_NAME_MAX} characters)")
            fieldname = "config.workflow_name"
        if problem is not None:
            self.err("invalid_name", problem, step=s.id, field=fieldname)

    def _check_code_language(self, s: Step) -> None:
        try:
            from boternity.executors.code import unsupported_language_reason
        except ImportError:  # executor not installed in this build: the step fails clearly at run time
            return
        reason = unsupported_language_reason(s.config.language)
        if reason:
            self.err("language_unsupported", reason, step=s.id, field="config.language")

    # ------------------------------------------------------------------ graph
    def check_graph(self) -> Any:
        g = build_graph(self.wf)
        for code, step, fieldname, message in g.problems:
            self.err(code, message, step=step, field=fieldname)
        cycle = find_cycle(g)
        if cycle:
            self.err("cycle", "dependency cycle: " + " -> ".join(cycle), step=cycle[0], field="depends_on")
            return None
        return g

    # ------------------------------------------------------------------ references
    def check_refs(self, g: Any) -> None:
        for s in self.wf.steps:
            # With a cycle there is no "upstream": only the cycle is reported.
            readable = g.readable(s.id) if g is not None else set(self.index)
            in_loop = g.scope_chain(s.id) if g is not None else []
            for fieldname, value in _template_fields(s):
                try:
                    refs = value_references(value)
                except ExpressionError as exc:
                    self.err("template_syntax", exc.message if hasattr(exc, "message") else str(exc),
                             step=s.id, field=fieldname)
                    continue
                for ref in refs:
                    self._check_ref(ref, s, fieldname, readable, in_loop, template=True)
            if s.for_each is not None:
                try:
                    refs = value_references(s.for_each)
                except ExpressionError as exc:
                    self.err("template_syntax", str(exc), step=s.id, field="for_each")
                    refs = []
                else:
                    if not refs:
                        self.err("invalid_for_each", "for_each must be a template giving a list, "
                                 "e.g. \"{{ steps.fetch.output.items }}\"", step=s.id, field="for_each")
                for ref in refs:
                    if ref.root in ("item", "index"):
                        self.err("invalid_reference", "for_each cannot use {{ item }} or {{ index }}",
                                 step=s.id, field="for_each")
                    else:
                        self._check_ref(ref, s, "for_each", readable, in_loop, template=True)
            conditions: list[tuple[str, str, set[str]]] = []
            if s.condition:
                conditions.append(("condition", s.condition, readable))
            if s.config.type == "conditional":
                conditions.append(("config.condition", s.config.condition, readable))
            if s.config.type == "loop":
                body_readable = readable | (g.owned(s.id) if g is not None else set()) | {s.id}
                conditions.append(("config.condition", s.config.condition, body_readable))
            for fieldname, expr, allowed in conditions:
                try:
                    parse_condition(expr)
                    refs = condition_references(expr)
                except ExpressionError as exc:
                    self.err("condition_syntax", str(exc), step=s.id, field=fieldname)
                    continue
                loop_ok = in_loop or (s.config.type == "loop" and fieldname == "config.condition")
                for ref in refs:
                    self._check_ref(ref, s, fieldname, allowed, in_loop if not loop_ok else [s.id],
                                    template=False)

    def _check_ref(self, ref: Ref, s: Step, fieldname: str, readable: set[str], in_loop: list[str],
                   *, template: bool) -> None:
        root, path = ref.root, ref.path
        where = f"'{ref.text}'"
        if root not in TEMPLATE_ROOTS:
            self.err("unknown_reference", f"{where}: unknown name '{root}' (use one of: "
                     f"{', '.join(sorted(TEMPLATE_ROOTS))})", step=s.id, field=fieldname)
            return
        if root == "steps":
            if not path:
                self.err("invalid_reference", f"{where}: name a step, e.g. steps.<id>.output", step=s.id,
                         field=fieldname)
                return
            target = str(path[0])
            if target not in self.index:
                self.err("unknown_step_reference", f"{where} reads unknown step '{target}'", step=s.id,
                         field=fieldname)
            elif target == s.id and not (s.config.type == "loop" and fieldname == "config.condition"):
                self.err("self_reference", f"{where}: a step cannot read its own output", step=s.id,
                         field=fieldname)
            elif target not in readable and target != s.id:
                self.err("not_upstream", f"{where} reads step '{target}', which is not upstream of "
                         f"'{s.id}' (add it to depends_on, directly or through another step)",
                         step=s.id, field=fieldname)
            if len(path) >= 2 and path[1] not in STEP_FIELDS:
                self.err("invalid_reference", f"{where}: a step has 'output', 'status' and 'error', "
                         f"not '{path[1]}'", step=s.id, field=fieldname)
        elif root in ("item", "index"):
            if s.for_each is None:
                self.err("invalid_reference", f"{where}: {{{{ {root} }}}} only exists in a step with for_each",
                         step=s.id, field=fieldname)
        elif root == "variables":
            if path and str(path[0]) not in self.wf.variables:
                self.err("unknown_variable", f"{where}: no variable '{path[0]}' is defined under 'variables'",
                         step=s.id, field=fieldname)
        elif root == "secrets":
            self._check_secret_ref(where, path, s, fieldname)
        elif root == "loop":
            if not in_loop:
                self.err("invalid_reference", f"{where}: 'loop' only exists inside a loop body or condition",
                         step=s.id, field=fieldname)
            elif path and path[0] not in LOOP_FIELDS:
                self.err("invalid_reference", f"{where}: loop has 'iteration' only", step=s.id, field=fieldname)
        elif root == "workflow":
            if path and path[0] not in WORKFLOW_FIELDS:
                self.err("invalid_reference", f"{where}: workflow has 'name' only", step=s.id, field=fieldname)
        elif root == "run" and path and path[0] not in RUN_FIELDS:
            self.err("invalid_reference", f"{where}: run has {', '.join(sorted(RUN_FIELDS))}", step=s.id,
                     field=fieldname)

    def _check_secret_ref(self, where: str, path: tuple[str | int, ...], s: Step, fieldname: str) -> None:
        # Secrets are rendered only into an http request (url, headers, query, body); anywhere else
        # (a condition, for_each, another step type) they would end up in records or prompts.
        if not where.isprintable():  # a hostile name may carry terminal escapes: never echo them raw
            where = where.encode("unicode_escape").decode("ascii")
        if s.config.type != "http" or fieldname not in HTTP_SECRET_FIELDS:
            self.err("secrets_not_allowed", f"{where}: secrets can only be used in an http step's url, "
                     "headers, query or body", step=s.id, field=fieldname)
        elif not path:
            self.err("invalid_reference", f"{where}: name a secret, e.g. secrets.API_TOKEN", step=s.id,
                     field=fieldname)
        elif (problem := secret_name_problem(path[0])) is not None:
            self.err("invalid_secret_name", f"{where}: {problem}", step=s.id, field=fieldname)
        elif len(path) > 1:
            self.err("invalid_reference", f"{where}: a secret is a string, write secrets.{path[0]}",
                     step=s.id, field=fieldname)

    # ------------------------------------------------------------------ triggers
    def check_triggers(self) -> None:
        for i, t in enumerate(self.wf.triggers):
            path = ("triggers", i)
            when = getattr(t, "when", None)
            if when:
                try:
                    parse_condition(when)
                    for ref in condition_references(when):
                        if ref.root not in WHEN_ROOTS:
                            self.err("unknown_reference", f"'{ref.text}': a trigger's 'when' can read 'event' "
                                     "(the payload) and 'trigger' only", field=f"triggers[{i}].when",
                                     path=(*path, "when"))
                except ExpressionError as exc:
                    self.err("condition_syntax", str(exc), field=f"triggers[{i}].when", path=(*path, "when"))
            if t.type == "cron":
                self._check_cron(t, i)
            auth = getattr(t, "auth", None)
            if auth is not None and auth.secret_name is not None:
                problem = secret_name_problem(auth.secret_name)
                if problem is not None:
                    self.err("invalid_secret_name", problem, field=f"triggers[{i}].auth.secret_name",
                             path=(*path, "auth", "secret_name"))

    def _check_cron(self, t: Any, i: int) -> None:
        try:
            from boternity.triggers.schedule import to_scheduler_expression, validate_timezone
        except ImportError:
            return
        for fname, fn, arg in (("schedule", to_scheduler_expression, t.schedule),
                               ("timezone", validate_timezone, t.timezone)):
            try:
                fn(arg)
            except WorkflowError as exc:
                self.err(exc.code, exc.message, field=f"triggers[{i}].{fname}", path=("triggers", i, fname))


def _shown(value: str) -> str:
    """A name for a message: escapes for control characters (a terminal must not interpret them), cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_workflow(loaded: LoadedWorkflow | Workflow) -> None:
    """Raise ValidationFailed with every problem in the workflow, or return None."""
    if isinstance(loaded, Workflow):
        wf, source = loaded, None
    else:
        wf, source = loaded.workflow, loaded.source
    c = _Checker(wf, source)
    c.check_structure()
    g = c.check_graph()
    c.check_refs(g)
    c.check_triggers()
    if c.errors:
        raise ValidationFailed(c.errors)


def load_workflow_text(text: str, *, file: str | None = None, validate: bool = True) -> LoadedWorkflow:
    """Parse and check a workflow from YAML (or JSON) text; raises ValidationFailed listing every problem."""
    loaded = read_workflow_text(text, file=file)
    if validate:
        check_workflow(loaded)
    return loaded


def load_workflow(path: str | Path, *, validate: bool = True) -> LoadedWorkflow:
    """Load and check a workflow file; raises ValidationFailed listing every problem found."""
    loaded = read_workflow(path)
    if validate:
        check_workflow(loaded)
    return loaded


def loop_scopes(wf: Workflow) -> dict[str, str]:
    """step id -> enclosing loop id (TOP for top-level steps)."""
    return build_graph(wf).owner


__all__ = ["TOP", "check_workflow", "load_workflow", "load_workflow_text", "loop_scopes"]
