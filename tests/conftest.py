"""Shared fixtures: scratch stores on every driver, our CLI and the Go CLI as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cs_testlib import CLI, DRIVERS, GO_CLI, OUR_CLI, clean_env, unmount_below


@pytest.fixture(scope="session")
def btrfs_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loop-mounted btrfs shared by the session; always unmounted and detached."""
    from cs_driver_btrfs.loopback import LoopUnavailable, loop_btrfs

    try:
        with loop_btrfs(tmp_path_factory.mktemp("btrfs"), size="2G") as mnt:
            yield mnt
    except LoopUnavailable as exc:
        pytest.skip(f"no loop-mounted btrfs here: {exc}")


@pytest.fixture(params=DRIVERS)
def driver_name(request: pytest.FixtureRequest) -> str:
    """The graph driver an end-to-end test runs on (every driver in turn)."""
    name: str = request.param
    if name == "overlay" and os.geteuid() != 0:
        pytest.skip("kernel overlay mounts need root")
    return name


@pytest.fixture
def store_dirs(tmp_path: Path, driver_name: str, request: pytest.FixtureRequest) -> Iterator[tuple[Path, Path]]:
    """Graph and run roots for one test (the graph root on btrfs for the btrfs driver)."""
    base = tmp_path
    if driver_name == "btrfs":
        base = request.getfixturevalue("btrfs_root") / uuid.uuid4().hex[:12]
        base.mkdir()
    graph, run = base / "graph", tmp_path / "run"
    try:
        yield graph, run
    finally:
        unmount_below(graph)
        unmount_below(run)
        if driver_name == "btrfs":
            subprocess.run(
                [sys.executable, "-m", "cs_core.cli", "--graph", str(graph), "--run", str(run), "-s", "btrfs", "wipe"],
                capture_output=True,
                env=clean_env(tmp_path),
            )
            unmount_below(graph)


@pytest.fixture
def cli(tmp_path: Path, store_dirs: tuple[Path, Path], driver_name: str) -> CLI:
    """Our CLI on a scratch store of the driver under test."""
    graph, run = store_dirs
    return CLI(OUR_CLI, graph, run, driver_name, clean_env(tmp_path))


@pytest.fixture
def go_cli(tmp_path: Path, store_dirs: tuple[Path, Path], driver_name: str) -> CLI:
    """The Go CLI from Debian on the same scratch store as :func:`cli`."""
    if not GO_CLI:
        pytest.skip("the Go containers-storage CLI is not installed (apt-get install containers-storage)")
    graph, run = store_dirs
    return CLI([GO_CLI], graph, run, driver_name, clean_env(tmp_path))
