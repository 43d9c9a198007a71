"""The package's import structure: no circles, no phantoms in product code, no reaching into
another subpackage's private modules (counting lazy imports inside functions and
TYPE_CHECKING imports, read from the syntax tree)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "dosimetry"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(module: str, is_pkg: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *(target.split(".") if target else [])])


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported dosimetry/phantoms module, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, is_pkg, node.level, node.module) if node.level else node.module
            if mod is None:
                continue
            for a in node.names:
                full = f"{mod}.{a.name}"
                # "from . import x" imports the submodule x when there is one
                out.append((full if full in MODULES else mod, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps = set()
        for mod, _ in _imports(name, path):
            if mod.startswith("dosimetry"):
                # the nearest existing module of the dotted name
                while mod and mod not in MODULES:
                    mod = mod.rpartition(".")[0]
                if mod and mod != name:
                    deps.add(mod)
        g[name] = deps
    return g


def _parents(mod: str) -> set[str]:
    parts = mod.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))
    try:
        for v in sorted(g):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


def test_no_import_circle_between_modules():
    """A package's __init__ importing its own submodules is not a circle (a submodule
    importing its package's __init__ for a re-exported name would be)."""
    g = _graph()
    # edges from a package __init__ to its own submodules are how packages expose names
    pruned = {m: {d for d in deps if m not in _parents(d)} for m, deps in g.items()}
    cycles = _cycles(pruned)
    assert not cycles, f"import circles: {cycles}"


def test_cycle_detector_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_product_code_never_imports_phantoms_except_the_demo_command():
    offenders = []
    for name, path in MODULES.items():
        if name == "dosimetry.cli":
            continue
        for mod, line in _imports(name, path):
            if mod == "phantoms" or mod.startswith("phantoms."):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert not offenders, offenders


def test_no_import_of_another_subpackage_private_module():
    """``dosimetry.a.b._x`` may be imported only from inside ``dosimetry.a.b``."""
    offenders = []
    for name, path in MODULES.items():
        own_pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for mod, line in _imports(name, path):
            if not mod.startswith("dosimetry."):
                continue
            parts = mod.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if owner != "dosimetry" and not (
                        own_pkg == owner or own_pkg.startswith(owner + ".")
                    ):
                        offenders.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
                    break
    assert not offenders, offenders


@pytest.mark.parametrize(
    "module",
    ["dosimetry.results", "dosimetry.checks", "dosimetry.voi", "dosimetry.volume"],
)
def test_bottom_layer_modules_import_no_upper_layer(module):
    """The record types sit at the bottom: they may import volume/units/errors/_text only."""
    allowed = {
        "dosimetry.volume",
        "dosimetry.units",
        "dosimetry.errors",
        "dosimetry._text",
        "dosimetry.results",
        "dosimetry.parameters",
        "dosimetry",
    }
    deps = _graph()[module]
    assert deps <= allowed, deps - allowed


def test_report_depends_on_results_not_on_workflows():
    g = _graph()
    for name in g:
        if name.startswith("dosimetry.report"):
            bad = {
                d
                for d in g[name]
                if d.startswith(("dosimetry.workflows", "dosimetry.cli", "dosimetry.io"))
            }
            assert not bad, (name, bad)
