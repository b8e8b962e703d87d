"""How DAG shapes become Parallel / sequence / signalled chains."""

from __future__ import annotations

from boternity.compiler.plan import Chains, Leaf, Par, Seq, plan_scope, signalled


def deps_of(edges: list[tuple[str, str]], nodes: str) -> tuple[list[str], dict[str, list[str]]]:
    d: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        d[b].append(a)
    return list(nodes), d


def test_independent_steps_become_one_parallel():
    nodes, deps = deps_of([], "abc")
    assert plan_scope(nodes, deps) == Par([Leaf("a"), Leaf("b"), Leaf("c")])


def test_chain_becomes_a_sequence():
    nodes, deps = deps_of([("a", "b"), ("b", "c")], "abc")
    assert plan_scope(nodes, deps) == Seq([Leaf("a"), Leaf("b"), Leaf("c")])


def test_diamond_is_series_parallel():
    nodes, deps = deps_of([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], "abcd")
    assert plan_scope(nodes, deps) == Seq([Leaf("a"), Par([Leaf("b"), Leaf("c")]), Leaf("d")])


def test_fan_in_of_chains():
    nodes, deps = deps_of([("a", "b"), ("c", "d"), ("b", "e"), ("d", "e")], "abcde")
    assert plan_scope(nodes, deps) == Seq([Par([Seq([Leaf("a"), Leaf("b")]), Seq([Leaf("c"), Leaf("d")])]), Leaf("e")])


def test_n_shape_is_not_forced_into_layers():
    nodes, deps = deps_of([("a", "c"), ("a", "d"), ("b", "d")], "abcd")
    plan = plan_scope(nodes, deps)
    assert isinstance(plan, Chains)
    # Two chains; exactly one crossing edge becomes a signal.
    assert sorted(map(tuple, plan.chains)) in ([("a", "c"), ("b", "d")], [("a", "d"), ("b",), ("c",)]) or \
        sum(len(v) for v in plan.waits.values()) == 1
    assert sum(len(v) for v in plan.waits.values()) == 1
    assert len(signalled(plan)) == 1


def test_non_series_parallel_part_stays_inside_a_series_split():
    # s -> {a, b}; a->c, a->d, b->d; {c, d} -> t
    edges = [("s", "a"), ("s", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "t"), ("d", "t")]
    nodes, deps = deps_of(edges, "sabcdt")
    plan = plan_scope(nodes, deps)
    assert isinstance(plan, Seq)
    assert plan.items[0] == Leaf("s") and plan.items[-1] == Leaf("t")
    assert isinstance(plan.items[1], Chains)


def test_series_split_requires_every_head_step_before_every_tail_step():
    # a -> b, a -> c, b -> d: {a} then {b, c, d}, where b -> d is a chain beside c.
    nodes, deps = deps_of([("a", "b"), ("a", "c"), ("b", "d")], "abcd")
    assert plan_scope(nodes, deps) == Seq([Leaf("a"), Par([Seq([Leaf("b"), Leaf("d")]), Leaf("c")])])
