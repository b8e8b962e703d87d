"""An ASL timing simulator: the makespan of a state machine, given how long each step takes.

It interprets a definition structurally, on the happy path (no Catch, no Retry):

* Pass, Choice, Succeed take no time. A Choice follows its first rule (the compiler's gates put
  "the step runs" first); Fail is an error (the happy path never reaches one).
* A Task, Wait or Map state that *is* a step (its name is exactly the step id, as the compiler names
  a step's main state) takes that step's duration. Helper states ``<id>.<role>`` take no time:
  ``<id>.prepare`` (control task), ``<id>.gate``, ``<id>.done`` (control task), ``<id>.signal``.
  A Wait that is not a step waits its ``Seconds``; any other Task (helpers, awaits at the least)
  takes ``task_seconds``: 0 by default, or a Lambda latency measured from a run.
* A Parallel state ends when its last branch ends.
* An await task (``<sid>.await.<dep>``, a ``.waitForTaskToken`` task whose payload has
  ``op: await``) ends at max(now, the time ``dep`` signalled); a gate (``op: gate``, several
  producers at once) at max(now, the latest of their signals). A producer signals when its
  ``<dep>.signal`` task ends (op ``signal``), or when the task in which its own function signals
  ends (``"signal": true`` in the step payload of an op ``run`` task, i.e. Lambda steps, or of the
  op ``finish`` task ``<dep>.done`` after a Wait, Map or sub-workflow), or, for a static wait (a
  Wait of fixed seconds after an op ``start`` task), when the task right after the Wait starts:
  its payload's ``ended`` entries with ``"signal": true`` name the waits it ends and signals first.

* A static wait planned ahead (compiler/waits.py: its record started by an earlier task, whose
  payload's ``starts`` entry gives its own ``seconds``) may wait longer than its own seconds: the
  rest of its ``Seconds`` (a *pad*) waits for its dependencies in other branches, and the step's own
  run starts after it. A Wait state ``<id>.after.<deps>`` before another step is such a pad too,
  and, like an await, not part of the step's run.

Cross-branch waits are solved as a fixed point over the branch timelines: every signal time starts
at its lower bound (an await on a signal not yet seen returns at once), the whole machine is
simulated, the signal times are updated, and this repeats until nothing moves. Times only grow
from one round to the next, and a signal's time is exact once the signals it transitively waits
for are, so for a deadlock-free machine it converges in at most (number of signals + 1) rounds;
a machine that still moves after that has a cycle of waits, which is reported as a deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class SimulationError(Exception):
    """The definition cannot run to completion on its happy path (deadlock, Fail, cycle, bad ASL)."""


@dataclass
class SimResult:
    makespan: float
    step_start: dict[str, float]           # first state of the step entered
    step_end: dict[str, float]             # last state of the step (main state or helper) left
    main_end: dict[str, float]             # the step's own state (named exactly its id) left
    signals: dict[str, float]              # producer step -> time of its signal
    rounds: int
    transitions: int                       # states entered on the happy path (each await once)

    @property
    def steps_end(self) -> float:
        return max(self.step_end.values(), default=0.0)

    def dataflow_violations(self, deps: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(dep, step) pairs where the step started before its dependency's own state ended."""
        out = []
        for step, ds in deps.items():
            for d in ds:
                if step in self.step_start and d in self.main_end and self.step_start[step] < self.main_end[d]:
                    out.append((d, step))
        return out


def step_of(name: str) -> tuple[str, str | None]:
    """``"x"`` -> ("x", None); ``"x.await.y"`` -> ("x", "await.y"). Step ids cannot contain '.'."""
    sid, dot, role = name.partition(".")
    return sid, (role if dot else None)


def _payload(state: Mapping[str, Any]) -> Mapping[str, Any]:
    params = state.get("Parameters") or {}
    payload = params.get("Payload") if isinstance(params, Mapping) else None
    return payload if isinstance(payload, Mapping) else {}


def _producers(name: str, state: Mapping[str, Any]) -> list[str] | None:
    """The steps an await task waits for: one (op ``await``), or several at once (op ``gate``);
    from its payload (long names are hashed by the compiler)."""
    payload = _payload(state)
    if payload.get("op") == "await":
        return [str(payload.get("step", {}).get("id"))]
    if payload.get("op") == "gate":
        return [str(p) for p in payload.get("step", {}).get("producers", [])]
    sid, role = step_of(name)
    if role and role.startswith("await."):
        return [role[len("await."):]]
    return None


def _signals_from(name: str, state: Mapping[str, Any]) -> str | None:
    """The step whose completion this task announces to other branches, if it does."""
    payload = _payload(state)
    step = payload.get("step") if isinstance(payload.get("step"), Mapping) else {}
    op = payload.get("op")
    if op == "signal":
        return str(step.get("id"))
    # A step's own function signals when it ends: "run" (agent/skill/http/code/conditional) and
    # "finish" (the control task after a Wait, Map or sub-workflow). "prepare" signals only
    # when it skips the step, which is not the happy path.
    if op in ("run", "finish") and step.get("signal"):
        return str(step.get("id"))
    return None


def _ended_waits(state: Mapping[str, Any]) -> list[str]:
    """The static waits this task ends and signals (``ended`` entries with ``signal``)."""
    ended = _payload(state).get("ended")
    if not isinstance(ended, list):
        return []
    return [str(e.get("id")) for e in ended if isinstance(e, Mapping) and e.get("signal")]


