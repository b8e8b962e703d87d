"""The DAG of a workflow, laid out in layers for drawing as SVG (pure, deterministic).

Columns are longest-path layers (a step sits one column right of its latest dependency), rows
are ordered by a few barycenter sweeps to keep edges short. Quadratic work at worst in the
number of edges per sweep, so a few hundred steps lay out in milliseconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from boternity.graph import build_graph
from boternity.model.loader import parse_workflow

NODE_W = 148
NODE_H = 44
GAP_X = 48
GAP_Y = 18
MARGIN = 16
_SWEEPS = 4


@dataclass
class Layout:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    width: int = 0
    height: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "edges": self.edges, "width": self.width, "height": self.height}


def step_graph(definition: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """The steps of a workflow definition (as the API returns it) and its edges ``(from, to, kind)``.

    ``kind`` is ``dep`` (depends_on, conditional branches) or ``body`` (a loop to the first steps
    of its body). The workflow model and ``boternity.graph`` give the edges when the definition
    validates; a definition that no longer does (limits lowered since) falls back to its raw
    ``depends_on`` lists, so a run page still draws."""
    raw_steps = definition.get("steps") if isinstance(definition, dict) else None
    if not isinstance(raw_steps, list):
        return [], []
    try:
        return _from_model(definition)
    except Exception:  # noqa: BLE001 - any model or graph failure: draw what the raw data says
        return _from_raw(raw_steps)


def _from_model(definition: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    wf = parse_workflow(definition)
    g = build_graph(wf)
    steps = []
    for s in wf.steps:
        if g.steps.get(s.id) is not s:
            continue
        steps.append({"id": s.id, "name": s.name or s.id, "type": s.config.type, "scope": g.owner.get(s.id, ""),
                      "config": s.config.model_dump(mode="json", exclude_none=True, exclude={"type"}),
                      "for_each": s.for_each, "depends_on": list(s.depends_on),
                      "condition": s.condition})
    edges: list[tuple[str, str, str]] = []
    for sid, deps in g.deps.items():
        edges += [(d, sid, "dep") for d in deps]
    for scope, members in g.scopes.items():
        if scope:
            edges += [(scope, m, "body") for m in members if not g.deps.get(m)]
    return steps, edges


def _from_raw(raw_steps: list[Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for s in raw_steps:
        if isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"] not in seen:
            seen.add(s["id"])
            cfg = s.get("config") if isinstance(s.get("config"), dict) else {}
            steps.append({"id": s["id"], "name": str(s.get("name") or s["id"]),
                          "type": str(s.get("type") or cfg.get("type") or "step"), "scope": "",
                          "config": cfg, "for_each": s.get("for_each"),
                          "depends_on": [d for d in s.get("depends_on") or [] if isinstance(d, str)],
                          "condition": s.get("condition")})
    edges = [(d, s["id"], "dep") for s in steps for d in s["depends_on"] if d in seen and d != s["id"]]
    return steps, edges


def layout(step_ids: list[str], edges: list[tuple[str, str, str]]) -> Layout:
    """Positions for ``step_ids`` (definition order) and the edges between them, left to right."""
    index = {s: i for i, s in enumerate(step_ids)}
    preds: dict[str, list[str]] = {s: [] for s in step_ids}
    succs: dict[str, list[str]] = {s: [] for s in step_ids}
    for a, b, _ in edges:
        if a in index and b in index and a != b:
            preds[b].append(a)
            succs[a].append(b)
    layer = _layers(step_ids, preds, succs)
    columns: dict[int, list[str]] = {}
    for s in step_ids:
        columns.setdefault(layer[s], []).append(s)
    order = _order(columns, preds, succs)
    out = Layout()
    tallest = max((len(c) for c in order.values()), default=0)
    for col, members in sorted(order.items()):
        # Short columns are centred against the tallest, so a chain reads as a straight line.
        offset = (tallest - len(members)) * (NODE_H + GAP_Y) / 2
        for row, sid in enumerate(members):
            out.nodes.append({"id": sid, "x": MARGIN + col * (NODE_W + GAP_X),
                              "y": round(MARGIN + offset + row * (NODE_H + GAP_Y)), "w": NODE_W, "h": NODE_H})
    out.edges = [{"from": a, "to": b, "kind": k} for a, b, k in edges if a in index and b in index and a != b]
    out.width = MARGIN * 2 + max(len(order), 1) * (NODE_W + GAP_X) - GAP_X
    out.height = MARGIN * 2 + max(tallest, 1) * (NODE_H + GAP_Y) - GAP_Y
    return out


def _layers(step_ids: list[str], preds: dict[str, list[str]], succs: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layers; steps left on a cycle (invalid input) go in a last column of their own."""
    order = _topological(step_ids, preds, succs)
    placed = set(order)
    layer = {s: 0 for s in step_ids}
    for s in order:
        for t in succs[s]:
            layer[t] = max(layer[t], layer[s] + 1)
    # Pull a step right to just before its earliest dependent, so an edge from a short branch does
    # not cross a longer one's nodes (reverse topological order keeps every edge pointing right).
    for s in reversed(order):
        later = [layer[t] for t in succs[s] if t in placed]
        if later:
            layer[s] = min(later) - 1
    last = max((layer[s] for s in order), default=-1) + 1
    for s in step_ids:
        if s not in placed:
            layer[s] = last
    return layer


def _topological(step_ids: list[str], preds: dict[str, list[str]], succs: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm, definition order among ready steps; steps on a cycle are left out."""
    indeg = {s: len(preds[s]) for s in step_ids}
    ready = deque(s for s in step_ids if indeg[s] == 0)
    out: list[str] = []
    while ready:
        s = ready.popleft()
        out.append(s)
        for t in succs[s]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    return out


def _order(columns: dict[int, list[str]], preds: dict[str, list[str]],
           succs: dict[str, list[str]]) -> dict[int, list[str]]:
    order = {c: list(m) for c, m in columns.items()}
    keys = sorted(order)
    for sweep in range(_SWEEPS):
        forward = sweep % 2 == 0
        neighbours = preds if forward else succs
        pos = {s: i for c in order.values() for i, s in enumerate(c)}
        for c in (keys[1:] if forward else list(reversed(keys[:-1]))):
            centres = {}
            for i, s in enumerate(order[c]):
                near = neighbours[s]
                centres[s] = sum(pos[n] for n in near) / len(near) if near else float(i)
            # A stable sort keeps the current order between equal centres: same input, same picture.
            order[c] = sorted(order[c], key=centres.__getitem__)
            pos.update({s: i for i, s in enumerate(order[c])})
    return order
