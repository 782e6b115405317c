"""Imports point down the layers: no module imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import symbiont

SRC = Path(symbiont.__file__).parent

# Bottom to top; modules on one level may import each other. The top level is the public front
# (`symbiont/__init__.py`) and its users inside the package: the CLI, `symbiont.testing` and
# `symbiont.tools` (ready-made tools built on a Runtime). The run store knows nothing but rows
# (the CLI reads it without loading any layer above); the search drives lanes and the store.
LEVELS: list[set[str]] = [
    {"_errors", "_failures", "_prompts", "_config", "_events"},
    {"_store"},
    {"_decl"},
    {"_codegen"},
    {"_compile"},
    {"_load"},
    {"_validate"},
    {"_agents"},
    {"_evolve"},
    {"_checks"},
    {"_search"},
    {"_isolation", "_worker", "_ray"},
    {"_options"},
    {"_runtime"},
    {"__init__", "__main__", "testing", "tools", "_cli", "_serve"},
]
LEVEL = {name: i for i, names in enumerate(LEVELS) for name in names}

# (importer, imported) pairs allowed under `if TYPE_CHECKING:` only, with the reason.
TYPE_ONLY = {
    # The error tree is drawn in one module; EvolveError carries the lane's Trace.
    ("_errors", "_evolve"),
}


def _component(module: str) -> str | None:
    """The layer a dotted module name belongs to (None: not symbiont)."""
    parts = module.split(".")
    if parts[0] != "symbiont":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def imports(source: str) -> list[tuple[str, bool]]:
    """Every symbiont module ``source`` imports, anywhere in it, and whether the import is for
    type checking only."""
    tree = ast.parse(source)
    typing_only = _type_checking_nodes(tree)
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "symbiont":  # `from symbiont import _prompts`
                for alias in node.names:
                    module = f"symbiont.{alias.name}" if alias.name in LEVEL else "symbiont"
                    found.append((module, id(node) in typing_only))
            else:
                found.append((node.module, id(node) in typing_only))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in typing_only) for a in node.names]
    return found


def violations(importer: str, source: str) -> list[str]:
    """The imports of layer ``importer`` that climb."""
    level = LEVEL[importer]
    bad = []
    for module, typing_only in imports(source):
        target = _component(module)
        if target is None or target == importer:
            continue
        if LEVEL[target] > level and not (typing_only and (importer, target) in TYPE_ONLY):
            bad.append(f"{importer} imports {module} (level {LEVEL[target]} > {level})")
    return bad


def test_every_module_is_on_a_level() -> None:
    names = {p.stem if p.parent == SRC else p.relative_to(SRC).parts[0] for p in SRC.rglob("*.py")}
    assert names - set(LEVEL) == set(), "put the new module in LEVELS"


def test_no_module_imports_from_a_layer_above_it() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        layer = rel.stem if len(rel.parts) == 1 else rel.parts[0]
        bad += [f"{rel}: {v}" for v in violations(layer, path.read_text(encoding="utf-8"))]
    assert bad == []


def test_the_check_catches_a_climbing_import() -> None:
    assert violations("_errors", "from symbiont._evolve import Lane\n") == [
        "_errors imports symbiont._evolve (level 8 > 0)"
    ]
    inside_a_function = "def f():\n    from symbiont._runtime import Runtime\n"
    assert violations("_worker", inside_a_function) != []
    assert violations("_decl", "from symbiont import _prompts\n") == []
    assert violations("_decl", "import symbiont\n") != []
    type_only = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from symbiont._evolve import X\n"
    )
    assert violations("_errors", type_only) == []
    assert violations("_decl", type_only) != []
