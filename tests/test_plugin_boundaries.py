"""The rooms of the code: the core imports no plugin, plugins import only the core's public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PUBLIC = {
    "cs_core",
    "cs_core.hookspecs",
    "cs_core.driver",
    "cs_core.archive",
    "cs_core.errors",
    "cs_core.records",
    "cs_core.idmap",
    "cs_core.gojson",
    "cs_core.fsutil",
    "cs_core.testing",
}
PLUGIN_PACKAGES = sorted(p for p in REPO.glob("*/*/cs_*") if p.is_dir() and (p / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_imports_no_plugin() -> None:
    for source in (REPO / "cs_core").rglob("*.py"):
        for module in imported_modules(source):
            assert not module.startswith(("cs_driver_", "cs_metadata_")), f"{source} imports {module}"


@pytest.mark.parametrize("package", PLUGIN_PACKAGES, ids=lambda p: p.name)
def test_plugins_use_only_the_public_api(package: Path) -> None:
    own = package.name
    for source in package.rglob("*.py"):
        for module in imported_modules(source):
            if module.startswith("cs_core"):
                assert module in PUBLIC, f"{source} imports private core module {module}"
            assert not (module.startswith(("cs_driver_", "cs_metadata_")) and module.split(".")[0] != own), (
                f"{source} imports another plugin: {module}"
            )
