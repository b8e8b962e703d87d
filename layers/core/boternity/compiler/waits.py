"""Static waits planned ahead: which task starts each one, and when, decided at compile time.

A static wait (fixed ``seconds``, nothing can skip it) starts when its dependencies end and lasts
its seconds. When those ends are known as offsets from the end of one task, its *carrier*, so is
the wait's whole interval: the carrier's function writes the wait's record once, with its start
and end (``started_at``, ``ends_at``; store/run_records.py shows it by the clock), and the wait
is its Wait state alone: no task before or after it, no Lambda invocation.

The carrier of a wait is the Lambda step task right before it in the flow (agent, skill, http,
code, conditional; not with ``continue_on_error``, which leaves through a Pass, nor ``for_each``),
or, for a wait with no task before it, its own ``<id>.prepare`` task. From a carrier the clock
runs on through the waits it planned: a wait after a planned wait starts at that wait's end, so it
is planned by the same carrier; the branches of a Parallel start at the Parallel's clock; and a
wait in one branch that needs a planned wait of another branch (a crossing edge of a ``Chains``
part, see plan.py) waits for it by *padding* its own Wait with the difference, instead of an
``.await`` task on a signal. A Lambda step that only needs planned waits of other branches gets a
pad Wait state before it (or nothing, when it cannot start earlier anyway). A Parallel whose
branches all open with static waits and has no carrier before it gets one: the first head's
``prepare``, placed before the Parallel, plans the others.

A planned wait whose end another branch still waits for through a signal (its consumer is not
padded) is signalled by the task after it, as before; a planned wait cannot follow it directly in
its branch (nothing would give the signal), so that one is planned afresh by its own prepare,
which signals. That is decided as a fixed point (``_chains``): each round can only take waits
out of the shared clock.

Pure: the plan (plan.py's shapes), the dependencies and the static waits in, the plan out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from boternity.compiler.plan import Chains, Leaf, Node, Par, Seq
from boternity.graph import topo_order

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Where the flow is in time: (carrier step, seconds since its task ended), or None (unknown).
Clock = tuple[str, int] | None


@dataclass(frozen=True)
class Slot:
    """A planned wait: started by ``carrier``'s task, from ``start`` to ``end`` seconds after
    that task ends; its Wait state waits ``wait_seconds`` (its own seconds, plus any pad)."""

    carrier: str
    start: int
    end: int
    wait_seconds: int


@dataclass
class WaitPlan:
    slots: dict[str, Slot] = field(default_factory=dict)
    # A consumer whose producers in other branches are all planned waits of its own clock: it
    # needs no signal from them. Non-wait consumers wait ``pads[step]`` seconds first (a Wait state).
    padded: set[str] = field(default_factory=set)
    pads: dict[str, int] = field(default_factory=dict)
    # id(Par or Chains node) -> the head wait whose prepare goes before the node's Parallel.
    planners: dict[int, str] = field(default_factory=dict)
    # Steps whose end some other branch waits for through a signal.
    signal: set[str] = field(default_factory=set)

    def carried_by(self, carrier: str) -> list[str]:
        """The waits ``carrier``'s task starts, besides itself, in planning order."""
        return [s for s, slot in self.slots.items() if slot.carrier == carrier and s != carrier]


def plan_waits(node: Node, deps: Mapping[str, list[str]], seconds: Mapping[str, int],
               is_carrier: Callable[[str], bool]) -> WaitPlan:
    """Plan the static waits (``seconds``: step -> its fixed seconds) of one scope's plan.
    ``is_carrier(step)``: whether the step's task can start the waits after it."""
    plan = WaitPlan()
    _Walk(plan, deps, seconds, is_carrier).node(node, None)
    return plan


