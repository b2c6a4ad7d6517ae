"""Import hygiene of a package: import cycles between its modules, and private names used across modules.

    python scripts/check_imports.py                 # the whole qa package
    python scripts/check_imports.py --only qa.encoders --only qa.hashing

Read with ``ast``, nothing is imported. The module graph holds every import a module can run, at the top
or inside a function (an import inside a function is still a dependency, only a later one); imports under
``if TYPE_CHECKING:`` never run and are left out. Importing ``qa.ingest.structure`` first runs
``qa/ingest/__init__.py``, so it depends on ``qa.ingest`` too, unless that package is one the importing
module sits in (it is then already being set up). A cycle is reported as one path through each strongly
connected group of modules.

A private name is one starting with one underscore (dunders are public). Reported:
- ``from qa.x import _name`` in another module;
- ``x._name`` where ``x`` is a module of the package bound by an import (``store._noop``);
- ``obj._name`` on anything but ``self``/``cls``, when this module defines no ``_name`` of its own (no
  function, class, variable or ``self._name``), i.e. the attribute belongs to a class from elsewhere
  (``store._sources = ...``, ``retriever._prep``).
Exit status 1 when anything is found.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Underscore names that are public API by convention (namedtuple's methods).
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_field_defaults", "_make"}


@dataclass(frozen=True)
class PrivateUse:
    """One use of another module's private name."""

    module: str  # where it is used
    line: int
    name: str  # the private name
    owner: str  # the module it belongs to, or "?" for an attribute of an object defined elsewhere

    def __str__(self) -> str:
        where = f"{self.owner}.{self.name}" if self.owner != "?" else f"<object>.{self.name}"
        return f"{self.module}:{self.line}: uses private {where}"


@dataclass
class Report:
    """What the check found: cycles (each a closed path of module names) and private uses."""

    cycles: list[list[str]] = field(default_factory=list)
    private: list[PrivateUse] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing found."""
        return not self.cycles and not self.private

    def lines(self) -> list[str]:
        """The findings, one per line."""
        out = [f"cycle: {' -> '.join(c)}" for c in self.cycles]
        out += [str(p) for p in self.private]
        return out


def is_private(name: str) -> bool:
    """One leading underscore, not a dunder, not a namedtuple method."""
    return (
        name.startswith("_")
        and not (name.startswith("__") and name.endswith("__"))
        and name not in PUBLIC_UNDERSCORE
        and name != "_"
    )


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the package directory."""
    package_dir = package_dir.resolve()
    base = package_dir.parent
    out: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node of the tree except the bodies of `if TYPE_CHECKING:` blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


