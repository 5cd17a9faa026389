"""The import graph of samedge (converters/ included, installed as samedge.converters), read
from the source, has no cycles.

Rule: every ``import`` and ``from ... import`` is an edge, at module level or inside a
function (a lazy import still ties the two modules together); ``if TYPE_CHECKING:``
imports are edges too. An edge goes to the most specific module named: ``from .pkg
import mod`` is an edge to ``pkg.mod``, ``from .pkg import name`` one to ``pkg``
(its ``__init__``). Importing ``a.b.c`` also runs ``a/__init__`` first; that implicit
parent import is not an edge, or every package that re-exports its modules would loop.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
# converters sit below samedge's pipeline: they may use only its base layer.
CONVERTERS_MAY_USE = {"samedge.errors", "samedge.files"}


def package_folder(package: str) -> Path:
    """Where the source of an installed package lives (pyproject's package-dir mapping, else its dotted path)."""
    mapped = SETUPTOOLS.get("package-dir", {})
    for prefix in sorted(mapped, key=len, reverse=True):
        if package == prefix or package.startswith(prefix + "."):
            return ROOT / mapped[prefix] / Path(*package[len(prefix):].split(".")[1:])
    return ROOT / Path(*package.split("."))


def module_files() -> dict[str, Path]:
    """Every installed module, by its import name."""
    out = {}
    for package in SETUPTOOLS["packages"]:
        folder = package_folder(package)
        out[package] = folder / "__init__.py"
        for path in folder.glob("*.py"):
            if path.name != "__init__.py":
                out[f"{package}.{path.stem}"] = path
    return out


def _named(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module
    return [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]


def _owner(name: str, modules) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph = {}
    for module, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = _named(node, module, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):
                prefix = names.pop()
                owners = {_owner(n, modules) for n in names}
                # `from pkg import name` where name is no module: the edge is to pkg itself.
                edges |= {o for o in owners if o and o != prefix and o.startswith(prefix + ".")}
                if any(o == prefix or o is None or not o.startswith(prefix + ".") for o in owners):
                    edges.add(_owner(prefix, modules))
            else:
                edges |= {_owner(n, modules) for n in names}
        graph[module] = {e for e in edges if e and e != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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


def test_every_source_package_is_installed():
    """pyproject lists packages by hand (for the converters mapping): a new folder must be listed."""
    listed = {package_folder(p) for p in SETUPTOOLS["packages"]}
    on_disk = {init.parent for top in ("samedge", "converters") for init in (ROOT / top).rglob("__init__.py")}
    assert on_disk == listed
    assert not any(p == "converters" or p.startswith("converters.") for p in SETUPTOOLS["packages"])


def test_the_graph_is_read():
    graph = import_graph()
    assert "samedge.build" in graph and "samedge.converters.quantize" in graph
    assert "samedge.converters.quantize" in graph["samedge.build"]


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_converters_use_only_samedges_base_layer():
    graph = import_graph()
    reached = {(m, d) for m, deps in graph.items() if m.startswith("samedge.converters") for d in deps
               if not d.startswith("samedge.converters") and d not in CONVERTERS_MAY_USE}
    assert reached == set()
    base = {(m, d) for m in CONVERTERS_MAY_USE for d in graph[m] if d not in CONVERTERS_MAY_USE}
    assert base == set()
