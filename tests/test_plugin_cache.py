"""The cached entry-point index (cs_core.plugin_index): warm starts skip stevedore, and the index
follows installs, survives corruption and still finds conflicts.

Every test runs Python in a subprocess with its own ``XDG_CACHE_HOME`` and a scratch site
directory on ``PYTHONPATH`` (fake distributions are written there, as in test_plugins.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from test_plugins import make_dist

OPEN_VFS = """
import sys
from cs_core import open_store, load_options
from cs_core.errors import StorageError
try:
    s = open_store(load_options(graph_root={g!r}, run_root={r!r}, driver={d!r}))
    print("OK", s.driver_name)
except StorageError as exc:
    print("ERR", exc)
print("IMPORTED", sorted(m for m in ("stevedore", "importlib.metadata") if m in sys.modules))
"""

LIST_DRIVERS = """
from cs_core.plugins import installed_plugins
print(sorted((p.name, p.distribution) for p in installed_plugins("cs_core.graphdrivers")))
"""

T = TypeVar("T")

# A driver plugin named "late": the vfs driver under another name.
LATE_MODULE = """
from cs_core import hookimpl
from cs_core.driver import GraphDriverSpec

@hookimpl
def cs_graphdrivers():
    from cs_driver_vfs.driver import VfsDriver
    return [GraphDriverSpec(name="late", factory=VfsDriver)]
"""


def _age(path: Path) -> None:
    """Date ``path`` back a minute, so that the index may be keyed on its time."""
    old = time.time() - 60
    os.utime(path, (old, old))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    _age(path)
    return path


def _run(site: Path, tmp: Path, code: str, more_sites: tuple[Path, ...] = ()) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "CONTAINERS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *map(str, more_sites), env.get("PYTHONPATH", "")])
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    empty = tmp / "empty.yaml"
    empty.write_text("{}\n")
    env["CONTAINERS_STORAGE_CONFIG"] = str(empty)
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=site, timeout=120
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def _index_files(tmp: Path) -> list[Path]:
    return sorted((tmp / "cache" / "cs-core").glob("entry-points-*.json"))


def _open(site: Path, tmp: Path, driver: str = "vfs") -> tuple[str, list[str]]:
    """Open a store in a new process: ``(first output line, which discovery modules were imported)``."""
    out = _run(site, tmp, OPEN_VFS.format(g=str(tmp / "g"), r=str(tmp / "r"), d=driver)).splitlines()
    return out[0], json.loads(out[-1].removeprefix("IMPORTED ").replace("'", '"'))


def _until_indexed(tmp: Path, run: Callable[[], T]) -> T:
    """Call ``run`` until it writes the index (not while a ``sys.path`` entry changed seconds ago)."""
    for _ in range(4):
        before = {p: p.stat().st_mtime_ns for p in _index_files(tmp)}
        result = run()
        if {p: p.stat().st_mtime_ns for p in _index_files(tmp)} != before:
            return result
        time.sleep(2.5)
    raise AssertionError("the entry-point index was never written")


def _prime(site: Path, tmp: Path, driver: str = "vfs") -> tuple[str, list[str]]:
    """Open a store until that writes the index; the result of that (cold) run."""
    return _until_indexed(tmp, lambda: _open(site, tmp, driver))


def test_warm_start_imports_no_stevedore(site: Path, tmp_path: Path) -> None:
    first, imported = _prime(site, tmp_path)
    assert first == "OK vfs"
    assert "stevedore" in imported
    assert len(_index_files(tmp_path)) == 1
    second, imported = _open(site, tmp_path)
    assert second == "OK vfs"
    assert imported == []


def test_installing_a_distribution_invalidates_the_index(site: Path, tmp_path: Path) -> None:
    _prime(site, tmp_path)
    assert "late" not in _run(site, tmp_path, LIST_DRIVERS)
    make_dist(site, "cs-fake-late", "cs_core.graphdrivers", {"late": "cs_fake_late"}, {"cs_fake_late": LATE_MODULE})
    assert "('late', 'cs-fake-late')" in _run(site, tmp_path, LIST_DRIVERS)
    result, imported = _open(site, tmp_path, "late")
    assert result == "OK late"
    # Once the index is rewritten, the new plugin is found without stevedore.
    _age(site)
    _prime(site, tmp_path, "late")
    assert _open(site, tmp_path, "late") == ("OK late", [])


def test_removing_a_distribution_invalidates_the_index(site: Path, tmp_path: Path) -> None:
    make_dist(site, "cs-fake-late", "cs_core.graphdrivers", {"late": "cs_fake_late"}, {"cs_fake_late": LATE_MODULE})
    _age(site)
    assert _prime(site, tmp_path, "late")[0] == "OK late"
    shutil.rmtree(site / "cs_fake_late-1.0.dist-info")
    (site / "cs_fake_late.py").unlink()
    result, _imported = _open(site, tmp_path, "late")
    assert result.startswith("ERR failed to GetDriver graph late") and "driver not supported" in result, result


@pytest.mark.parametrize(
    "garbage",
    ["{not json", "[]", '{"key": 1, "plugins": {}}', "CURRENT_KEY_BAD_PLUGINS"],
    ids=["truncated", "list", "wrong-key", "bad-plugins"],
)
def test_corrupt_index_falls_back_to_stevedore_and_is_rewritten(site: Path, tmp_path: Path, garbage: str) -> None:
    _prime(site, tmp_path)
    (index,) = _index_files(tmp_path)
    if garbage == "CURRENT_KEY_BAD_PLUGINS":
        data = json.loads(index.read_text())
        data["plugins"]["cs_core.graphdrivers"] = [[1, 2, 3, True]]
        garbage = json.dumps(data)
    index.write_text(garbage)
    result, imported = _open(site, tmp_path)
    assert result == "OK vfs"
    assert "stevedore" in imported
    assert json.loads(index.read_text())["plugins"]["cs_core.graphdrivers"]
    assert _open(site, tmp_path) == ("OK vfs", [])


def test_conflicts_are_found_from_the_index(site: Path, tmp_path: Path) -> None:
    make_dist(
        site, "cs-fake-dup", "cs_core.graphdrivers", {"vfs": "cs_fake_dup"}, {"cs_fake_dup": "from cs_driver_vfs import cs_graphdrivers\n"}
    )
    _age(site)
    cold, _imported = _prime(site, tmp_path)
    warm, imported = _open(site, tmp_path)
    assert imported == []
    assert warm == cold
    assert warm.startswith("ERR") and "cs-driver-vfs" in warm and "cs-fake-dup" in warm, warm


def test_broken_plugin_is_named_from_the_index(site: Path, tmp_path: Path) -> None:
    make_dist(site, "cs-fake-broken", "cs_core.graphdrivers", {"broken": "cs_fake_broken"}, {"cs_fake_broken": "raise ImportError('boom')\n"})
    _age(site)
    cold, _imported = _prime(site, tmp_path, "broken")
    warm, imported = _open(site, tmp_path, "broken")
    assert imported == []
    assert warm == cold
    assert "cs-fake-broken" in warm and "boom" in warm, warm


def test_unknown_driver_lists_installed_ones_from_the_index(site: Path, tmp_path: Path) -> None:
    """The error is Go's exact text; the debug log names the installed drivers, read from the index."""
    cold, _imported = _prime(site, tmp_path, "bogus")
    warm, imported = _open(site, tmp_path, "bogus")
    assert imported == []
    assert warm == cold == f"ERR failed to GetDriver graph bogus {tmp_path / 'g'}: driver not supported"
    debug = "import logging, sys\nlogging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='LOG %(message)s')\n"
    out = _run(site, tmp_path, debug + OPEN_VFS.format(g=str(tmp_path / "g"), r=str(tmp_path / "r"), d="bogus"))
    log_line = next(line for line in out.splitlines() if line.startswith("LOG graph driver 'bogus'"))
    assert "installed: " in log_line and "vfs" in log_line and "overlay" in log_line, out
    assert out.splitlines()[-1] == "IMPORTED []"


