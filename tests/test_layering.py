"""Dependencies run one way, with no import cycle anywhere.

- grids imports nothing of ours; models never imports pipeline;
- no import cycle among the modules of grids/, models/ and pipeline/, counting
  function-local imports (a lazy import hides a cycle, it does not remove it);
- inside pipeline/, a part imports only parts of a lower layer (``LAYERS``).

``from pkg import name`` counts as an import of ``pkg.name`` when that is a module,
else of ``pkg`` (its ``__init__``); the implicit import of a parent package is not
counted (every submodule would otherwise depend on its package's ``__init__``).
The checks are tested on small fake trees too, so each can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("grids", "models", "pipeline")
FORBIDDEN = {"grids": {"models", "pipeline"}, "models": {"pipeline"}}

# Layers of pipeline/ (first = lowest). A part (sub-package or top-level module of
# pipeline/) imports only parts of lower layers; parts of one layer never import each
# other. A part listed nowhere is not judged here (the cycle test still covers it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pipeline.errors",),
    ("pipeline.config", "pipeline.logs"),
    ("pipeline.cluster", "pipeline.cube", "pipeline.insitu", "pipeline.sources"),
    ("pipeline.export", "pipeline.point", "pipeline.run", "pipeline.synth", "pipeline.table"),
    ("pipeline.evaluate",),
    ("pipeline.demo",),
    ("pipeline.cli", "pipeline.__main__"),
)


def modules(root: Path, tops: tuple[str, ...] = OURS) -> dict[str, Path]:
    """{dotted module name: file} of every .py under ``root/<top>``."""
    out: dict[str, Path] = {}
    for top in tops:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def import_graph(root: Path, tops: tuple[str, ...] = OURS) -> dict[str, set[str]]:
    """{module: modules of ours it imports anywhere in its body (function-local too)}."""
    mods = modules(root, tops)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    src = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    src = node.module or ""
                targets = [
                    f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names
                ]
            for t in targets:
                k = known(t)
                if k is not None and k != mod:
                    deps.add(k)
        graph[mod] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def part(mod: str) -> str:
    """The part of pipeline/ a module belongs to (``pipeline.run.day`` -> ``pipeline.run``)."""
    return ".".join(mod.split(".")[:2])


def layer_violations(
    graph: dict[str, set[str]], layers: tuple[tuple[str, ...], ...] = LAYERS
) -> list[str]:
    rank = {p: i for i, names in enumerate(layers) for p in names}
    bad = []
    for mod, deps in sorted(graph.items()):
        a = part(mod)
        if a not in rank:
            continue
        for dep in sorted(deps):
            b = part(dep)
            if b != a and b in rank and rank[b] >= rank[a]:
                bad.append(f"{mod} imports {dep} ({b} is not below {a})")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_run_one_way(package: str) -> None:
    graph = import_graph(ROOT)
    offenders = [
        f"{mod} imports {dep}"
        for mod, deps in sorted(graph.items())
        if mod.split(".")[0] == package
        for dep in sorted(deps)
        if dep.split(".")[0] in FORBIDDEN[package]
    ]
    assert not offenders, offenders


def test_no_import_cycles() -> None:
    found = cycles(import_graph(ROOT))
    assert not found, f"import cycles: {found}"


def test_pipeline_parts_import_only_lower_layers() -> None:
    graph = import_graph(ROOT)
    assert not layer_violations(graph)
    parts = {part(m) for m in graph if m.startswith("pipeline.")}
    listed = {p for names in LAYERS for p in names}
    # The layers name real parts (a renamed folder must be renamed here too).
    assert listed - parts <= {"pipeline.__main__", "pipeline.logs"}, sorted(listed - parts)


# -- the checks themselves can fail --------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def test_a_cycle_hidden_in_a_function_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "pipeline/__init__.py": "",
            "pipeline/run/__init__.py": "",
            "pipeline/run/day.py": "from pipeline.run.tile import make_tile\n",
            "pipeline/run/tile.py": "from pipeline.run import static\n",
            "pipeline/run/static.py": "def f():\n    from .day import run_day\n",
            "pipeline/run/plan.py": "from pipeline.run import day\n",
        },
    )
    graph = import_graph(root, ("pipeline",))
    assert graph["pipeline.run.static"] == {"pipeline.run.day"}
    assert cycles(graph) == [["pipeline.run.day", "pipeline.run.static", "pipeline.run.tile"]]


def test_a_layer_violation_and_a_forbidden_import_are_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "grids/__init__.py": "",
            "models/__init__.py": "def f():\n    import pipeline.cube\n",
            "pipeline/__init__.py": "",
            "pipeline/cube/__init__.py": "",
            "pipeline/sources/__init__.py": "from pipeline import cube\n",
            "pipeline/run/__init__.py": "from pipeline.sources import x\n",
        },
    )
    graph = import_graph(root)
    assert graph["models"] == {"pipeline.cube"}
    assert layer_violations(graph) == [
        "pipeline.sources imports pipeline.cube (pipeline.cube is not below pipeline.sources)"
    ]
