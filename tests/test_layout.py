"""The house's one-way rule: every import of announcer's own modules points down a floor, or stays
within its package (README, "How it works")."""

from __future__ import annotations

import ast
from pathlib import Path

import announcer

# Floors, bottom up. Packages on the same floor do not import each other.
FLOORS = {
    "errors": 0, "__init__": 0,
    "sources": 1,
    "plan": 2, "importers": 2,
    "compose": 3,
    "deliver": 4, "publish": 4,
    "run": 5,
    "commands": 6, "skeleton": 6,
    "cli": 7, "__main__": 8,
}
PACKAGE = Path(announcer.__file__).parent


def _own_imports(path: Path) -> set[str]:
    """The top-level announcer modules or packages that a file imports, lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "announcer":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("announcer.")}
    return found - {"__version__"}


def test_every_module_is_on_a_floor():
    tops = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in PACKAGE.rglob("*.py")}
    assert tops <= set(FLOORS), tops - set(FLOORS)


def test_every_import_points_down_or_stays_in_its_package():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        home = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for target in _own_imports(path):
            if target != home and FLOORS[target] >= FLOORS[home]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert upward == []


def test_the_rule_is_not_empty():
    # The check would pass on any tree if it found no import at all.
    assert {"sources", "errors"} <= _own_imports(PACKAGE / "plan.py")
    assert {"plan", "errors", "compose", "deliver"} <= _own_imports(PACKAGE / "deliver" / "dispatch.py")