class _Module:
    """One parsed module: its imports (as edges and bound names) and the private names it defines."""

    def __init__(self, name: str, path: Path, modules: dict[str, Path]) -> None:
        self.name = name
        self.is_package = path.name == "__init__.py"
        parts = name.split(".")
        # Packages this module sits in: Python has started running them before this module.
        self.enclosing = {".".join(parts[:i]) for i in range(1, len(parts) + (1 if self.is_package else 0))}
        self.modules = modules
        self.tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        self.imports: set[str] = set()
        self.bound: dict[str, str] = {}  # local name -> module of the package it stands for
        self.private: list[PrivateUse] = []
        self.defines: set[str] = set()
        nodes = list(_runtime_nodes(self.tree))
        for node in nodes:
            self._collect_definition(node)
        for node in nodes:
            if isinstance(node, ast.Import):
                self._import(node)
            elif isinstance(node, ast.ImportFrom):
                self._import_from(node)
        for node in nodes:
            if isinstance(node, ast.Attribute) and is_private(node.attr):
                self._attribute(node)

    def _known(self, dotted: str) -> str | None:
        """The longest prefix of a dotted name that is a module of the package."""
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join(parts[:i])
            if candidate in self.modules:
                return candidate
        return None

    def _depend(self, target: str) -> None:
        """An import of `target`, which also runs every package around it that is not already running."""
        self.imports.add(target)
        parts = target.split(".")
        for i in range(1, len(parts)):
            package = ".".join(parts[:i])
            if package in self.modules and package not in self.enclosing:
                self.imports.add(package)

    def _collect_definition(self, node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.defines.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            self.defines.add(node.id)
        elif isinstance(node, ast.arg):
            self.defines.add(node.arg)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            self.defines.add(node.attr)

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            target = self._known(alias.name)
            if target is None:
                continue
            self._depend(target)
            if alias.asname:
                self.bound[alias.asname] = target
            else:  # `import qa.x.y` binds `qa`; the chain is resolved attribute by attribute
                top = alias.name.split(".")[0]
                if top in self.modules:
                    self.bound[top] = top

    def _import_from(self, node: ast.ImportFrom) -> None:
        if node.level:
            package = self.name if self.is_package else self.name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            source = f"{package}.{node.module}" if node.module else package
        else:
            source = node.module or ""
        owner = self._known(source)
        if owner is None:
            return
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if sub in self.modules:
                self._depend(sub)
                self.bound[alias.asname or alias.name] = sub
                continue
            self._depend(owner)
            if is_private(alias.name) and owner != self.name:
                self.private.append(PrivateUse(self.name, node.lineno, alias.name, owner))

    def _resolve(self, expr: ast.expr) -> str | None:
        """The package module an expression names (a bound name or an attribute chain), if any."""
        if isinstance(expr, ast.Name):
            return self.bound.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = self._resolve(expr.value)
            if base is not None and f"{base}.{expr.attr}" in self.modules:
                return f"{base}.{expr.attr}"
        return None

    def _attribute(self, node: ast.Attribute) -> None:
        owner = self._resolve(node.value)
        if owner is not None:
            if owner != self.name:
                self.private.append(PrivateUse(self.name, node.lineno, node.attr, owner))
            return
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            return
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            return
        if node.attr not in self.defines:
            self.private.append(PrivateUse(self.name, node.lineno, node.attr, "?"))


def import_graph(package_dir: Path) -> tuple[dict[str, set[str]], list[PrivateUse]]:
    """Module -> the package modules it imports (top level and in functions), and every private use."""
    modules = module_files(package_dir)
    graph: dict[str, set[str]] = {}
    private: list[PrivateUse] = []
    for name, path in modules.items():
        mod = _Module(name, path, modules)
        graph[name] = mod.imports - {name}
        private += mod.private
    return graph, private


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of two or more modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        # Iterative depth-first search: (node, iterator over its successors).
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, succ = work[-1]
            advanced = False
            for nxt in succ:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    group.append(top)
                    if top == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def cycle_path(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One closed path through a strongly connected group, from its first module back to it (shortest)."""
    members = set(group)
    start = group[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, set()) & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*path[::-1], start]
                if nxt not in parents:
                    parents[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return [*group, start]  # not reached for a real group


def check(package_dir: Path, only: Iterable[str] = ()) -> Report:
    """Cycles and private uses in the package; with `only`, those touching a module under one of the prefixes."""
    prefixes = tuple(only)

    def mine(module: str) -> bool:
        return not prefixes or any(module == p or module.startswith(p + ".") for p in prefixes)

    graph, private = import_graph(package_dir)
    report = Report()
    for group in strongly_connected(graph):
        if any(mine(m) for m in group):
            report.cycles.append(cycle_path(graph, group))
    report.private = [p for p in private if mine(p.module) or (p.owner != "?" and mine(p.owner))]
    return report


def main(argv: list[str] | None = None) -> int:
    """Print the findings; 1 if there are any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "package",
        nargs="?",
        default=str(Path(__file__).resolve().parent.parent / "qa"),
        help="package folder",
    )
    parser.add_argument("--only", action="append", default=[], help="report only what touches this module")
    args = parser.parse_args(argv)
    report = check(Path(args.package), args.only)
    for line in report.lines():
        print(line)
    scope = ", ".join(args.only) or Path(args.package).name
    print(
        f"{scope}: {len(report.cycles)} import cycle(s), {len(report.private)} private name(s) across modules"
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
