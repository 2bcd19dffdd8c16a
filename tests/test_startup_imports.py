"""What a warm start of the CLI imports: the common commands need no plugin discovery, no tar
engine, no TOML parser (each of those costs milliseconds on every call).

Behaviour tests, not timings: the CLI runs as its console script does, and reports the modules
it imported (``sys.modules`` at exit).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cs_testlib import OUR_CLI, clean_env, unmount_below

#: Never needed by layers/mount/unmount once the caches are warm.
NOT_AT_START = (
    "stevedore",
    "importlib.metadata",
    "tarfile",
    "tomllib",
    "subprocess",
    "shutil",
    "tempfile",
    "hashlib",
    "secrets",
    "zipfile",
    "email",
    "cs_core.archive",
)

#: ``containers-storage`` as its console script runs it, writing ``sys.modules`` at exit to $CS_MODULES.
REPORTING_CLI = [
    sys.executable,
    "-c",
    "import atexit, os, sys\n"
    "atexit.register(lambda: open(os.environ['CS_MODULES'], 'w').write('\\n'.join(sorted(sys.modules))))\n"
    "sys.argv[0] = 'containers-storage'\n"
    "from cs_core.cli.main import main\n"
    "main()\n",
]


def _env(tmp: Path) -> dict[str, str]:
    env = clean_env(tmp)
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return env


def _imports(args: list[str], env: dict[str, str], tmp: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI with ``args``; the result and the modules it imported."""
    report = tmp / "modules.txt"
    res = subprocess.run(
        [*REPORTING_CLI, *args], capture_output=True, text=True, env={**env, "CS_MODULES": str(report)}, timeout=120
    )
    return res, set(report.read_text().split())


def _warm_up(argv: list[str], env: dict[str, str], cache: Path) -> None:
    """Run until the entry-point index exists (it is not written seconds after an install)."""
    for _ in range(4):
        subprocess.run(argv, capture_output=True, env=env, timeout=120, check=True)
        if list(cache.glob("cs-core/entry-points-*.json")):
            return
        time.sleep(2.5)
    raise AssertionError("the entry-point index was never written")


@pytest.mark.parametrize("driver", ["vfs", "overlay"])
def test_common_commands_import_little(tmp_path: Path, driver: str) -> None:
    if driver == "overlay" and os.geteuid() != 0:
        pytest.skip("kernel overlay mounts need root")
    env = _env(tmp_path)
    graph, run = tmp_path / "graph", tmp_path / "run"
    store = ["--graph", str(graph), "--run", str(run), "-s", driver]
    base = [*OUR_CLI, *store]
    _warm_up([*base, "layers"], env, tmp_path / "cache")
    layer = subprocess.run([*base, "create-layer"], capture_output=True, text=True, env=env, check=True).stdout.split()[0]
    try:
        for args in (["layers"], ["mount", layer], ["unmount", layer]):
            res, modules = _imports([*store, *args], env, tmp_path)
            assert res.returncode == 0, res.stdout + res.stderr
            assert "cs_core.store" in modules, sorted(modules)
            unwanted = sorted(m for m in modules if m.split(".")[0] in NOT_AT_START or m in NOT_AT_START)
            assert unwanted == [], f"{args[0]} imported {unwanted}"
    finally:
        subprocess.run([*base, "unmount", "-f", layer], capture_output=True, env=env)
        unmount_below(graph)


def test_debug_still_logs_and_warm_start_stays_quiet(tmp_path: Path) -> None:
    env = _env(tmp_path)
    base = [*OUR_CLI, "--graph", str(tmp_path / "graph"), "--run", str(tmp_path / "run"), "-s", "vfs"]
    _warm_up([*base, "layers"], env, tmp_path / "cache")
    quiet = subprocess.run([*base, "layers"], capture_output=True, text=True, env=env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    loud = subprocess.run([*base, "--debug", "layers"], capture_output=True, text=True, env=env)
    assert loud.returncode == 0
    assert f'level=debug msg="Root: {tmp_path / "graph"}"' in loud.stderr
    assert 'level=debug msg="Driver Name: vfs"' in loud.stderr


LOAD_OPTIONS = """
import sys
from cs_core.config import load_options
print(load_options())
print("tomllib" in sys.modules)
"""


@pytest.mark.skipif(
    any(os.path.exists(p) for p in ("/etc/containers/storage.yaml", "/usr/share/containers/storage.yaml")),
    reason="a system storage.yaml would be read instead of storage.conf",
)
def test_storage_conf_is_parsed_once_while_unchanged(tmp_path: Path) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text(
        textwrap.dedent(
            """\
            [storage]
            driver = "overlay"
            graphroot = "/srv/g"
            runroot = "/srv/r"
            [storage.options]
            pull_options = {enable_partial_images = "false"}
            [storage.options.overlay]
            mountopt = "nodev"
            """
        )
    )
    # The parsed file is cached only once its time stamps are a couple of seconds old.
    time.sleep(max(0.0, conf.stat().st_ctime + 2.2 - time.time()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "CONTAINERS_"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"), CONTAINERS_STORAGE_CONF=str(conf))

    def load() -> list[str]:
        res = subprocess.run([sys.executable, "-c", LOAD_OPTIONS], capture_output=True, text=True, env=env, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout.splitlines()

    cold, warm = load(), load()
    assert cold[1] == "True" and warm[1] == "False"
    assert warm[0] == cold[0]
    assert "driver_options=['overlay.mountopt=nodev']" in warm[0] and "graph_root='/srv/g'" in warm[0]
    # An edit is seen at once (and parsed again).
    conf.write_text(conf.read_text().replace("/srv/g", "/srv/other"))
    edited = load()
    assert edited[1] == "True" and "graph_root='/srv/other'" in edited[0]
