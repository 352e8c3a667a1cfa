"""The package shows the pipeline: each stage imports only itself and the stages before it, and nothing cycles.

Imports are read from the source (ast), including those inside functions, so a
lazy import cannot hide an edge that points the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import voiceguide

PACKAGE = Path(voiceguide.__file__).parent

# Lower number = earlier stage. A module may import modules of its own rank or lower.
RANKS = {
    "voiceguide": 0, "voiceguide.errors": 0, "voiceguide.host": 0, "voiceguide.ffmpeg": 0,
    "voiceguide.routine": 1,
    "voiceguide.plan": 2,
    "voiceguide.speech": 3,
    "voiceguide.audio": 4,
    "voiceguide.export": 5,
    "voiceguide.pipeline": 6, "voiceguide.compose": 6, "voiceguide.leftovers": 0,
    "voiceguide.serve": 7,
    "voiceguide.cli": 8,
    "voiceguide.console": 9, "voiceguide.__main__": 9,  # the console script: the command line, interruptible as it loads
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    """The rank of the longest registered prefix of ``module``."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RANKS:
            return RANKS[prefix]
    raise AssertionError(f"{module} is in no stage: add it to RANKS in {__file__}")


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Every voiceguide module ``path`` imports, at any depth of the code."""
    found: set[str] = set()
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    me = module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("voiceguide"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = me.split(".")[: len(me.split(".")) - node.level + (path.name == "__init__.py")]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("voiceguide"):
                continue
            for alias in node.names:  # `from voiceguide.export import sidecars` imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    found.discard(me)
    return found


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Edges from a module to a later stage (the lazy package root excepted: it only names exports)."""
    return sorted(f"{src} (stage {rank(src)}) imports {dst} (stage {rank(dst)})"
                  for src, targets in graph.items() for dst in targets
                  if rank(dst) > rank(src) and src != "voiceguide")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components: any component of two or more modules is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_every_module_has_a_stage() -> None:
    for name in MODULES:
        rank(name)


def test_no_module_imports_a_later_stage() -> None:
    assert wrong_way(GRAPH) == []


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == []


def test_a_lazy_import_of_a_later_stage_is_caught() -> None:
    """The checks can fail: an import hidden inside a function still counts."""
    model = MODULES["voiceguide.routine.model"]
    source = "def f():\n    from voiceguide.pipeline import render_session\n"
    graph = dict(GRAPH, **{"voiceguide.routine.model": imports_of(model, source)})
    assert wrong_way(graph) == ["voiceguide.routine.model (stage 1) imports voiceguide.pipeline (stage 6)"]


def test_a_cycle_inside_a_stage_is_caught() -> None:
    graph = dict(GRAPH, **{"voiceguide.plan.timeline": GRAPH["voiceguide.plan.timeline"] | {"voiceguide.plan.tones"},
                           "voiceguide.plan.tones": GRAPH["voiceguide.plan.tones"] | {"voiceguide.plan.timeline"}})
    assert any({"voiceguide.plan.timeline", "voiceguide.plan.tones"} <= set(cycle) for cycle in cycles(graph))