def _planned_seconds(sm: Mapping[str, Any], out: dict[str, float]) -> dict[str, float]:
    """The own seconds of every planned wait, from its carrier's ``starts`` (anywhere in ``sm``)."""
    for st in (sm.get("States") or {}).values():
        if not isinstance(st, Mapping):
            continue
        for started in _payload(st).get("starts") or []:
            if isinstance(started, Mapping) and "id" in started:
                out[str(started["id"])] = float(started.get("seconds") or 0)
        for b in st.get("Branches") or []:
            _planned_seconds(b, out)
        if isinstance(st.get("ItemProcessor"), Mapping):
            _planned_seconds(st["ItemProcessor"], out)
    return out


@dataclass
class _Round:
    durations: Mapping[str, float]
    known: Mapping[str, float]                  # signal times from the previous round
    task_seconds: float
    planned: Mapping[str, float] = field(default_factory=dict)   # planned wait -> its own seconds
    begins: dict[str, float] = field(default_factory=dict)       # a padded wait's own run starts here
    signals: dict[str, float] = field(default_factory=dict)
    awaited: set[str] = field(default_factory=set)
    step_start: dict[str, float] = field(default_factory=dict)
    step_end: dict[str, float] = field(default_factory=dict)
    main_end: dict[str, float] = field(default_factory=dict)
    transitions: int = 0

    def machine(self, sm: Mapping[str, Any], t: float) -> float:
        states = sm.get("States")
        if not isinstance(states, Mapping) or sm.get("StartAt") not in states:
            raise SimulationError("a (sub)machine without States or a valid StartAt")
        name: str | None = sm["StartAt"]
        seen: set[str] = set()
        while name is not None:
            if name in seen:
                raise SimulationError(f"state {name!r} entered twice on the happy path (a loop?)")
            seen.add(name)
            if name not in states:
                raise SimulationError(f"no state named {name!r}")
            st = states[name]
            self.transitions += 1
            t0 = t
            t = self.state(name, st, t)
            self._mark(name, t0, t)
            kind = st.get("Type")
            if kind in ("Succeed", "Fail") or st.get("End"):
                return t
            if kind == "Choice":
                rules = st.get("Choices") or []
                name = rules[0]["Next"] if rules else st.get("Default")
            else:
                name = st.get("Next")
            if name is None:
                raise SimulationError(f"state {name!r} has neither Next nor End")
        return t

    def _mark(self, name: str, t0: float, t1: float) -> None:
        sid, role = step_of(name)
        if sid not in self.durations:
            return
        if role is not None and role.startswith(("await.", "after.")):
            return  # waiting for another branch is not part of the step's own run
        t0 = self.begins.pop(sid, t0) if role is None else t0
        self.step_start[sid] = min(self.step_start.get(sid, t0), t0)
        self.step_end[sid] = max(self.step_end.get(sid, t1), t1)
        if role is None:
            self.main_end[sid] = t1

    def state(self, name: str, st: Mapping[str, Any], t: float) -> float:
        kind = st.get("Type")
        sid, role = step_of(name)
        own = role is None and sid in self.durations
        if kind in ("Pass", "Choice", "Succeed"):
            return t
        if kind == "Fail":
            raise SimulationError(f"reached Fail state {name!r}")
        if kind == "Wait":
            if own:
                own_seconds = self.planned.get(sid)
                pad = max(0.0, float(st.get("Seconds", 0)) - own_seconds) if own_seconds is not None else 0.0
                if pad:
                    self.begins[sid] = t + pad
                return t + pad + float(self.durations[sid])
            if "Seconds" in st:
                return t + float(st["Seconds"])
            raise SimulationError(f"Wait state {name!r} has no Seconds and no step duration")
        if kind == "Parallel":
            ends = [self.machine(b, t) for b in st.get("Branches", [])]
            return max(ends, default=t)
        if kind == "Map":
            return t + float(self.durations[sid]) if own else t
        if kind == "Task":
            for ended in _ended_waits(st):
                self.signals[ended] = t   # the task ends and signals the wait it follows, first thing
            producers = _producers(name, st)
            if producers is not None:
                self.awaited.update(producers)
                return max(t + self.task_seconds, *(self.known.get(p, t) for p in producers))
            end = t + (float(self.durations[sid]) if own else self.task_seconds)
            announced = _signals_from(name, st)
            if announced is not None:
                self.signals[announced] = end
            return end
        raise SimulationError(f"state {name!r}: unsupported Type {kind!r}")


def simulate(definition: Mapping[str, Any], durations: Mapping[str, float], *,
             task_seconds: float = 0.0, max_rounds: int | None = None) -> SimResult:
    """Simulate ``definition`` with ``durations[step_id]`` seconds per step; see the module docstring."""
    known: dict[str, float] = {}
    planned = _planned_seconds(definition, {})
    limit = max_rounds if max_rounds is not None else None
    rounds = 0
    while True:
        rounds += 1
        r = _Round(durations=durations, known=known, task_seconds=task_seconds, planned=planned)
        end = r.machine(definition, 0.0)
        missing = r.awaited - set(r.signals)
        if missing:
            raise SimulationError(f"awaits a signal that is never given: {sorted(missing)}")
        if r.signals == known:
            return SimResult(makespan=end, step_start=r.step_start, step_end=r.step_end,
                             main_end=r.main_end, signals=r.signals,
                             rounds=rounds, transitions=r.transitions)
        known = r.signals
        if limit is None:
            limit = len(r.signals) + 2
        if rounds >= limit:
            raise SimulationError(f"no fixed point after {rounds} rounds: a cycle of waits (deadlock)")
