"""The dependency rules, checked on the source: no import cycle between kubetune's modules or
packages, and the contract imports nothing of kubetune (see docs/architecture.md).

Every import statement counts, at module level or inside a function (a lazy import is a
dependency too), except those under `if TYPE_CHECKING:`. A package's edge to one of its own
subpackages (a package re-exporting what it holds) is no cycle; a subpackage's edge to its
parent's modules is an ordinary edge.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "kubetune"
# What each package may import of kubetune besides itself (and the root package's __version__).
ALLOWED = {
    "kubetune.contract": set(),
    "kubetune.params": {"kubetune.contract"},
    "kubetune.storage_initializer": {"kubetune.contract", "kubetune.params"},
    "kubetune.runtime": {"kubetune.contract"},
    "kubetune.trainer": {"kubetune.runtime"},
    # Hyperparameter search: tune() builds each trial's job through the training client, and
    # its local experiments run trials as jobs of the local backend.
    "kubetune.katib": {
        "kubetune.contract",
        "kubetune.params",
        "kubetune.training",
        "kubetune.jobfile",
    },
    # Local experiments run their trials on the local backend (and record the Experiment the
    # Kubernetes builders make): no client, no job files.
    "kubetune.katib.backends.local": {
        "kubetune.contract",
        "kubetune.params",
        "kubetune.katib",
        "kubetune.training.backends",
        "kubetune.training.images",
    },
    "kubetune.inference": {"kubetune.contract", "kubetune.training"},
}
# The storage initializer's fetch code (all but the seed's re-export modules) uses the contract only.
FETCH_MODULES_ALLOWED = {"kubetune.contract"}
SEED_REEXPORTS = {
    "kubetune.storage_initializer.hugging_face",
    "kubetune.storage_initializer.s3",
    "kubetune.storage_initializer.local",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}
PACKAGES = {module_name(p) for p in ROOT.rglob("__init__.py")}


def package_of(module: str) -> str:
    """The package a module belongs to (a package's __init__ belongs to the package itself)."""
    return module if module in PACKAGES else module.rpartition(".")[0]


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported kubetune module, line) for every import in `module` outside TYPE_CHECKING."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_lines(tree)
    package = module if module in PACKAGES else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "kubetune":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "kubetune":
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}"
                yield (target if target in MODULES else base), node.lineno


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _ in imports_of(module):
            if target != module:
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
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

    for node in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if node not in index:
            visit(node)
    return found


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between packages; a package's edges to its own subpackages are left out."""
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in edges.items():
        source = package_of(module)
        for target in targets:
            to = package_of(target)
            if to != source and not to.startswith(source + "."):
                packages[source].add(to)
    return packages


def test_the_graph_sees_the_imports_it_must() -> None:
    edges = graph()
    assert "kubetune.contract.spec" in edges["kubetune.params.job"]
    assert "kubetune.runtime.cli" in edges["kubetune.trainer.__main__"]
    # A lazy import inside a function counts: the CLI imports the dashboard on demand.
    assert "kubetune.ui.server" in edges["kubetune.cli"]
    assert "kubetune.katib.cli" in edges["kubetune.cli"]


def test_no_cycle_between_modules() -> None:
    assert cycles(graph()) == []


def test_no_cycle_between_packages() -> None:
    assert cycles(package_graph(graph())) == []


def test_cycles_are_found() -> None:
    """The check itself: a cycle through three packages, and one between two modules."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert package_graph({"kubetune.x.m": {"kubetune.y.n"}, "kubetune.y.n": {"kubetune.x"}})


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_the_rules_allow(package: str) -> None:
    wrong = []
    for module in MODULES:
        if package_of(module) != package and not module.startswith(package + "."):
            continue
        allowed = (
            FETCH_MODULES_ALLOWED if package == "kubetune.storage_initializer" else ALLOWED[package]
        )
        if module in SEED_REEXPORTS:
            allowed = {"kubetune.params"}
        for target, line in imports_of(module):
            if target == "kubetune" and package != "kubetune.contract":
                continue  # the root package: __version__ (it imports nothing itself)
            inside = target == package or target.startswith(package + ".")
            if not inside and not any(target == a or target.startswith(a + ".") for a in allowed):
                wrong.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line} imports {target}")
    assert wrong == []


def test_the_contract_imports_only_the_standard_library_at_module_level() -> None:
    import sys

    third_party = []
    for module, path in MODULES.items():
        if not module.startswith("kubetune.contract"):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("kubetune", "__future__"):
                    third_party.append(f"{module}: {name}")
    assert third_party == []


def test_callers_use_the_backend_interface_only() -> None:
    """The clients (TrainingClient, KatibClient, tune()'s checks), the CLI and the dashboard call
    public Backend methods: no private member of a backend, no hasattr/getattr probing for what
    a backend might offer."""
    callers = [
        ROOT / "cli.py",
        *(ROOT / "ui").glob("*.py"),
        *(ROOT / "training" / "api").glob("*.py"),
        ROOT / "katib" / "cli.py",
        *(ROOT / "katib" / "api").glob("*.py"),
        ROOT / "katib" / "request.py",
    ]
    found = []
    for path in callers:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"backend\._\w", line) or re.search(
                r"(hasattr|getattr)\((self\.)?\w*backend", line
            ):
                found.append(f"{path.relative_to(ROOT.parent)}:{number}: {line.strip()}")
    assert found == []
