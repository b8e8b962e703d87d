"""A fixed-seed corpus of DAGs with integer step durations, and their workflows.

Families:

* ``layered``: random layered DAGs of 5-200 steps. Each step of layer k > 0 depends on 1-3 steps,
  mostly of layer k-1 and sometimes of an earlier layer. Durations 1-10 s, with a few heavy steps
  (up to 30 s), so barriers have something to lose.
* ``n``: the N shape a→c, a→d, b→d (the smallest DAG that is not series-parallel), and N shapes
  whose arms are chains.
* ``w``: a zigzag (fence) of k sources and k-1 sinks, each sink fed by two neighbouring sources (the
  W shape is k = 3).
* ``ladders``: two chains with rungs crossing both ways (a_i → b_{i+1} and b_i → a_{i+1}).
* ``crown``: the bipartite crown, sources u_i and sinks v_j with an edge u_i → v_j for every i ≠ j.
* ``skip``: a few parallel chains plus random long skip edges between them.

Everything is deterministic: ``corpus(seed)`` returns the same DAGs on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

DEFAULT_SEED = 20261127
LAYERED_COUNT = 150


@dataclass(frozen=True)
class Dag:
    name: str
    family: str
    steps: tuple[str, ...]                              # definition order (topological)
    deps: Mapping[str, tuple[str, ...]]                 # step -> the steps it depends on
    durations: Mapping[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.steps)

    @property
    def edges(self) -> int:
        return sum(len(d) for d in self.deps.values())

    def with_durations(self, durations: Mapping[str, int]) -> Dag:
        return Dag(self.name, self.family, self.steps, self.deps, dict(durations))


def _dag(name: str, family: str, steps: list[str], deps: dict[str, list[str]], durations: dict[str, int]) -> Dag:
    order = {s: i for i, s in enumerate(steps)}
    for s, ds in deps.items():
        for d in ds:
            if order[d] >= order[s]:
                raise ValueError(f"{name}: {d} -> {s} is not in definition order")
    return Dag(name, family, tuple(steps), {s: tuple(deps.get(s, [])) for s in steps}, durations)


# ---------------------------------------------------------------------------- analysis


def critical_path(dag: Dag, durations: Mapping[str, float] | None = None) -> float:
    """The longest path by duration: no schedule can finish earlier (the lower bound)."""
    dur = durations if durations is not None else dag.durations
    finish: dict[str, float] = {}
    for s in dag.steps:
        finish[s] = max((finish[d] for d in dag.deps[s]), default=0.0) + dur[s]
    return max(finish.values(), default=0.0)


def depths(dag: Dag) -> dict[str, int]:
    """depth(s) = 0 without dependencies, else 1 + the largest depth of its dependencies."""
    out: dict[str, int] = {}
    for s in dag.steps:
        out[s] = max((out[d] + 1 for d in dag.deps[s]), default=0)
    return out


def is_series_parallel(dag: Dag) -> bool:
    """Whether the compiler can plan the DAG with Seq/Par only (no signals)."""
    from boternity.compiler.plan import plan_scope, signalled

    plan = plan_scope(list(dag.steps), {s: list(d) for s, d in dag.deps.items()})
    return not signalled(plan)


# ---------------------------------------------------------------------------- workflows


def workflow_doc(dag: Dag, *, kind: str = "wait", seconds: Mapping[str, int] | None = None,
                 name: str | None = None) -> dict[str, Any]:
    """The workflow document for a DAG.

    ``kind`` "wait": ``wait`` steps of ``seconds`` (default: the DAG's durations; pass zeros for
    no-op steps). "skill": prompt-skill steps (``echo-prompt``), one Lambda task each, the shape
    every agent/skill/http/code step compiles to.
    """
    secs = dag.durations if seconds is None else seconds
    steps: list[dict[str, Any]] = []
    for s in dag.steps:
        step: dict[str, Any] = {"id": s, "type": kind}
        if dag.deps[s]:
            step["depends_on"] = list(dag.deps[s])
        if kind == "wait":
            step["config"] = {"seconds": int(secs.get(s, 0))}
        elif kind == "skill":
            step["config"] = {"skill": "echo-prompt", "input": f"step {s}"}
        else:
            raise ValueError(f"unknown step kind {kind!r}")
        steps.append(step)
    wf_name = name or ("bench-" + "".join(c if c.isalnum() else "-" for c in dag.name))[:64]
    return {"name": wf_name, "description": f"benchmark DAG {dag.name} ({dag.family})", "steps": steps}


def workflow(dag: Dag, *, kind: str = "wait", seconds: Mapping[str, int] | None = None,
             name: str | None = None) -> Any:
    """A validated :class:`boternity.model.Workflow` for the DAG."""
    from boternity.model import parse_workflow
    from boternity.validate import check_workflow

    wf = parse_workflow(workflow_doc(dag, kind=kind, seconds=seconds, name=name))
    check_workflow(wf)
    return wf


# ---------------------------------------------------------------------------- generators


def _durations(rng: random.Random, steps: list[str], *, heavy: float = 0.1) -> dict[str, int]:
    out = {}
    for s in steps:
        out[s] = rng.randint(11, 30) if rng.random() < heavy else rng.randint(1, 10)
    return out


def _size(rng: random.Random, lo: int, hi: int) -> int:
    """Log-uniform: as many small DAGs as large ones."""
    import math

    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi + 0.49)))))


def random_layered(rng: random.Random, index: int, n: int) -> Dag:
    n_layers = rng.randint(2, max(2, min(n, int(n ** 0.5 * 1.5))))
    # Every layer gets at least one step; the rest are spread at random.
    sizes = [1] * n_layers
    for _ in range(n - n_layers):
        sizes[rng.randrange(n_layers)] += 1
    layers: list[list[str]] = []
    steps: list[str] = []
    k = 0
    for size in sizes:
        layer = []
        for _ in range(size):
            layer.append(f"s{k:03d}")
            k += 1
        layers.append(layer)
        steps.extend(layer)
    deps: dict[str, list[str]] = {}
    for li, layer in enumerate(layers[1:], start=1):
        prev = layers[li - 1]
        earlier = [s for lay in layers[: li - 1] for s in lay]
        for s in layer:
            want = rng.choice((1, 1, 2, 2, 3))
            chosen: list[str] = [rng.choice(prev)]
            for _ in range(want - 1):
                pool = earlier if earlier and rng.random() < 0.25 else prev
                c = rng.choice(pool)
                if c not in chosen:
                    chosen.append(c)
            deps[s] = sorted(chosen)
    return _dag(f"layered-{index:03d}-n{n}", "layered", steps, deps, _durations(rng, steps))


def n_shape(rng: random.Random, index: int, arm: int) -> Dag:
    """a-chain → c-chain, a-chain → d-chain ← b-chain; arm = chain length of each part."""
    parts = {p: [f"{p}{i}" for i in range(arm)] for p in "abcd"}
    steps = parts["a"] + parts["b"] + parts["c"] + parts["d"]
    deps: dict[str, list[str]] = {}
    for chain in parts.values():
        for x, y in zip(chain, chain[1:], strict=False):
            deps[y] = [x]
    deps[parts["c"][0]] = [parts["a"][-1]]
    deps[parts["d"][0]] = [parts["a"][-1], parts["b"][-1]]
    durations = _durations(rng, steps, heavy=0.3)
    return _dag(f"n-{index:02d}-arm{arm}", "n", steps, deps, durations)


def w_shape(rng: random.Random, index: int, k: int) -> Dag:
    tops = [f"t{i}" for i in range(k)]
    bottoms = [f"b{i}" for i in range(k - 1)]
    deps = {b: [tops[i], tops[i + 1]] for i, b in enumerate(bottoms)}
    steps = tops + bottoms
    return _dag(f"w-{index:02d}-k{k}", "w", steps, deps, _durations(rng, steps, heavy=0.3))


def two_ladders(rng: random.Random, index: int, k: int) -> Dag:
    a = [f"a{i}" for i in range(k)]
    b = [f"b{i}" for i in range(k)]
    steps = [x for pair in zip(a, b, strict=True) for x in pair]
    deps: dict[str, list[str]] = {}
    for i in range(1, k):
        deps[a[i]] = [a[i - 1]] + ([b[i - 1]] if rng.random() < 0.6 else [])
        deps[b[i]] = [b[i - 1]] + ([a[i - 1]] if rng.random() < 0.6 else [])
    # At least one rung each way, so the shape is never two independent chains.
    if k >= 3:
        deps[a[1]] = sorted({a[0], b[0]}, key=steps.index)
        deps[b[2]] = sorted({b[1], a[1]}, key=steps.index)
    return _dag(f"ladders-{index:02d}-k{k}", "ladders", steps, deps, _durations(rng, steps, heavy=0.25))


def crown(rng: random.Random, index: int, k: int) -> Dag:
    u = [f"u{i}" for i in range(k)]
    v = [f"v{i}" for i in range(k)]
    deps = {v[j]: [u[i] for i in range(k) if i != j] for j in range(k)}
    steps = u + v
    return _dag(f"crown-{index:02d}-k{k}", "crown", steps, deps, _durations(rng, steps, heavy=0.3))


def skip_edges(rng: random.Random, index: int, n: int) -> Dag:
    """``c`` parallel chains (definition order interleaved) plus long edges that skip ahead."""
    c = rng.randint(2, 4)
    length = max(2, n // c)
    chains = [[f"c{j}x{i:02d}" for i in range(length)] for j in range(c)]
    steps = [chains[j][i] for i in range(length) for j in range(c)]
    pos = {s: i for i, s in enumerate(steps)}
    deps: dict[str, list[str]] = {}
    for chain in chains:
        for x, y in zip(chain, chain[1:], strict=False):
            deps[y] = [x]
    n_skips = rng.randint(max(1, length // 4), max(2, length))
    for _ in range(n_skips):
        j1, j2 = rng.sample(range(c), 2)
        i1 = rng.randrange(0, max(1, length // 2))
        i2 = rng.randrange(min(length - 1, i1 + max(2, length // 3)), length)
        src, dst = chains[j1][i1], chains[j2][i2]
        if pos[src] < pos[dst] and src not in deps.get(dst, []):
            deps.setdefault(dst, []).append(src)
            deps[dst].sort(key=pos.__getitem__)
    return _dag(f"skip-{index:02d}-n{len(steps)}", "skip", steps, deps, _durations(rng, steps, heavy=0.15))


def hand_shaped(rng: random.Random) -> Iterator[Dag]:
    for i, arm in enumerate((1, 1, 1, 1, 2, 2, 3, 4, 5, 6)):
        yield n_shape(rng, i, arm)
    for i, k in enumerate((3, 3, 3, 4, 4, 5, 6, 8, 10, 12)):
        yield w_shape(rng, i, k)
    for i, k in enumerate((3, 3, 4, 4, 5, 6, 7, 8, 10, 12)):
        yield two_ladders(rng, i, k)
    for i, k in enumerate((3, 3, 3, 4, 4, 5, 5, 6, 7, 8)):
        yield crown(rng, i, k)
    for i in range(20):
        yield skip_edges(rng, i, _size(rng, 8, 120))


def corpus(seed: int = DEFAULT_SEED, *, layered: int = LAYERED_COUNT) -> list[Dag]:
    """The benchmark corpus: ``layered`` random layered DAGs, then 60 hand-shaped ones."""
    rng = random.Random(seed)
    out = [random_layered(rng, i, _size(rng, 5, 200)) for i in range(layered)]
    out.extend(hand_shaped(random.Random(seed + 1)))
    return out


def small_examples() -> list[Dag]:
    """Tiny DAGs with hand-picked durations (the simulator-vs-moto test and the quick check)."""
    n = _dag("n-shape", "n", ["a", "b", "c", "d"], {"c": ["a"], "d": ["a", "b"]},
             {"a": 1, "b": 3, "c": 3, "d": 1})
    w = _dag("w-shape", "w", ["t0", "t1", "t2", "b0", "b1"], {"b0": ["t0", "t1"], "b1": ["t1", "t2"]},
             {"t0": 2, "t1": 1, "t2": 1, "b0": 1, "b1": 2})
    # Series-parallel (no signals): a fan-in, two steps deep like the others, so the Lambda latency
    # that moto adds on the critical path stays small next to the test's tolerance.
    fan_in = _dag("fan-in", "sp", ["a", "b", "c"], {"c": ["a", "b"]}, {"a": 2, "b": 1, "c": 2})
    crown3 = _dag("crown-3", "crown", ["u0", "u1", "u2", "v0", "v1", "v2"],
                  {"v0": ["u1", "u2"], "v1": ["u0", "u2"], "v2": ["u0", "u1"]},
                  {"u0": 1, "u1": 2, "u2": 1, "v0": 2, "v1": 1, "v2": 1})
    return [n, w, fan_in, crown3]


def lattice_example() -> Dag:
    """Two chains of three with rungs both ways (a small lattice), hand-picked durations."""
    return _dag("lattice-2x3", "ladders", ["a0", "b0", "a1", "b1", "a2", "b2"],
                {"a1": ["a0", "b0"], "b1": ["b0"], "a2": ["a1", "b1"], "b2": ["b1", "a1"]},
                {"a0": 1, "b0": 2, "a1": 1, "b1": 1, "a2": 2, "b2": 1})
