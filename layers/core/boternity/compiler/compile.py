"""Workflow model in, Amazon States Language dict out. Pure: no clients, clock or environment.

The state of a run is ``{"ctx": {trigger, run, workflow, variables}, "steps": {<id>: record}}``
where a record is ``{"status": "completed" | "skipped" | "failed", "output": ...}``. A step writes
its record to ``$.steps.<id>``, or, inside the k-th nested non-first branch of Parallel states, to
``$.b<k>.<id>``: such a branch ends by returning just ``$.b<k>`` (its own records) through its last
state's OutputPath, and the Parallel merges the branches back with ``States.JsonMerge``. Functions
see one merged view of the records. See docs/compiler.md for the shapes with examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

from boternity.compiler import limits, states
from boternity.compiler.names import Names
from boternity.compiler.plan import Chains, Leaf, Node, Par, Seq, plan_scope
from boternity.compiler.records import STARTED
from boternity.compiler.states import NEXT, wire
from boternity.compiler.targets import TaskTargets, step_function_kind
from boternity.compiler.waits import Slot, WaitPlan, plan_waits
from boternity.errors import CompileError
from boternity.expressions.jexl import condition_references
from boternity.expressions.templates import value_references
from boternity.graph import TOP, Graph, build_graph

if TYPE_CHECKING:
    from boternity.model.workflow import Step, Workflow

START = "Run.start"
DONE = "Run.done"
LAMBDA_TYPES = {"agent", "skill", "http", "code"}
# The config fields whose strings are templates, per step type: the same list as validation's
# (validate.py sits above the compiler, which may not import it; tests/unit/test_compiler_payloads.py
# checks the two agree on every step type).
TEMPLATED_FIELDS: dict[str, tuple[str, ...]] = {
    "agent": ("prompt", "system"),
    "skill": ("input",),
    "code": ("input",),
    "http": ("url", "headers", "query", "body"),
    "approval": ("prompt",),
    "sub_workflow": ("input",),
    "wait": ("until",),
}


def template_fields(step: Step) -> list[tuple[str, Any]]:
    """(field path, value) of every config field of ``step`` whose strings are templates."""
    out = []
    for name in TEMPLATED_FIELDS.get(step.config.type, ()):
        value = getattr(step.config, name, None)
        if value is not None:
            out.append((f"config.{name}", value))
    return out


@dataclass
class OpenWait:
    """A static wait that ends its fragment: its record in the run table is ended by whatever
    Lambda task follows it in the same flow, or, when none does, by its own ``.done`` task."""
    step: str
    wait_state: str
    level: int                           # where its record is in the state ($.steps or $.b<level>)
    record_path: str                     # the path of its record there
    loops: list[str]
    signal: bool
    done_name: str
    done: dict[str, Any]                 # the .done task, added only when no task can end the wait
    # A planned wait's record needs nobody to end it (its end is in it): the next task ends it in
    # the run table if there is one, and nothing is added if not. Only a signal needs a task.
    optional: bool = False


@dataclass
class Frag:
    start: str
    states: dict[str, dict[str, Any]]
    events: int = 0
    new_steps: list[str] = field(default_factory=list)   # records this fragment adds to $.steps
    open_wait: OpenWait | None = None    # the fragment ends with a static wait's Wait state


# The control-function and step-function operations that end the static waits named in their
# payload before anything else (runtime/step.py: end_waits). An approval's request is handled by
# the approval function, which does not.
ENDS_WAITS_OPS = frozenset({"run", "start", "prepare", "finish", "loop", "signal", "await", "gate"})


@dataclass
class Compiled:
    definition: dict[str, Any]
    estimated_events: int
    definition_bytes: int
    inline_bytes: int


def compile_workflow(wf: Workflow, *, targets: TaskTargets | None = None,
                     inline_bytes: int = limits.DEFAULT_INLINE_BYTES) -> dict[str, Any]:
    """Compile a validated workflow to an ASL definition (a dict)."""
    return compile_details(wf, targets=targets, inline_bytes=inline_bytes).definition


def compile_details(wf: Workflow, *, targets: TaskTargets | None = None,
                    inline_bytes: int = limits.DEFAULT_INLINE_BYTES) -> Compiled:
    c = _Compiler(wf, targets or TaskTargets.sam(), inline_bytes)
    return c.run()


def definition_json(definition: dict[str, Any]) -> str:
    """The exact bytes `boternity compile` prints: sorted keys, 2-space indent."""
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


class _Compiler:
    def __init__(self, wf: Workflow, targets: TaskTargets, inline_bytes: int) -> None:
        self.wf = wf
        self.targets = targets
        self.g: Graph = build_graph(wf)
        self.names = Names()
        self._handlers: dict[tuple[str, str, str], str] = {}   # (step, kind, result path) -> state name
        self._skippable: dict[str, bool] = {}
        self._for_each: list[tuple[dict[str, Any], int]] = []   # (spec, history events per item)
        # How many non-first Parallel branches enclose the states being compiled: records go to
        # $.steps at level 0 and to $.b<level> deeper (see the module docstring).
        self.level = 0
        # The records the state holds at the point being compiled, and at which level (0 for
        # $.steps, k for $.b<k>), exactly as the run will have them there: a payload can then
        # name each record it reads by its path instead of carrying the whole state.
        self.visible: dict[str, int] = {}
        # Records a gate brought into this branch (an await of several producers at once): they
        # sit under the gate's own key ($.w_<consumer>.<producer>), not under a level's records.
        # ``gates`` lists the gate keys certainly in the state here, oldest first.
        self.gated: dict[str, str] = {}
        self.gates: list[str] = []
        self.in_item = False   # compiling a for_each item: its state also has item and index
        # The static waits of the scope being compiled, planned ahead (compiler/waits.py), and the
        # waits whose own prepare is compiled already (a planner's, before its Parallel).
        self._plan = WaitPlan()
        self._prepared: set[str] = set()
        # Static waits whose record sits under the record of the task that started them, at the
        # point being compiled (kept per branch, as ``visible``: an await elsewhere brings a flat copy).
        self._carrier: dict[str, str] = {}
        self._reads_cache: dict[str, frozenset[str]] = {}
        # step -> the conditionals whose then/else lists name it, and which side: looked up once
        # per step, so compiling stays linear in the number of steps.
        self._in_branches: dict[str, list[tuple[str, str]]] = {}
        for o in wf.steps:
            if o.config.type == "conditional":
                for side, listed in (("then", o.config.then_steps), ("else", o.config.else_steps)):
                    for sid in dict.fromkeys(listed):
                        self._in_branches.setdefault(sid, []).append((o.id, side))
        for reserved in (START, DONE):
            self.names.take(reserved)
        # Every step's inline share of the state budget, so the whole state stays under 256 KiB
        # however many outputs it carries (each record is bounded; Parallel merges keep one copy).
        share = limits.STATE_BUDGET_BYTES // max(1, len(wf.steps))
        self.inline = max(limits.MIN_INLINE_BYTES, min(inline_bytes, share))

    # ------------------------------------------------------------------ entry
    def run(self) -> Compiled:
        top = self.scope(TOP)
        if top.open_wait is not None and not top.open_wait.signal:
            # The run ends with a static wait's Wait: its final record is in the run's output, and
            # the run's end settles it in the run table (runtime/finish.py), so no .done task.
            top.open_wait = None
        top = self._close(top)
        init = states.pass_(
            comment=f"Workflow {self.wf.name}: the trigger payload becomes ctx.trigger",
            parameters={
                "ctx": {
                    "trigger.$": "$",
                    "run": {"id.$": "$$.Execution.Name", "started_at.$": "$$.Execution.StartTime"},
                    "workflow": {
                        "name": self.wf.name,
                        "allow_private_network": self.wf.allow_private_network,
                    },
                    "variables": self.wf.variables,
                },
                "steps": {},
            },
        )
        init["Next"] = top.start
        # The run's output is every step's record: the states that end the run output $.steps
        # themselves, rather than entering a Succeed state that would cost one more transition per
        # run. Only a Choice, which cannot end a machine, goes to a Pass named Run.done.
        top_states = dict(top.states)
        wire(top_states, None, end_name=DONE, output_path="$.steps")
        first = top_states[top.start]
        if first["Type"] == "Parallel":
            # A run that opens with a Parallel builds ctx in the Parallel's own Parameters (its
            # input is the trigger payload, as Run.start's would be): one transition less per run.
            first["Comment"] = f"{init['Comment']}; {first['Comment']}"
            first["Parameters"] = {**init["Parameters"], **{k: v for k, v in first["Parameters"].items()
                                                            if not k.endswith(".$")}}
            start_at, all_states = top.start, top_states
        else:
            start_at, all_states = START, {START: init, **top_states}
        definition: dict[str, Any] = {
            "Comment": f"Boternity workflow '{self.wf.name}'" + (f": {self.wf.description}" if self.wf.description else ""),
            "StartAt": start_at,
            "TimeoutSeconds": self.wf.timeout_secs,
            "States": all_states,
        }
        events = top.events + limits.EVENTS_EXECUTION + 2 * limits.EVENTS_SIMPLE
        # Every record at its largest: an output just under the inline limit, or a reference.
        worst = sum(len(s.id) + limits.RECORD_OVERHEAD_BYTES + max(self.inline, limits.MAX_REF_BYTES)
                    for s in self.wf.steps)
        if worst > limits.MAX_STATE_WORST_BYTES:
            raise CompileError(
                f"{len(self.wf.steps)} steps cannot all keep their records in one execution's state "
                f"(about {worst:,} bytes with {self.inline} bytes of output each; Step Functions allows 256 KiB). "
                "Move groups of steps into sub_workflow steps.", limit="state_size")
        self._cap_for_each(events)
        size = len(json.dumps(definition, separators=(",", ":")).encode())
        if size >= limits.MAX_DEFINITION_BYTES:
            raise CompileError(
                f"the state machine definition would be {size:,} bytes; Step Functions allows "
                f"{limits.MAX_DEFINITION_BYTES:,}. Split the workflow into sub-workflows.", limit="definition_size")
        if events >= limits.MAX_HISTORY_EVENTS:
            raise CompileError(
                f"a run could write about {events:,} history events (loops, for_each items and retries "
                f"included); Step Functions fails an execution at {limits.MAX_HISTORY_EVENTS:,}. Lower "
                "max_iterations or retries, or move the repeated part into a sub_workflow step, whose "
                "history is separate.", limit="history_events")
        return Compiled(definition=definition, estimated_events=events, definition_bytes=size,
                        inline_bytes=self.inline)

    def _cap_for_each(self, events: int) -> None:
        """Share the history left after everything else between the for_each steps, so that the
        runtime refuses a list that would overflow 25,000 events instead of failing mid-run."""
        if not self._for_each:
            return
        assumed = sum(limits.FOR_EACH_ESTIMATE * per_item for _, per_item in self._for_each)
        left = limits.MAX_HISTORY_EVENTS - (events - assumed)
        share = left // len(self._for_each)
        for spec, per_item in self._for_each:
            spec["max_items"] = max(1, min(limits.MAX_FOR_EACH_ITEMS, share // per_item))

    # ------------------------------------------------------------------ scopes and plan nodes
    def scope(self, scope_id: str) -> Frag:
        nodes = self.g.scopes.get(scope_id, [])
        plan = plan_scope(nodes, self.g.deps)
        seconds = {sid: int(self.g.steps[sid].config.seconds) for sid in nodes
                   if self._static_wait(self.g.steps[sid])}
        saved = self._plan
        self._plan = plan_waits(plan, self.g.deps, seconds, self._is_carrier)
        try:
            return self.node(plan, self._plan.signal)
        finally:
            self._plan = saved

    def _is_carrier(self, step_id: str) -> bool:
        """Whether a step's task can start the static waits after it: a Lambda step task that
        the flow leaves by (not continue_on_error, which leaves through a Pass; not for_each, a
        Map left by its .done task)."""
        s = self.g.steps[step_id]
        t = s.config.type
        return (t in LAMBDA_TYPES or t == "conditional") and not s.continue_on_error and not s.for_each

    def node(self, n: Node, signal: set[str]) -> Frag:
        if isinstance(n, Leaf):
            return self.step(self.g.steps[n.step], signal=n.step in signal)
        if isinstance(n, Seq):
            frags = [self.node(it, signal) for it in n.items]
            return self.sequence(frags)
        head = self._plan.planners.get(id(n))
        if head is not None:
            # Every branch opens with a static wait: the first one's prepare, before the
            # Parallel, starts them all (compiler/waits.py).
            planner = self.wait_prepare(self.g.steps[head], signal=head in signal)
            return self.sequence([planner, self._parallel_node(n, signal)])
        return self._parallel_node(n, signal)

    def _parallel_node(self, n: Par | Chains, signal: set[str]) -> Frag:
        if isinstance(n, Par):
            return self.branches([lambda b=b: self.node(b, signal) for b in n.branches])

        def chain_frag(chain: list[str]) -> Frag:
            parts: list[Frag] = []
            for sid in chain:
                producers = n.waits.get(sid, [])
                if sid in self._plan.padded:
                    # Its producers in other branches are waits planned on this branch's clock:
                    # it waits out the difference (a wait adds it to its own Wait) instead of a signal.
                    if self._plan.pads.get(sid):
                        parts.append(self.pad(sid, producers, self._plan.pads[sid]))
                elif len(producers) > 1:
                    parts.append(self.gate(sid, producers))
                elif producers:
                    parts.append(self.await_(sid, producers[0]))
                parts.append(self.step(self.g.steps[sid], signal=sid in signal))
            return self.sequence(parts)

        return self.branches([lambda c=c: chain_frag(c) for c in n.chains])

    def pad(self, sid: str, producers: list[str], seconds: int) -> Frag:
        name = self.names.take(f"{sid}.after.{'+'.join(producers)}")
        st = states.wait(seconds=seconds, comment=f"'{sid}' also needs {', '.join(repr(p) for p in producers)}, "
                                                  f"planned waits of other branches ending {seconds} s later")
        return Frag(name, {name: st}, limits.EVENTS_SIMPLE, [])

    # ------------------------------------------------------------------ where records live
    def _records(self) -> str:
        return "steps" if self.level == 0 else f"b{self.level}"

    def _rp(self, step_id: str) -> str:
        return f"$.{self._records()}.{step_id}"

    def _merged_steps(self) -> str:
        """A path or intrinsic giving every record visible here, the innermost winning (a gate's
        records are the newest: an outer level may hold a copy from an earlier loop iteration)."""
        return _merge_expr(["$.steps", *(f"$.b{k}" for k in range(1, self.level + 1)),
                            *(f"$.{g}" for g in self.gates)])

    def _whole_state(self) -> dict[str, Any]:
        """The payload entry giving a function the run's whole state, with the records merged."""
        if self.level == 0 and not self.gates:
            return {"state.$": "$"}
        return {"state": {"ctx.$": "$.ctx", "steps.$": self._merged_steps()}}

    def _record_path(self, step_id: str) -> str:
        if step_id in self.gated:
            return self.gated[step_id]
        carrier = self._carrier.get(step_id)
        if carrier is not None:
            return f"{self._record_path(carrier)}.{STARTED}.{step_id}"
        level = self.visible[step_id]
        return f"$.steps.{step_id}" if level == 0 else f"$.b{level}.{step_id}"

    def _state_param(self, reads: set[str] | frozenset[str]) -> dict[str, Any]:
        """The payload entry giving a function ctx and just the records it reads.

        When one of them is not certainly in the state here (a loop body's records after the loop,
        which ran zero times or more; an ancestor that ran in another branch and was not awaited),
        the function gets every record instead, as before: a path to a missing field would fail
        the state, while a template reading a record that is not there must behave as it always
        did (see docs/compiler.md, "What a function receives").
        """
        if not reads <= self.visible.keys():
            return self._whole_state()
        state: dict[str, Any] = {"ctx.$": "$.ctx",
                                 "steps": {f"{r}.$": self._record_path(r) for r in sorted(reads)}}
        if self.in_item:
            state["item.$"] = "$.item"
            state["index.$"] = "$.index"
        return {"state": state}

    def _reads(self, s: Step) -> frozenset[str]:
        """The records a step's function reads: the steps its templates, conditions and for_each
        name; its dependencies and conditionals (the gate reads their status); its loops (the
        iteration numbers)."""
        cached = self._reads_cache.get(s.id)
        if cached is not None:
            return cached
        exprs: list[str] = []
        refs = [r for _, value in template_fields(s) for r in value_references(value)]
        if s.for_each is not None:
            refs += value_references(s.for_each)
        if s.condition:
            exprs.append(s.condition)
        if s.config.type in ("conditional", "loop"):
            exprs.append(s.config.condition)
        for e in exprs:
            refs += condition_references(e)
        out = {str(r.path[0]) for r in refs if r.root == "steps" and r.path}
        out |= set(self.g.deps.get(s.id, []))
        out |= {c for c, _ in self._in_branches.get(s.id, ())}
        out |= set(self.g.scope_chain(s.id))
        out.discard(s.id)
        result = self._reads_cache[s.id] = frozenset(out)
        return result

    def _wrote(self, step_id: str) -> None:
        """The record of ``step_id`` is in the state from here on, at this level."""
        self.visible[step_id] = self.level
        self.gated.pop(step_id, None)
        self._carrier.pop(step_id, None)

    def sequence(self, frags: list[Frag]) -> Frag:
        merged: dict[str, dict[str, Any]] = {}
        for a, b in zip(frags, frags[1:], strict=False):
            if a.open_wait is not None and not self._ends_wait(a.open_wait, b.states[b.start]):
                self._close(a)
            wire(a.states, b.start)
        new: list[str] = []
        for f in frags:
            merged.update(f.states)
            new.extend(f.new_steps)
        return Frag(frags[0].start, merged, sum(f.events for f in frags), new, frags[-1].open_wait)

    def _ends_wait(self, ow: OpenWait, nxt: dict[str, Any]) -> bool:
        """Let the task right after a static wait end the wait's record (and signal it): it runs
        the moment the Wait state ends, as a .done task would, and saves that task and its
        transition. Returns False when the next state is not such a task."""
        payload = (nxt.get("Parameters") or {}).get("Payload") if nxt.get("Type") == "Task" else None
        if not isinstance(payload, dict) or payload.get("op") not in ENDS_WAITS_OPS:
            return False
        payload.setdefault("ended", []).append({"id": ow.step, "loops": ow.loops, **({"signal": True} if ow.signal else {})})
        sent = payload.get("state")
        if isinstance(sent, dict) and isinstance(sent.get("steps"), dict):
            # The wait's record (written by its start task) and its loops' iteration numbers.
            sent["steps"].setdefault(f"{ow.step}.$", ow.record_path)
            for sid in ow.loops:
                level = self.visible.get(sid, ow.level)
                sent["steps"].setdefault(f"{sid}.$", f"$.steps.{sid}" if level == 0 else f"$.b{level}.{sid}")
        return True

    def _close(self, frag: Frag) -> Frag:
        """Nothing that can end the static wait follows it: add its own .done task."""
        ow = frag.open_wait
        if ow is None:
            return frag
        if ow.optional:
            frag.open_wait = None
            return frag
        frag.states[ow.wait_state]["Next"] = ow.done_name
        frag.states[ow.done_name] = ow.done
        frag.events += limits.EVENTS_TASK
        frag.open_wait = None
        return frag

    def branches(self, build: list[Callable[[], Frag]]) -> Frag:
        """Compile branch builders side by side: the first at this level, the others one deeper."""
        if len(build) == 1:
            return build[0]()
        before = dict(self.visible)
        gated, gates = dict(self.gated), list(self.gates)
        carried = dict(self._carrier)
        first = build[0]()
        seen = [self.visible]
        seen_carried = [self._carrier]
        self.level += 1
        try:
            rest = []
            for b in build[1:]:
                self.visible = dict(before)
                self.gated, self.gates = dict(gated), list(gates)
                self._carrier = dict(carried)
                rest.append(b())
                seen.append(self.visible)
                seen_carried.append(self._carrier)
        finally:
            self.level -= 1
        # After the Parallel, every branch's records are merged at this level; the gates opened
        # before it are carried through it (its Parameters and ResultSelector), those opened in
        # its branches are not (what they brought in is merged with the branch that wrote it).
        self.visible = dict(before)
        self.gated, self.gates = gated, gates
        self._carrier = carried
        flat: set[str] = set()
        for branch, branch_carried in zip(seen, seen_carried, strict=True):
            for sid, lv in branch.items():
                self.visible[sid] = min(lv, self.level)
                if sid not in before:
                    self.gated.pop(sid, None)
                    if sid in branch_carried:
                        self._carrier.setdefault(sid, branch_carried[sid])
                    else:
                        flat.add(sid)
        # A record some branch holds flat (an await's copy) is flat in the merged records too.
        for sid in flat:
            self._carrier.pop(sid, None)
        return self.parallel([first, *rest])

    def parallel(self, branches: list[Frag]) -> Frag:
        """Branch 0 carries the whole state; the others return only the records they wrote."""
        level = self.level
        own = self._records()
        inner = f"b{level + 1}"
        label = "+".join(b.new_steps[0] if b.new_steps else b.start for b in branches[:4])
        if len(branches) > 4:
            label += f"+{len(branches) - 4}more"
        name = self.names.take(f"Parallel({label})")
        asl_branches = []
        parts = [f"$[0].{own}"]
        for i, b in enumerate(branches):
            st = dict(self._close(b).states)
            if i == 0:
                wire(st, None, end_name=self.names.take(f"{name}.end0"))
            else:
                # The other branches wrote their records to $.b<level+1> and return just that, so
                # the merged state holds one copy of what came before (not one per branch), and no
                # extra state is needed to trim a branch's output.
                wire(st, None, end_name=self.names.take(f"{name}.end{i}"), output_path=f"$.{inner}")
                parts.append(f"$[{i}]")
            asl_branches.append({"StartAt": b.start, "States": st})
        new = [s for b in branches for s in b.new_steps]
        keep = ["steps", *(f"b{k}" for k in range(1, level + 1))]
        par = {
            "Type": "Parallel",
            "Comment": f"{len(branches)} branches run at once: " + ", ".join(new[:20]) + ("..." if len(new) > 20 else ""),
            "Parameters": {"ctx.$": "$.ctx", **{f"{k}.$": f"$.{k}" for k in keep}, inner: {},
                           **{f"{g}.$": f"$.{g}" for g in self.gates}},
            "Branches": asl_branches,
            "ResultSelector": {"ctx.$": "$[0].ctx",
                               **{f"{k}.$": (_merge_expr(parts) if k == own else f"$[0].{k}") for k in keep},
                               **{f"{g}.$": f"$[0].{g}" for g in self.gates}},
            "ResultPath": "$",
            "Next": NEXT,
        }
        events = limits.EVENTS_PARALLEL + sum(b.events for b in branches)
        return Frag(name, {name: par}, events, new)

    # ------------------------------------------------------------------ steps
    def spec(self, s: Step, *, signal: bool) -> dict[str, Any]:
        """What a step's Lambda needs to know, fixed at compile time."""
        branches = [[c, side] for c, side in self._in_branches.get(s.id, ())
                    if self.g.owner.get(c) == self.g.owner.get(s.id)]
        spec: dict[str, Any] = {
            "id": s.id,
            "name": s.name,
            "type": s.type,
            "config": s.config.model_dump(mode="json", exclude_none=True),
            "deps": list(self.g.deps.get(s.id, [])),
            "loops": list(reversed(self.g.scope_chain(s.id))),
            "inline_limit": self.inline,
        }
        if s.condition:
            spec["condition"] = s.condition
        if branches:
            spec["branches"] = branches
        if s.for_each:
            spec["for_each"] = s.for_each
            spec["max_items"] = limits.MAX_FOR_EACH_ITEMS  # lowered to the history budget in run()
        if s.continue_on_error:
            spec["continue_on_error"] = True
        if s.retry:
            spec["retry"] = s.retry.model_dump(mode="json", exclude_none=True)
        if signal:
            spec["signal"] = True
        return spec

    def _payload(self, s: Step, spec: dict[str, Any], op: str, *, token: bool = False) -> dict[str, Any]:
        reads = set(self._reads(s))
        if op in ("finish", "loop"):
            reads.add(s.id)   # the step's own record so far: what prepare, the Map or the last check left
        p: dict[str, Any] = {"op": op, "step": spec, **self._state_param(reads),
                             "attempt.$": "$$.State.RetryCount"}
        if token:
            p["token.$"] = "$$.Task.Token"
        return p

    def _retry(self, s: Step) -> list[dict[str, Any]]:
        r: list[dict[str, Any]] = [dict(states.LAMBDA_SERVICE_RETRY)]
        if s.retry is None:
            # Transient failures (rate limits, 5xx, timeouts reported by the executor) are retried
            # twice with backoff even without a retry policy, as Temporal and Inngest do.
            r.append({"ErrorEquals": ["StepRetryable"], "IntervalSeconds": 2, "MaxAttempts": 2,
                      "BackoffRate": 2.0, "JitterStrategy": "FULL"})
            return r
        if s.retry.strategy != "llm_self_correct":
            # Permanent failures are not retried with the same input; with self-correction the
            # next attempt gets a corrected instruction, so those are worth retrying too.
            r.append({"ErrorEquals": ["StepFailed"], "MaxAttempts": 0})
        if s.retry.max_attempts > 1:
            r.append(_policy_retrier(s.retry))
        return r

    def _child_retry(self, s: Step) -> list[dict[str, Any]]:
        """A sub_workflow's retriers: its own policy only. A failed child fails the task with
        States.TaskFailed (its steps were retried inside it already), so nothing is retried by
        default, and the Lambda and StepFailed retriers of a function step do not apply."""
        if s.retry is None or s.retry.max_attempts <= 1:
            return []
        return [_policy_retrier(s.retry)]

    def _retries_events(self, s: Step) -> int:
        attempts = s.retry.max_attempts if s.retry else 3
        return (attempts - 1) * limits.EVENTS_RETRY

    def _catch(self, s: Step, st: dict[str, dict[str, Any]], rp: str, *, signal: bool,
               in_map: bool = False) -> list[dict[str, Any]]:
        """Failure handling: continue_on_error records the error as the output; otherwise fail the run.

        Several states of one step (prepare, Map, task) share one handler state per scope.
        """
        kind = "error" if s.continue_on_error else "failed"
        key = (s.id, kind, rp)
        name = self._handlers.get(key)
        if name is None:
            name = self._handlers[key] = self.names.take(f"{s.id}.{kind}")
            if s.continue_on_error and in_map:
                # The cause (the function's error message) is in the item's run record already.
                st[name] = states.pass_(
                    comment="continue_on_error: record the item's failure and go on with the others",
                    parameters={"status": "failed", "error.$": f"{rp}.Error"}, result_path=rp,
                )
            elif s.continue_on_error:
                st[name] = states.pass_(
                    comment="continue_on_error: record the failure and let dependents run",
                    parameters={"status": "failed", "output": {"error.$": f"{rp}.Error", "cause.$": f"{rp}.Cause"},
                                "error.$": f"{rp}.Error"},
                    result_path=rp,
                )
                if signal:
                    sig = self.signal_state(s)
                    st[name]["Next"] = sig[0]
                    st.update(sig[1])
            else:
                # A Fail state may not raise a "States." error, so a step timeout (States.Timeout) is
                # reported as StepFailed with the original error name in the cause.
                st[name] = states.fail(
                    comment=f"Step '{s.id}' failed: fail the run (fail-fast)",
                    error="StepFailed",
                    cause_path=f"States.Format('step {s.id} failed ({{}}): {{}}', $.error.Error, $.error.Cause)",
                )
        if s.continue_on_error:
            return [{"ErrorEquals": ["States.ALL"], "ResultPath": rp, "Next": name}]
        return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": name}]

    def signal_state(self, s: Step) -> tuple[str, dict[str, dict[str, Any]]]:
        name = self.names.take(f"{s.id}.signal")
        st = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function("control"),
             "Payload": {"op": "signal", "step": {"id": s.id, "loops": list(reversed(self.g.scope_chain(s.id)))},
                         **self._state_param({s.id, *self.g.scope_chain(s.id)})}},
            comment=f"Tell the branches waiting for '{s.id}' that it is done",
            result_path=None, timeout=60, retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        return name, {name: st}

    def await_(self, sid: str, dep: str) -> Frag:
        name = self.names.take(f"{sid}.await.{dep}")
        st = states.task(
            states.LAMBDA_CALLBACK,
            {"FunctionName": self.targets.function("control"),
             "Payload": {"op": "await", "step": {"id": dep, "loops": list(reversed(self.g.scope_chain(dep)))},
                         **self._state_param(set(self.g.scope_chain(dep))), "token.$": "$$.Task.Token"}},
            comment=f"'{sid}' also needs '{dep}', which runs in another branch: wait for its signal",
            # Into this branch's own records: a stale copy (an earlier loop iteration) in an outer
            # level's records would otherwise win the merged view.
            result_path=self._rp(dep), timeout=self.wf.timeout_secs,
            retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        self._wrote(dep)
        return Frag(name, {name: st}, limits.EVENTS_TASK, [])

    def gate(self, sid: str, producers: list[str]) -> Frag:
        """One wait for every producer ``sid`` needs from other branches: the sync store counts
        their arrivals, and the last one (or this task, if they were all done) sends the token
        with all their records (one transition instead of one per producer)."""
        name = self.names.take(f"{sid}.await.{'+'.join(producers)}")
        key = f"w_{sid}"
        loops = list(reversed(self.g.scope_chain(sid)))
        st = states.task(
            states.LAMBDA_CALLBACK,
            {"FunctionName": self.targets.function("control"),
             "Payload": {"op": "gate", "step": {"id": sid, "loops": loops, "producers": list(producers)},
                         **self._state_param(set(self.g.scope_chain(sid))), "token.$": "$$.Task.Token"}},
            comment=f"'{sid}' also needs {', '.join(repr(p) for p in producers)}, which run in other branches: "
                    "wait for all of them at once",
            # Under a key of its own: ResultPath cannot add several records to the branch's records.
            result_path=f"$.{key}", timeout=self.wf.timeout_secs,
            retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        for p in producers:
            self.visible[p] = self.level
            self.gated[p] = f"$.{key}.{p}"
        if key not in self.gates:
            self.gates.append(key)
        return Frag(name, {name: st}, limits.EVENTS_TASK, [])

    def step(self, s: Step, *, signal: bool) -> Frag:
        t = s.config.type
        slot = self._plan.slots.get(s.id)
        if slot is not None:
            return self.planned_wait(s, slot, signal=signal)
        if t == "loop":
            frag = self.loop(s, signal=signal)
        elif s.for_each:
            frag = self.for_each(s, signal=signal)
        elif t in LAMBDA_TYPES or t == "conditional":
            frag = self.lambda_step(s, signal=signal)
        elif t == "approval":
            frag = self.approval(s, signal=signal)
        elif t in ("wait", "sub_workflow"):
            frag = self.prepared(s, signal=signal)
        else:
            raise CompileError(f"step type '{t}' cannot be compiled", step_id=s.id)
        if self._is_carrier(s.id):
            self._carry(s.id, frag.states[frag.start])
        return frag

    def _carry(self, carrier: str, task: dict[str, Any]) -> None:
        """``carrier``'s task starts the waits planned on its clock, last thing: its function
        records each one's start and end and returns their records with its own (under
        ``started``, compiler/records.py), so they are in the state from here on."""
        carried = self._plan.carried_by(carrier)
        if not carried:
            return
        task["Parameters"]["Payload"]["starts"] = [
            {"id": w, "seconds": int(self.g.steps[w].config.seconds), "after": self._plan.slots[w].start,
             "loops": list(reversed(self.g.scope_chain(w)))} for w in carried]
        task.setdefault("ResultSelector", dict(states.STEP_RESULT))[f"{STARTED}.$"] = f"$.Payload.{STARTED}"
        for w in carried:
            self.visible[w] = self.level
            self.gated.pop(w, None)
            self._carrier[w] = carrier

    def _comment(self, s: Step) -> str:
        return f"{s.name} ({s.type})" if s.name != s.id else f"{s.type} step"

    def lambda_step(self, s: Step, *, signal: bool, rp: str | None = None, name: str | None = None,
                    in_map: bool = False) -> Frag:
        """agent, skill, http, code, conditional: one Lambda task. The function evaluates the gate
        (condition, skipped dependencies, branch selection) itself, so a skip costs no extra state."""
        rp = rp or self._rp(s.id)
        kind = step_function_kind(s.type)
        assert kind is not None
        name = name or self.names.take(s.id)
        st: dict[str, dict[str, Any]] = {}
        main = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function(kind), "Payload": self._payload(s, self.spec(s, signal=signal), "run")},
            comment=self._comment(s),
            # A for_each item keeps only its status: the outputs are gathered from the run table
            # afterwards (see runtime/control.py), as all of them together may not fit the state.
            result_selector={"status.$": "$.Payload.status"} if in_map else dict(states.STEP_RESULT),
            result_path=rp, timeout=s.timeout_secs, retry=self._retry(s),
        )
        if not in_map or s.continue_on_error:
            # In a Map, an uncaught failure fails the Map, whose own Catch handles it once.
            main["Catch"] = self._catch(s, st, rp, signal=signal and not in_map, in_map=in_map)
        st = {name: main, **st}
        if not in_map:
            self._wrote(s.id)
        return Frag(name, st, limits.EVENTS_TASK + self._retries_events(s), [s.id])

    def approval(self, s: Step, *, signal: bool, rp: str | None = None, in_map: bool = False) -> Frag:
        rp = rp or self._rp(s.id)
        name = self.names.take(s.id)
        st: dict[str, dict[str, Any]] = {}
        cfg = s.config
        main = states.task(
            states.LAMBDA_CALLBACK,
            {"FunctionName": self.targets.function("approval"),
             "Payload": self._payload(s, self.spec(s, signal=False), "request", token=True)},
            comment=self._comment(s) + ": waits for a human decision", result_path=rp,
            timeout=cfg.timeout_secs, retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        catches: list[dict[str, Any]] = []
        if cfg.on_timeout == "reject":
            tname = self.names.take(f"{s.id}.timeout")
            st[tname] = states.pass_(
                comment=f"No decision within {cfg.timeout_secs} s: rejected",
                parameters={"status": "completed", "output": {"approved": False, "approver": None,
                                                              "comment": "timed out", "feedback": "timed out",
                                                              "timed_out": True,
                                                              "decided_at": None}},
                result_path=rp,
            )
            catches.append({"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": tname})
        if not in_map or s.continue_on_error:
            catches += self._catch(s, st, rp, signal=signal and not in_map)
        main["Catch"] = catches
        st = {name: main, **st}
        if not in_map:
            self._wrote(s.id)
        frag = Frag(name, st, limits.EVENTS_TASK + limits.EVENTS_SIMPLE, [s.id])
        if signal and not in_map:
            return self._then_signal(frag, s)
        return frag

    def _then_signal(self, frag: Frag, s: Step) -> Frag:
        sig_name, sig = self.signal_state(s)
        wire(frag.states, sig_name)
        return Frag(frag.start, {**frag.states, **sig}, frag.events + limits.EVENTS_TASK, frag.new_steps)

    def _prepare(self, s: Step, *, signal: bool, rp: str) -> tuple[str, dict[str, Any]]:
        name = self.names.take(f"{s.id}.prepare")
        st = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function("control"),
             "Payload": self._payload(s, self.spec(s, signal=signal), "prepare")},
            comment=f"{self._comment(s)}: check the gate and render the inputs",
            result_selector={**states.STEP_RESULT, "data.$": "$.Payload.data"}, result_path=rp,
            timeout=60, retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        self._wrote(s.id)
        return name, st

    def _gate_choice(self, s: Step, rp: str) -> tuple[str, dict[str, Any]]:
        name = self.names.take(f"{s.id}.gate")
        return name, states.choice(
            [{"Variable": f"{rp}.status", "StringEquals": "running", "Next": NEXT}],
            default=NEXT, comment="Skipped (or nothing to do): go on without running",
        )

    def prepared(self, s: Step, *, signal: bool) -> Frag:
        """wait and sub_workflow: a control task renders inputs and checks the gate first."""
        rp = self._rp(s.id)
        prep_name, prep = self._prepare(s, signal=signal, rp=rp)
        st: dict[str, dict[str, Any]] = {}
        prep["Catch"] = self._catch(s, st, rp, signal=signal)
        core_start, core, events = self._core(s, rp, st, signal=signal)
        if not self._may_skip(s.id):
            # Nothing can skip this step: no Choice, one transition less.
            prep["Next"] = core_start
            return Frag(prep_name, {prep_name: prep, **core, **st}, limits.EVENTS_TASK + events, [s.id])
        choice_name, ch = self._gate_choice(s, rp)
        ch["Choices"][0]["Next"] = core_start
        prep["Next"] = choice_name
        all_st = {prep_name: prep, choice_name: ch, **core, **st}
        return Frag(prep_name, all_st, limits.EVENTS_TASK + limits.EVENTS_SIMPLE + events, [s.id])

    def _static_wait(self, s: Step) -> bool:
        """A wait of fixed seconds that nothing can skip: its record is known before it starts."""
        cfg = s.config
        return cfg.type == "wait" and cfg.seconds is not None and not s.for_each and not self._may_skip(s.id)

    def wait_prepare(self, s: Step, *, signal: bool) -> Frag:
        """``<id>.prepare`` of a static wait that no task before it starts (op ``start``): records
        its start and end, returns its record (``{until, seconds}``, known now) and starts the
        waits planned on its clock, as a Lambda step's task would (:meth:`_carry`)."""
        rp = self._rp(s.id)
        st: dict[str, dict[str, Any]] = {}
        name = self.names.take(f"{s.id}.prepare")
        prep = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function("control"),
             "Payload": self._payload(s, self.spec(s, signal=signal), "start")},
            comment=f"{self._comment(s)}: record the start and the record it will end with",
            result_selector=dict(states.STEP_RESULT), result_path=rp,
            timeout=60, retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        prep["Catch"] = self._catch(s, st, rp, signal=signal)
        self._wrote(s.id)
        self._prepared.add(s.id)
        self._carry(s.id, prep)
        return Frag(name, {name: prep, **st}, limits.EVENTS_TASK, [])

    def planned_wait(self, s: Step, slot: Slot, *, signal: bool) -> Frag:
        """A static wait planned ahead (compiler/waits.py): its Wait state, after its own prepare
        when it is its own carrier and no planner before a Parallel made that already. Its record
        holds its end, so nothing has to end it; the task after it ends it in the run table if
        there is one, and signals it when a branch waits for it (a ``.done`` task if none)."""
        frags: list[Frag] = []
        if slot.carrier == s.id and s.id not in self._prepared:
            frags.append(self.wait_prepare(s, signal=signal))
        comment = self._comment(s)
        if slot.carrier != s.id:
            comment += f" (started by '{slot.carrier}')"
        extra = slot.wait_seconds - int(s.config.seconds)
        if extra:
            comment += f"; its first {extra} s wait for its dependencies in other branches"
        wname = self.names.take(s.id)
        w = states.wait(seconds=slot.wait_seconds, comment=comment)
        done_name, done = self._done(s, self._rp(s.id), signal=signal)
        # The .done task, if nothing else ends it, reads the record where it is and adds no copy.
        done.pop("ResultSelector", None)
        done["ResultPath"] = None
        loops = list(reversed(self.g.scope_chain(s.id)))
        ow = OpenWait(step=s.id, wait_state=wname, level=self.level, record_path=self._record_path(s.id),
                      loops=loops, signal=signal, done_name=done_name, done=done, optional=not signal)
        frags.append(Frag(wname, {wname: w}, limits.EVENTS_SIMPLE, [s.id], open_wait=ow))
        return self.sequence(frags) if len(frags) > 1 else frags[0]

    def _may_skip(self, step_id: str) -> bool:
        """Whether the gate can ever skip this step: its own condition, a conditional branch, or
        dependencies that can all be skipped."""
        if step_id in self._skippable:
            return self._skippable[step_id]
        s = self.g.steps[step_id]
        in_branch = step_id in self._in_branches
        deps = self.g.deps.get(step_id, [])
        result = bool(s.condition) or in_branch or (bool(deps) and all(self._may_skip(d) for d in deps))
        self._skippable[step_id] = result
        return result

    def _done(self, s: Step, rp: str, *, signal: bool) -> tuple[str, dict[str, Any]]:
        """A control task that finalises the step's record (and signals waiting branches): steps that
        run inside Step Functions (Wait, Map, sub-workflow) have no function of their own to do it."""
        name = self.names.take(f"{s.id}.done")
        st = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function("control"),
             "Payload": self._payload(s, self.spec(s, signal=signal), "finish")},
            comment=f"{self._comment(s)}: record the result",
            result_selector=dict(states.STEP_RESULT), result_path=rp, timeout=60,
            retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        return name, st

    def _core(self, s: Step, rp: str, st: dict[str, dict[str, Any]], *, signal: bool
              ) -> tuple[str, dict[str, dict[str, Any]], int]:
        cfg = s.config
        if cfg.type == "wait":
            wname = self.names.take(s.id)
            if cfg.seconds is not None:
                w = states.wait(seconds=cfg.seconds, comment=self._comment(s))
            else:
                w = states.wait(timestamp_path=f"{rp}.data.until", comment=self._comment(s))
            done, d = self._done(s, rp, signal=signal)
            w["Next"] = done
            return wname, {wname: w, done: d}, limits.EVENTS_SIMPLE + limits.EVENTS_TASK
        if cfg.type == "sub_workflow":
            name = self.names.take(s.id)
            t = states.task(
                states.SFN_START_SYNC,
                {"StateMachineArn": self.targets.state_machine(cfg.workflow_name),
                 "Input.$": f"{rp}.data.input", "Name.$": "States.UUID()"},
                comment=f"{self._comment(s)}: runs workflow '{cfg.workflow_name}' and waits for it",
                # Only the child's execution: its output (up to a whole state of records) would not
                # fit next to the parent's own records; the .done task reads and claim-checks it.
                result_selector={"status": "completed", "execution.$": "$.ExecutionArn"}, result_path=rp,
                timeout=s.timeout_secs, retry=self._child_retry(s),
            )
            t["Catch"] = self._catch(s, st, rp, signal=signal)
            done, d = self._done(s, rp, signal=signal)
            t["Next"] = done
            return name, {name: t, done: d}, 2 * limits.EVENTS_TASK + 2
        raise CompileError(f"no core for step type '{cfg.type}'", step_id=s.id)

    def for_each(self, s: Step, *, signal: bool) -> Frag:
        """A Map state over the list the for_each template gives; each item runs the step once."""
        rp = self._rp(s.id)
        st: dict[str, dict[str, Any]] = {}
        prep_name, prep = self._prepare(s, signal=signal, rp=rp)
        prep["Catch"] = self._catch(s, st, rp, signal=signal)
        choice_name, ch = self._gate_choice(s, rp)
        prep["Next"] = choice_name
        # The item processor: the same step with the item in the state, writing its record to "$".
        t = s.config.type
        if t not in LAMBDA_TYPES and t not in ("approval", "wait", "sub_workflow"):
            raise CompileError(f"for_each is not supported on {t} steps", step_id=s.id)
        reads = set(self._reads(s))
        if reads <= self.visible.keys():
            item_steps: Any = {f"{r}.$": self._record_path(r) for r in sorted(reads)}
            item_visible = dict.fromkeys(reads, 0)
        else:
            item_steps, item_visible = self._merged_steps(), dict.fromkeys(self.visible, 0)
        saved = self.level, self.visible, self.in_item, self.gated, self.gates
        # An item's state has the records it reads under "steps", beside the item and its index.
        self.level, self.visible, self.in_item, self.gated, self.gates = 0, item_visible, True, {}, []
        try:
            if t in LAMBDA_TYPES:
                inner = self.lambda_step(s, signal=False, rp="$", name=self.names.take(f"{s.id}.item"), in_map=True)
            elif t == "approval":
                inner = self.approval(s, signal=False, rp="$", in_map=True)
            else:
                inner = self._prepared_item(s)
        finally:
            self.level, self.visible, self.in_item, self.gated, self.gates = saved
        inner_states = inner.states
        per_item = inner.events
        first = inner.start
        wire(inner_states, None, end_name=self.names.take(f"{s.id}.item.end"))
        map_name = self.names.take(s.id)
        m: dict[str, Any] = {
            "Type": "Map",
            "Comment": f"{self._comment(s)}: once per item of {s.for_each}",
            "ItemsPath": f"{rp}.data.items",
            "ItemSelector": {"ctx.$": "$.ctx", ("steps.$" if isinstance(item_steps, str) else "steps"): item_steps,
                             "item.$": "$$.Map.Item.Value",
                             "index.$": "$$.Map.Item.Index"},
            "MaxConcurrency": s.max_concurrency or 0,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": first, "States": inner_states},
            # Each item's status (an approval's decision too); the .done task gathers the outputs.
            "ResultPath": f"{rp}.results",
            "Next": NEXT,
        }
        m["Catch"] = self._catch(s, st, rp, signal=signal)
        done, d = self._done(s, rp, signal=signal)
        m["Next"] = done
        ch["Choices"][0]["Next"] = map_name
        all_st = {prep_name: prep, choice_name: ch, map_name: m, done: d, **st}
        item_events = per_item + limits.EVENTS_MAP_ITERATION
        self._for_each.append((prep["Parameters"]["Payload"]["step"], item_events))
        events = (2 * limits.EVENTS_TASK + limits.EVENTS_SIMPLE + limits.EVENTS_MAP
                  + limits.FOR_EACH_ESTIMATE * item_events)
        return Frag(prep_name, all_st, events, [s.id])

    def _prepared_item(self, s: Step) -> Frag:
        """One item of a for_each wait or sub_workflow: prepare (the gate, inputs rendered with the
        item) → Wait or the child's execution → done (records the item). The item works under its
        own ``$.steps.<id>`` and returns only its status, like a Lambda item; the outer .done task
        gathers the outputs from the run table."""
        rp = self._rp(s.id)  # level 0: the item's own copy of the records
        spec = self.spec(s, signal=False)
        cfg = s.config
        st: dict[str, dict[str, Any]] = {}
        prep_name = self.names.take(f"{s.id}.item.prepare")
        prep = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function("control"), "Payload": self._payload(s, spec, "prepare")},
            comment=f"{self._comment(s)}: gate and render this item's inputs",
            result_selector={**states.STEP_RESULT, "data.$": "$.Payload.data"}, result_path=rp,
            timeout=60, retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        self._wrote(s.id)
        gate_name = self.names.take(f"{s.id}.item.gate")
        skipped_name = self.names.take(f"{s.id}.item.skipped")
        core_name = self.names.take(f"{s.id}.item.run")
        done_name = self.names.take(f"{s.id}.item.done")
        gate = states.choice([{"Variable": f"{rp}.status", "StringEquals": "running", "Next": core_name}],
                             default=skipped_name, comment="This item is skipped: return its status only")
        skipped = states.pass_(parameters={"status.$": f"{rp}.status"}, result_path="$",
                               comment="A skipped item keeps only its status")
        if cfg.type == "wait":
            if cfg.seconds is not None:
                core = states.wait(seconds=cfg.seconds, comment=self._comment(s))
            else:
                core = states.wait(timestamp_path=f"{rp}.data.until", comment=self._comment(s))
            core_events = limits.EVENTS_SIMPLE
        else:
            core = states.task(
                states.SFN_START_SYNC,
                {"StateMachineArn": self.targets.state_machine(cfg.workflow_name),
                 "Input.$": f"{rp}.data.input", "Name.$": "States.UUID()"},
                comment=f"{self._comment(s)}: runs workflow '{cfg.workflow_name}' for this item",
                result_selector={"status": "completed", "execution.$": "$.ExecutionArn"}, result_path=rp,
                timeout=s.timeout_secs, retry=self._child_retry(s),
            )
            core_events = limits.EVENTS_TASK + 2
        done = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function("control"), "Payload": self._payload(s, spec, "finish")},
            comment=f"{self._comment(s)}: record this item's result",
            result_selector={"status.$": "$.Payload.status"}, result_path="$", timeout=60,
            retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        if s.continue_on_error:
            # The item's failure becomes its result; the others go on (as for Lambda items).
            failed_name = self.names.take(f"{s.id}.item.error")
            st[failed_name] = states.pass_(
                comment="continue_on_error: record the item's failure and go on with the others",
                parameters={"status": "failed", "error.$": "$.Error"}, result_path="$",
            )
            catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": failed_name}]
            prep["Catch"], core_catch = catch, catch
            if cfg.type == "sub_workflow":
                core["Catch"] = core_catch
            done["Catch"] = catch
        prep["Next"] = gate_name
        core["Next"] = done_name
        st = {prep_name: prep, gate_name: gate, core_name: core, done_name: done, skipped_name: skipped, **st}
        events = 2 * limits.EVENTS_TASK + limits.EVENTS_SIMPLE + core_events
        return Frag(prep_name, st, events, [])

    def loop(self, s: Step, *, signal: bool) -> Frag:
        """init → check (control task) → Choice → body → check ... The check evaluates the
        condition, counts iterations and stops at max_iterations."""
        rp = self._rp(s.id)
        cfg = s.config
        init = self.names.take(f"{s.id}.init")
        check = self.names.take(s.id)
        nxt = self.names.take(f"{s.id}.again")
        st: dict[str, dict[str, Any]] = {}
        st[init] = states.pass_(
            comment=f"{self._comment(s)}: start counting iterations",
            parameters={"status": "running", "output": {"iterations": 0, "completed": False}, "continue": False},
            result_path=rp,
        )
        st[init]["Next"] = check
        self._wrote(s.id)
        before = dict(self.visible)
        gated, gates = dict(self.gated), list(self.gates)
        spec = self.spec(s, signal=signal)
        chk = states.task(
            states.LAMBDA_INVOKE,
            {"FunctionName": self.targets.function("control"), "Payload": self._payload(s, spec, "loop")},
            comment=f"Evaluate '{cfg.condition}' (at most {cfg.max_iterations} iterations)",
            result_selector={**states.STEP_RESULT, "continue.$": "$.Payload.continue"}, result_path=rp,
            timeout=60, retry=[dict(states.LAMBDA_SERVICE_RETRY)],
        )
        chk["Catch"] = self._catch(s, st, rp, signal=signal)
        chk["Next"] = nxt
        # The body's last state goes back to the check, which also runs before the first iteration:
        # a static wait ending the body has its own .done task.
        body = self._close(self.scope(s.id))
        # After the loop, its body's records (and its gates' keys) exist only if it ran at least once.
        self.visible = before
        self.gated, self.gates = gated, gates
        wire(body.states, check)
        st[check] = chk
        st[nxt] = states.choice([{"Variable": f"{rp}.continue", "BooleanEquals": True, "Next": body.start}],
                                default=NEXT, comment="Run the body again, or leave the loop")
        st.update(body.states)
        events = (2 * limits.EVENTS_SIMPLE
                  + (cfg.max_iterations + 1) * (limits.EVENTS_TASK + limits.EVENTS_SIMPLE)
                  + cfg.max_iterations * body.events)
        return Frag(init, st, events, [s.id, *body.new_steps])


def _policy_retrier(retry: Any) -> dict[str, Any]:
    """The ASL Retrier of a step's retry policy (every attempt after the first, full jitter)."""
    rr: dict[str, Any] = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": retry.interval_secs,
                          "MaxAttempts": retry.max_attempts - 1, "BackoffRate": retry.backoff_rate,
                          "JitterStrategy": "FULL"}
    if retry.max_delay_secs:
        rr["MaxDelaySeconds"] = retry.max_delay_secs
    return rr


def _merge_expr(parts: list[str]) -> str:
    """Nested States.JsonMerge over the parts, as a balanced tree (intrinsics nest at most 10 deep)."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) > 2 ** limits.MAX_INTRINSIC_NESTING:
        raise CompileError(f"a Parallel state with {len(parts)} branches cannot be merged; "
                           "split the workflow into sub-workflows", limit="parallel_branches")
    mid = (len(parts) + 1) // 2
    return f"States.JsonMerge({_merge_expr(parts[:mid])}, {_merge_expr(parts[mid:])}, false)"