def test_unwritable_cache_directory_is_skipped(site: Path, tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the cache directory would be\n")
    for _ in range(2):
        result, imported = _open(site, tmp_path)
        assert result == "OK vfs"
        assert "stevedore" in imported


def test_a_distribution_installed_twice_counts_once(tmp_path: Path) -> None:
    """Like importlib.metadata, only the first copy on sys.path counts: no conflict, its module is used."""
    first, second = tmp_path / "site1", tmp_path / "site2"
    for site, module in ((first, "cs_fake_twice_a"), (second, "cs_fake_twice_b")):
        site.mkdir()
        make_dist(site, "cs-fake-twice", "cs_core.graphdrivers", {"twice": module}, {module: LATE_MODULE.replace("late", "twice")})
        _age(site)
    code = OPEN_VFS.format(g=str(tmp_path / "g"), r=str(tmp_path / "r"), d="twice") + (
        "print(sorted(m for m in sys.modules if m.startswith('cs_fake_twice')))\n"
    )
    cold = _until_indexed(tmp_path, lambda: _run(first, tmp_path, code, (second,)).splitlines())
    warm = _run(first, tmp_path, code, (second,)).splitlines()
    assert cold[0] == warm[0] == "OK twice", (cold, warm)
    assert cold[-1] == warm[-1] == "['cs_fake_twice_a']"
    assert "stevedore" in cold[1] and warm[1] == "IMPORTED []", (cold, warm)
