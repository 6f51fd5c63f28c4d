"""Members' layout: the package root holds only wiring, and two known cycles stay cut."""

from __future__ import annotations

import ast
from pathlib import Path

import hearth_members

ROOT = Path(hearth_members.__file__).parent


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def test_the_root_holds_only_wiring() -> None:
    modules = {p.name for p in ROOT.glob("*.py")}
    assert modules == {
        "__init__.py",
        "__main__.py",
        "app.py",
        "settings.py",
        "permissions.py",
        "models.py",
    }


def test_notifications_import_only_the_privacy_registry_of_profiles() -> None:
    profiles = {m for m in _imports("notifications") if m.startswith("hearth_members.profiles")}
    assert profiles <= {"hearth_members.profiles.privacy"}
    registry = ast.parse((ROOT / "profiles" / "privacy.py").read_text())
    assert not [
        n
        for n in ast.walk(registry)
        if isinstance(n, ast.ImportFrom) and "hearth_" in str(n.module)
    ]


def test_profiles_import_no_other_package_but_audit() -> None:
    others = {
        m.split(".")[1]
        for m in _imports("profiles")
        if m.startswith("hearth_members.") and m.count(".") >= 1
    }
    assert others <= {"profiles", "audit", "settings", "models"}
