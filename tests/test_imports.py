"""The package's import graph, read from the sources: no cycles, and loading a trained model never needs training/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cifarlab

ROOT = Path(cifarlab.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """Every cifarlab module ``module`` imports, at any depth: in functions and under ``if TYPE_CHECKING`` too (a
    cycle through type hints alone still ties the two modules together for a reader)."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                package = module if is_package else module.rpartition(".")[0]
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # `from pkg import name` imports the submodule pkg.name when there is one, else pkg itself.
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            found.update(submodules or {target})
    return {m for m in found if m in modules and m != module}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    return {name: _imports(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", modules)
            for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_sees_function_level_relative_and_type_only_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from cifarlab.x import y\n")
    assert _imports(tree, "cifarlab.z", False, {"cifarlab.x", "cifarlab.x.y", "cifarlab.z"}) == {"cifarlab.x.y"}
    tree = ast.parse("from . import y\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cifarlab.w\n")
    assert _imports(tree, "cifarlab.x.z", False, {"cifarlab.x.y", "cifarlab.w"}) == {"cifarlab.x.y", "cifarlab.w"}


def test_no_module_imports_one_that_imports_it_back():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("package", ["evaluation", "export", "inspection"])
def test_using_a_trained_model_needs_nothing_from_training(package):
    offenders = {f"{m} imports {d}" for m, deps in _graph().items() if m.startswith(f"cifarlab.{package}")
                 for d in deps if d == "cifarlab.training" or d.startswith("cifarlab.training.")}
    assert not offenders, sorted(offenders)


def test_no_public_name_is_also_a_subpackage():
    # Importing cifarlab.NAME (the submodule) binds NAME on the package to the module, so cifarlab.NAME the
    # function would become a module that cannot be called, depending on what was imported before.
    shadowed = sorted(name for name in cifarlab.__all__ if f"cifarlab.{name}" in _graph())
    assert not shadowed, shadowed
