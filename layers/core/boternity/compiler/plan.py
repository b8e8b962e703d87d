"""Turn a DAG into a schedule of Step Functions shapes with exact dataflow.

Exact dataflow means a step starts as soon as its own dependencies are done: never later because
an unrelated step is still running. Three shapes give that:

* ``Par``: independent parts (weakly connected components) side by side in a Parallel state.
* ``Seq``: A then B, used only when *every* step of A is an ancestor of *every* step of B, so
  waiting for all of A costs B nothing (B could not start earlier anyway).
* ``Chains``: a part that is neither (not series-parallel, e.g. a→c, a→d, b→d). Forcing it into
  layers makes d wait for c's siblings; instead it becomes one Parallel branch per chain of a
  minimum path cover, and every edge that crosses chains becomes a wait on a signal: the
  producer signals when it finishes, the consumer's branch waits for exactly that producer
  (a ``.waitForTaskToken`` task that returns at once if the producer is already done).

Series-parallel DAGs therefore compile to nested Parallels with no signals at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from boternity.graph import topo_order


@dataclass
class Leaf:
    step: str


@dataclass
class Seq:
    items: list[Node]


@dataclass
class Par:
    branches: list[Node]


@dataclass
class Chains:
    chains: list[list[str]]
    waits: dict[str, list[str]] = field(default_factory=dict)   # step -> producers in other chains


Node = Leaf | Seq | Par | Chains


def plan_scope(nodes: list[str], deps: dict[str, list[str]]) -> Node:
    """Plan the steps ``nodes`` (in definition order); deps outside ``nodes`` are already done."""
    nodeset = set(nodes)
    local = {n: [d for d in deps.get(n, []) if d in nodeset] for n in nodes}
    return _plan(nodes, local)


def _plan(nodes: list[str], deps: dict[str, list[str]]) -> Node:
    if len(nodes) == 1:
        return Leaf(nodes[0])
    comps = _components(nodes, deps)
    if len(comps) > 1:
        return Par([_plan(c, _restrict(deps, c)) for c in comps])
    segments = _series_segments(nodes, deps)
    if len(segments) > 1:
        items: list[Node] = []
        for seg in segments:
            part = _plan(seg, _restrict(deps, seg))
            items.extend(part.items if isinstance(part, Seq) else [part])
        return Seq(items)
    return _chains(nodes, deps)


def _restrict(deps: dict[str, list[str]], nodes: list[str]) -> dict[str, list[str]]:
    s = set(nodes)
    return {n: [d for d in deps[n] if d in s] for n in nodes}


def _components(nodes: list[str], deps: dict[str, list[str]]) -> list[list[str]]:
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in nodes:
        for d in deps[n]:
            ra, rb = find(n), find(d)
            if ra != rb:
                parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _topo(nodes: list[str], deps: dict[str, list[str]]) -> list[str]:

    return topo_order(nodes, deps)


def _series_segments(nodes: list[str], deps: dict[str, list[str]]) -> list[list[str]]:
    """Split at every prefix A of a topological order whose steps are all ancestors of every later step.

    Such a prefix comes first in *every* topological order, so checking the prefixes of one order
    finds all of them, in one pass. The segments between two splits have no split of their own
    (it would be a split of the whole), so a long chain is cut in one step, without recursion.
    """
    order = _topo(nodes, deps)
    idx = {n: i for i, n in enumerate(order)}
    succ: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for d in deps[n]:
            succ[d].append(n)
    desc: dict[str, int] = {}   # bitmask of each node's descendants
    for n in reversed(order):
        m = 0
        for s in succ[n]:
            m |= (1 << idx[s]) | desc[s]
        desc[n] = m
    full = (1 << len(order)) - 1
    common = full
    cuts: list[int] = []
    for k in range(len(order) - 1):
        common &= desc[order[k]]
        if common == 0:
            break
        tail_mask = full & ~((1 << (k + 1)) - 1)
        if common & tail_mask == tail_mask:
            cuts.append(k + 1)
    bounds = [0, *cuts, len(order)]
    return [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _chains(nodes: list[str], deps: dict[str, list[str]]) -> Chains:
    """Minimum path cover (maximum bipartite matching), then the crossing edges become waits."""
    order = _topo(nodes, deps)
    succ: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for d in deps[n]:
            succ[d].append(n)
    match_next: dict[str, str] = {}
    match_prev: dict[str, str] = {}

    def try_match(u: str, seen: set[str]) -> bool:
        for v in succ[u]:
            if v in seen:
                continue
            seen.add(v)
            if v not in match_prev or try_match(match_prev[v], seen):
                match_prev[v] = u
                match_next[u] = v
                return True
        return False

    for u in order:
        try_match(u, set())
    chains: list[list[str]] = []
    for n in order:
        if n in match_prev:
            continue
        chain = [n]
        while chain[-1] in match_next:
            chain.append(match_next[chain[-1]])
        chains.append(chain)
    chain_of = {n: i for i, chain in enumerate(chains) for n in chain}
    waits: dict[str, list[str]] = {}
    for n in order:
        # Same-chain dependencies ran earlier in this branch: only crossing edges need a wait.
        others = [d for d in deps[n] if chain_of[d] != chain_of[n]]
        if others:
            waits[n] = others
    return Chains(chains=chains, waits=waits)


def signalled(node: Node) -> set[str]:
    """Steps whose completion some other branch waits for."""
    out: set[str] = set()
    if isinstance(node, Chains):
        for producers in node.waits.values():
            out.update(producers)
    elif isinstance(node, Seq):
        for it in node.items:
            out |= signalled(it)
    elif isinstance(node, Par):
        for b in node.branches:
            out |= signalled(b)
    return out
