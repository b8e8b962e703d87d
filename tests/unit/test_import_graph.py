"""The import graph of ``boternity``, read from the source (ast), not by importing it.

Two rules (docs/architecture.md draws them):

* **no cycles** among module-level imports (``if TYPE_CHECKING:`` blocks excluded: they never run);
* **imports go down the layers**: a module may import its own package (unit) and any unit of a
  lower layer, never one of its own layer or above. This holds for imports inside functions too:
  a lazy import that goes up is still an upward dependency.

Imports inside functions are also checked for cycles, except the one listed in KNOWN_LAZY_CYCLES,
which must still exist (when it is broken, remove it from the list).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers/core/boternity"

#: Bottom to top. A unit is a subpackage or top-level module of boternity ("boternity" is the
#: package's own __init__). A unit may import units of lower layers only.
LAYERS: list[tuple[str, ...]] = [
    ("boternity", "errors"),
    ("parsing",),
    ("executors", "expressions", "model", "graph", "triggers", "webhooks", "metrics"),
    ("compiler",),
    ("store",),
    ("runtime", "approvals", "notify"),
    ("validate",),
    ("service",),
    ("handlers",),
    ("console",),
    ("local",),
    ("cli",),
]

#: Cycles that exist only through imports inside functions, with why they are still here.
KNOWN_LAZY_CYCLES: dict[frozenset[str], str] = {}

LAYER_OF = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["boternity", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The boternity module an import names (``from boternity.x import y`` may name module x.y)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported boternity module, line, inside a function) for every import that can run."""
    found: list[tuple[str, int, bool]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def names(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*parts, *([base] if base else [])])
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]

    def walk(nodes: list[ast.stmt], in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in names(node):
                    target = _resolve(name) if name.split(".")[0] == "boternity" else None
                    if target and target != module:
                        found.append((target, node.lineno, in_function))
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                walk(node.orelse, in_function)
                continue
            nested = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody", "handlers"):
                block = getattr(node, field, None)
                if isinstance(block, list):
                    walk(block, nested)

    walk(ast.parse(path.read_text(encoding="utf-8")).body, False)
    return found


IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "boternity"


def _cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_unit_has_a_layer():
    assert {_unit(m) for m in MODULES} <= set(LAYER_OF), {_unit(m) for m in MODULES} - set(LAYER_OF)


def test_imports_go_down_the_layers():
    upward = [f"{m}:{line} imports {target} ({_unit(m)} may not import {_unit(target)})"
              for m, imports in IMPORTS.items() for target, line, _ in imports
              if _unit(target) != _unit(m) and LAYER_OF[_unit(target)] >= LAYER_OF[_unit(m)]]
    assert upward == []


def test_no_cycles_among_module_level_imports():
    edges = {m: {t for t, _, lazy in imports if not lazy} for m, imports in IMPORTS.items()}
    assert _cycles(edges) == []


def test_no_cycles_through_imports_in_functions_but_the_known_one():
    edges = {m: {t for t, _, _ in imports} for m, imports in IMPORTS.items()}
    cycles = set(_cycles(edges))
    assert cycles - set(KNOWN_LAZY_CYCLES) == set(), "a new import cycle"
    assert set(KNOWN_LAZY_CYCLES) <= cycles, "a known cycle is gone: remove it from KNOWN_LAZY_CYCLES"


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    """The rules above are not vacuous: a made-up upward import and a two-module cycle are found."""
    fake = tmp_path / "m.py"
    fake.write_text("from boternity.cli.main import main\n\ndef f():\n    import boternity.local.engine\n")
    found = _imports("boternity.errors", fake)
    assert ("boternity.cli.main", 1, False) in found and ("boternity.local.engine", 4, True) in found
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [frozenset({"a", "b"})]
