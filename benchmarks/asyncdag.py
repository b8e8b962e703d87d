"""A minimal asyncio DAG runner: the floor that per-step overheads are compared with.

Each step is a coroutine function taking its dependencies' results (by step id); a step starts as
soon as its own dependencies are done (dataflow, no waves) and runs once. No persistence, retries,
timeouts or records: what is left is the cost of scheduling a step at all. Used by the peers section
(``benchmarks/peers.py``) as "a minimal asyncio DAG runner".

    results = asyncio.run(run_dag({"a": fa, "b": fb}, {"b": ["a"]}))
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    StepFn = Callable[[dict[str, Any]], Awaitable[Any]]


def topological_order(steps: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """The steps, each after its dependencies (Kahn's algorithm, ties in the given order).

    Raises:
        ValueError: a dependency names no step, or the dependencies form a cycle.
    """
    known = set(steps)
    for step, ds in deps.items():
        if step not in known:
            raise ValueError(f"dependencies given for unknown step {step!r}")
        unknown = [d for d in ds if d not in known]
        if unknown:
            raise ValueError(f"step {step!r} depends on unknown step(s) {', '.join(map(repr, unknown))}")
    remaining = {s: len(set(deps.get(s, ()))) for s in steps}
    dependents: dict[str, list[str]] = {s: [] for s in steps}
    for step in steps:
        for d in set(deps.get(step, ())):
            dependents[d].append(step)
    ready = [s for s in steps if remaining[s] == 0]
    order: list[str] = []
    while ready:
        step = ready.pop(0)
        order.append(step)
        for nxt in dependents[step]:
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(steps):
        stuck = sorted(s for s in steps if s not in set(order))
        raise ValueError(f"the dependencies form a cycle through {', '.join(stuck)}")
    return order


async def run_dag(steps: Mapping[str, StepFn], deps: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Run every step once, as soon as its dependencies are done; their results by step id.

    A failing step cancels the steps still running and its exception propagates.

    Raises:
        ValueError: as :func:`topological_order` (checked before anything runs: a cycle would hang).
    """
    order = topological_order(list(steps), deps)
    tasks: dict[str, asyncio.Task[Any]] = {}

    async def one(step: str) -> Any:
        # Every task exists before any of them runs (create_task does not start it), so the
        # dependencies' tasks can be awaited by id; awaiting a finished task just returns its result.
        inputs = {d: await tasks[d] for d in deps.get(step, ())}
        return await steps[step](inputs)

    for step in order:
        tasks[step] = asyncio.create_task(one(step), name=step)
    try:
        results = await asyncio.gather(*tasks.values())
    except BaseException:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    return dict(zip(tasks, results, strict=True))