@dataclass
class _Walk:
    plan: WaitPlan
    deps: Mapping[str, list[str]]
    seconds: Mapping[str, int]
    is_carrier: Callable[[str], bool]

    def node(self, n: Node, clock: Clock) -> Clock:
        if isinstance(n, Leaf):
            return self.leaf(n.step, clock)
        if isinstance(n, Seq):
            for item in n.items:
                clock = self.node(item, clock)
            return clock
        clock = self._planner(n, clock)
        if isinstance(n, Par):
            return _join(clock, [self.node(b, clock) for b in n.branches])
        assert isinstance(n, Chains)
        return self.chains(n, clock)

    def leaf(self, s: str, clock: Clock, *, pad: int = 0) -> Clock:
        if s in self.seconds:
            sec = self.seconds[s]
            if clock is None:
                # No task before it: its own prepare plans it (and whatever follows on its clock).
                self.plan.slots[s] = Slot(s, 0, sec, sec)
                return (s, sec)
            carrier, at = clock
            self.plan.slots[s] = Slot(carrier, at + pad, at + pad + sec, pad + sec)
            return (carrier, at + pad + sec)
        if self.is_carrier(s):
            return (s, 0)
        return None

    def _planner(self, n: Par | Chains, clock: Clock) -> Clock:
        """A Parallel with no clock whose branches all open with static waits: the first head's
        prepare goes before it and plans them all (one task instead of one per head)."""
        if clock is not None:
            return clock
        heads = _heads(n)
        if heads and all(h in self.seconds for h in heads):
            self.plan.planners[id(n)] = heads[0]
            return (heads[0], 0)
        return None

    def chains(self, n: Chains, entry: Clock) -> Clock:
        steps = [s for chain in n.chains for s in chain]
        prev = {c[i]: c[i - 1] for c in n.chains for i in range(1, len(c))}
        nxt = {p: s for s, p in prev.items()}
        members = set(steps)
        local = {s: [d for d in self.deps.get(s, []) if d in members] for s in steps}
        order = topo_order(steps, local)
        restart: set[str] = set()
        base = dict(self.plan.slots)
        while True:
            self.plan.slots = dict(base)
            padded: set[str] = set()
            pads: dict[str, int] = {}
            after: dict[str, Clock] = {}
            for s in order:
                clock = entry if s not in prev else after[prev[s]]
                if s in restart:
                    clock = None
                producers = n.waits.get(s, [])
                pad = 0
                if producers:
                    slots = [self.plan.slots.get(p) for p in producers]
                    if clock is not None and all(sl is not None and sl.carrier == clock[0] for sl in slots):
                        need = max(sl.end for sl in slots if sl is not None)
                        pad = max(0, need - clock[1])
                        padded.add(s)
                    else:
                        clock = None   # an await or a gate: a task that plans nothing
                if s in self.seconds or pad == 0:
                    after[s] = self.leaf(s, clock, pad=pad)
                else:
                    pads[s] = pad
                    assert clock is not None
                    after[s] = self.leaf(s, (clock[0], clock[1] + pad))
            signal = {p for s in steps if s not in padded for p in n.waits.get(s, [])}
            # A planned wait signalled to another branch needs a task after it to give the signal:
            # the wait after it in its branch cannot go on its clock.
            more = {nxt[p] for p in signal if p in self.plan.slots and p in nxt and nxt[p] in self.seconds
                    and after.get(p) is not None} - restart
            if not more:
                break
            restart |= more
        self.plan.padded |= padded
        self.plan.pads.update(pads)
        self.plan.signal |= signal
        return _join(entry, [after[c[-1]] for c in n.chains])


def _heads(n: Node) -> list[str]:
    if isinstance(n, Leaf):
        return [n.step]
    if isinstance(n, Seq):
        return _heads(n.items[0])
    if isinstance(n, Par):
        return [h for b in n.branches for h in _heads(b)]
    assert isinstance(n, Chains)
    return [c[0] for c in n.chains]


def _join(entry: Clock, exits: list[Clock]) -> Clock:
    """The clock after a Parallel: known when every branch ends on the clock it started with."""
    if entry is None or any(e is None or e[0] != entry[0] for e in exits):
        return None
    return (entry[0], max(e[1] for e in exits if e is not None))
