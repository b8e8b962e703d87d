"""The DAG layout: every dependency left of its dependents, no two nodes on one spot, the same
picture for the same workflow, and edges from the workflow model (loops, conditionals)."""

from __future__ import annotations

import random

from boternity.console.layout import layout, step_graph


def _positions(ids: list[str], edges: list[tuple[str, str, str]]) -> dict[str, tuple[int, int]]:
    drawn = layout(ids, edges)
    return {n["id"]: (n["x"], n["y"]) for n in drawn.nodes}


def test_each_step_is_drawn_right_of_everything_it_depends_on():
    pos = _positions(["a", "b", "c", "d"], [("a", "c", "dep"), ("a", "d", "dep"), ("b", "d", "dep")])
    assert pos["a"][0] == pos["b"][0] < pos["c"][0] == pos["d"][0]


def test_three_hundred_random_steps_get_distinct_places_in_dependency_order():
    rng = random.Random(7)
    ids = [f"s{i}" for i in range(300)]
    edges = [(ids[j], ids[i], "dep") for i in range(1, 300) for j in rng.sample(range(i), min(i, 2))]
    pos = _positions(ids, edges)
    assert len(set(pos.values())) == 300
    assert all(pos[a][0] < pos[b][0] for a, b, _ in edges)
    assert pos == _positions(ids, edges)


def test_a_cycle_in_invalid_input_still_places_every_step():
    pos = _positions(["a", "b"], [("a", "b", "dep"), ("b", "a", "dep")])
    assert set(pos) == {"a", "b"} and pos["a"] != pos["b"]


def test_a_loop_points_at_its_body_and_a_conditional_at_its_branches():
    steps, edges = step_graph({"name": "x", "steps": [
        {"id": "again", "type": "loop", "config": {"condition": "loop.iteration < 2", "body_steps": ["draft"]}},
        {"id": "draft", "type": "wait", "config": {"seconds": 0}},
        {"id": "route", "type": "conditional", "depends_on": ["again"],
         "config": {"condition": "true", "then_steps": ["yes"], "else_steps": ["no"]}},
        {"id": "yes", "type": "wait", "config": {"seconds": 0}},
        {"id": "no", "type": "wait", "config": {"seconds": 0}},
    ]})
    assert {s["id"]: s["scope"] for s in steps} == {"again": "", "draft": "again", "route": "", "yes": "", "no": ""}
    assert set(edges) == {("again", "draft", "body"), ("again", "route", "dep"), ("route", "yes", "dep"),
                          ("route", "no", "dep")}


def test_a_definition_the_model_refuses_is_drawn_from_its_depends_on_lists():
    steps, edges = step_graph({"name": "x", "steps": [{"id": "a", "type": "teleport"},
                                                      {"id": "b", "type": "teleport", "depends_on": ["a", "ghost"]}]})
    assert [s["id"] for s in steps] == ["a", "b"]
    assert edges == [("a", "b", "dep")]


def test_no_definition_means_no_steps():
    assert step_graph(None) == ([], [])
    assert step_graph({"steps": "nope"}) == ([], [])


def test_a_short_branch_sits_just_before_the_step_it_feeds():
    # draft -> score -> review <- facts: facts is drawn beside score, not beside draft, so its
    # edge to review does not run behind score.
    pos = _positions(["draft", "facts", "score", "review"],
                     [("draft", "score", "dep"), ("score", "review", "dep"), ("facts", "review", "dep")])
    assert pos["facts"][0] == pos["score"][0] > pos["draft"][0]
