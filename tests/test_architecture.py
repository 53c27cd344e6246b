"""The layout's rules, read from the source: no import cycles among Fundline's modules, and
``kit/`` (the ground every domain stands on) imports nothing from the domain.

Every import counts, those inside functions too: a lazy import only hides a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fundline

SOURCE = Path(fundline.__file__).parent
ROOT = SOURCE.parent

# Cycles not yet untangled, each with its modules sorted. Remove one once it is gone.
KNOWN_CYCLES: set[tuple[str, ...]] = set()  # none: keep it so


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    """Each module's Fundline imports: ``from a.b import c`` is ``a.b.c`` if that is a module."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parents, base] if base else parents)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in_kit(module: str) -> bool:
    return module == "fundline.kit" or module.startswith("fundline.kit.")


def test_cycle_finder_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == {("a", "b", "c")}


def test_no_import_cycles() -> None:
    cycles = _cycles(_import_graph())
    assert cycles - KNOWN_CYCLES == set(), "new import cycles"
    assert KNOWN_CYCLES - cycles == set(), "gone: remove them from KNOWN_CYCLES"


def test_kit_imports_nothing_from_the_domain() -> None:
    graph = _import_graph()
    outside = {
        (module, target)
        for module, targets in graph.items()
        if _in_kit(module)
        for target in targets
        if not _in_kit(target)
    }
    assert outside == set()


# The lender seam (lending/provider.py): what may be imported from ``fundline.lending`` by
# whom. Everyone may use the seam itself; the built-in lender's own operator surfaces (the
# lender API, its console) and sandbox may use its modules; the start-up wiring builds the
# provider. The lock order is every domain's (a document is locked before its financing), so
# it is part of the seam.
SEAM = {"fundline.lending", "fundline.lending.provider", "fundline.lending.locks"}
BUILTIN_SURFACES = ("fundline.backoffice", "fundline.console", "fundline.sandbox")
WIRING = {
    "fundline.app": {"fundline.lending.lenders", "fundline.lending.policy"},
    "fundline.cli": {"fundline.lending.lenders", "fundline.lending.kanmon.fake_cli"},
}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _seam_breaches(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    breaches = set()
    for module, targets in graph.items():
        for target in targets:
            if not _under(target, "fundline.lending") or target in SEAM:
                continue
            if _under(module, "fundline.lending.kanmon"):
                # The adapter stands on the seam alone, never on the built-in lender.
                if not _under(target, "fundline.lending.kanmon"):
                    breaches.add((module, target))
            elif _under(module, "fundline.lending"):
                if _under(target, "fundline.lending.kanmon") and module not in (
                    "fundline.lending.lenders",
                ):
                    breaches.add((module, target))
            elif any(_under(module, surface) for surface in BUILTIN_SURFACES):
                if _under(target, "fundline.lending.kanmon"):
                    breaches.add((module, target))
            elif target not in WIRING.get(module, set()):
                breaches.add((module, target))
    return breaches


def test_seam_checker_sees_a_breach() -> None:
    graph = {
        "fundline.financing.service": {"fundline.lending.servicing", "fundline.lending.provider"},
        "fundline.lending.kanmon.sync": {"fundline.lending.pricing"},
        "fundline.backoffice.service": {"fundline.lending.servicing"},
    }
    assert _seam_breaches(graph) == {
        ("fundline.financing.service", "fundline.lending.servicing"),
        ("fundline.lending.kanmon.sync", "fundline.lending.pricing"),
    }


def test_only_the_seam_is_imported_from_lending() -> None:
    """``financing``, ``connect`` and the documents' domains talk to the provider only; the
    built-in lender's modules are imported by nothing outside it but its own operator and
    sandbox surfaces, and the Kanmon adapter by nothing but the choice of lender."""
    assert _seam_breaches(_import_graph()) == set()
