"""The import graph of src/isbert (read with ast, every import: module level, in functions, under TYPE_CHECKING):
no import circle, no upward import between the layers, and no module inside the package imports the public face
(``isbert/__init__.py``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "isbert"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root`` by its dotted name (a package by its own name)."""
    names = {}
    for path in (root / package).rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[tuple[str, str | None]]:
    """(module imported from, name imported) for each name an import statement binds; name None for ``import m``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
        return
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join([*here[: len(here) - node.level + 1], *([node.module] if node.module else [])])
    for alias in node.names:
        yield base, alias.name


def import_graph(root: Path, package: str) -> tuple[dict[str, set[str]], list[str]]:
    """The package's internal import edges (module -> modules it imports) and each import of the public face."""
    modules = module_names(root, package)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    face: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for source, imported in _imported(node, name, path.name == "__init__.py"):
                if source != package and not source.startswith(f"{package}."):
                    continue
                named = f"{source}.{imported}"
                target = named if imported is not None and named in modules else source  # ``from pkg import mod``
                if target == package and name != package:
                    face.append(f"{name} (line {node.lineno}) imports the public face: {ast.unparse(node)}")
                while target not in modules:
                    target = target.rpartition(".")[0]
                if target != name and target != package:
                    edges[name].add(target)
    return edges, face


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(component: list[str], edges: dict[str, set[str]]) -> str:
    inside = set(component)
    return "; ".join(f"{m} -> {', '.join(sorted(edges[m] & inside))}" for m in component)


def test_src_isbert_has_no_import_circle() -> None:
    edges, _face = import_graph(SOURCE, PACKAGE)
    assert len(edges) > 50 and "isbert.model" in edges["isbert.training.models"]
    found = circles(edges)
    assert not found, "import circles: " + " | ".join(_describe(c, edges) for c in found)


LAYERS = {"core": 0, "objectives": 1, "evaluation": 1, "search": 1, "training": 2, "experiments": 3, "commands": 4}
"""The package's layers, lowest first: a module imports its own package or a lower layer, never one beside or
above it. ``core`` is the top-level modules (models, backbones, files, the CNN and losses); ``objectives`` (the
registry of training objectives) sits beside evaluation and search, below training and the experiments that both
read it; the command lines (``cli.py``, ``*_cli.py`` and each package's ``cli.py``) are the top."""
KNOWN_UPWARD: dict[tuple[str, str], str] = {}
"""Upward imports not yet removed, each with what is wrong; an entry that is gone must be deleted here too."""


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[-1] in ("cli", "__main__") or parts[-1].endswith("_cli"):
        return "commands"
    return parts[1] if len(parts) > 2 or (SOURCE / PACKAGE / parts[-1]).is_dir() else "core"


def upward_imports(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs that reach into a package on the same layer or a higher one."""
    found = set()
    for module, targets in edges.items():
        for target in targets:
            mine, theirs = layer(module), layer(target)
            if mine != theirs and LAYERS[theirs] >= LAYERS[mine]:
                found.add((module, target))
    return found


def test_no_upward_import_between_layers() -> None:
    edges, _face = import_graph(SOURCE, PACKAGE)
    assert {layer(m) for m in edges} == set(LAYERS)
    assert upward_imports(edges) == set(KNOWN_UPWARD)


def test_an_upward_import_is_found() -> None:
    edges = {"isbert.model": {"isbert.training.run"}, "isbert.training.run": {"isbert.model"}, "isbert.cli": set()}
    edges |= {"isbert.evaluation.harness": {"isbert.search.index", "isbert.model"}, "isbert.search.index": set()}
    edges |= {"isbert.training.cli": {"isbert.experiments.runner"}, "isbert.experiments.runner": {"isbert.cli"}}
    assert upward_imports(edges) == {
        ("isbert.model", "isbert.training.run"),
        ("isbert.evaluation.harness", "isbert.search.index"),
        ("isbert.experiments.runner", "isbert.cli"),
    }


def test_no_module_imports_the_public_face() -> None:
    _edges, face = import_graph(SOURCE, PACKAGE)
    assert not face, "\n".join(face)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_circles_through_function_level_relative_and_type_checking_imports_are_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "VERSION = 1\n",
            "pkg/a.py": "def f():\n    from pkg.b import g\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import c\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "import pkg.a\n",
            "pkg/d.py": "from pkg import VERSION, a\n",
            "pkg/e.py": "import pkg\nfrom pkg.sub import c\n",
        },
    )
    edges, face = import_graph(tmp_path, "pkg")
    assert circles(edges) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    assert edges["pkg.d"] == {"pkg.a"} and edges["pkg.e"] == {"pkg.sub.c"}
    assert [line.split(" ")[0] for line in face] == ["pkg.d", "pkg.e"]  # ``from pkg import a`` alone is a module


def test_no_circle_in_a_layered_package(tmp_path: Path) -> None:
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/low.py": "", "pkg/high.py": "from pkg.low import x\n"})
    edges, face = import_graph(tmp_path, "pkg")
    assert circles(edges) == [] and face == [] and edges["pkg.high"] == {"pkg.low"}


@given(st.dictionaries(st.integers(0, 7), st.sets(st.integers(0, 7), max_size=4), min_size=1))
def test_circles_match_a_reachability_reference(graph: dict[int, set[int]]) -> None:
    nodes = set(graph) | {n for targets in graph.values() for n in targets}
    edges = {str(n): {str(t) for t in graph.get(n, set()) if t != n} for n in nodes}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reach = {n: reachable(n) for n in edges}
    want = {frozenset(m for m in edges if m == n or (m in reach[n] and n in reach[m])) for n in edges}
    assert {frozenset(c) for c in circles(edges)} == {c for c in want if len(c) > 1}


@pytest.mark.parametrize("statement", ["import isbert", "from isbert import __version__", "from isbert import load"])
def test_an_import_of_the_face_is_reported(tmp_path: Path, statement: str) -> None:
    _write(tmp_path, {"isbert/__init__.py": "", "isbert/x.py": f"def f():\n    {statement}\n"})
    _edges, face = import_graph(tmp_path, "isbert")
    assert len(face) == 1 and face[0].startswith("isbert.x (line 2)")
