"""Fixtures: loop-mounted btrfs file systems (always unmounted and detached) and drivers on them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cs_core.driver import DriverOptions
from cs_driver_btrfs.driver import BtrfsDriver
from cs_driver_btrfs.loopback import LoopUnavailable, loop_btrfs


def _btrfs(workdir: Path) -> Iterator[Path]:
    try:
        with loop_btrfs(workdir) as mnt:
            yield mnt
    except LoopUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def btrfs_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One loop-mounted btrfs shared by the session (quotas are never enabled on it)."""
    yield from _btrfs(tmp_path_factory.mktemp("btrfs"))


@pytest.fixture
def quota_btrfs(tmp_path: Path) -> Iterator[Path]:
    """A private loop-mounted btrfs for tests that enable quotas."""
    yield from _btrfs(tmp_path / "quota")


def make_options(graph_root: Path, run_root: Path, options: list[str] | None = None) -> DriverOptions:
    """The options a store would give the btrfs driver for this graph root."""
    return DriverOptions(
        name="btrfs",
        home=str(graph_root / "btrfs"),
        run_home=str(run_root / "btrfs"),
        graph_root=str(graph_root),
        run_root=str(run_root),
        options=list(options or []),
    )


@pytest.fixture
def driver_options() -> Callable[..., DriverOptions]:
    """:func:`make_options`, as a fixture."""
    return make_options


@pytest.fixture
def make_driver(btrfs_mount: Path, tmp_path: Path) -> Iterator[Callable[..., BtrfsDriver]]:
    """Factory of drivers on fresh graph roots of the session btrfs; cleaned up after the test."""
    made: list[BtrfsDriver] = []

    def make(options: list[str] | None = None, mount: Path | None = None) -> BtrfsDriver:
        graph_root = (mount or btrfs_mount) / f"g-{uuid.uuid4().hex[:12]}"
        graph_root.mkdir()
        drv = BtrfsDriver(make_options(graph_root, tmp_path / "run", options))
        made.append(drv)
        return drv

    yield make
    for drv in made:
        for layer in drv.list_layers():
            try:
                drv.remove(layer)
            except Exception:  # noqa: BLE001 - best effort, the file system goes away anyway
                pass
        drv.cleanup()


@pytest.fixture
def driver(make_driver: Callable[..., BtrfsDriver]) -> BtrfsDriver:
    """A btrfs driver on a scratch graph root."""
    return make_driver()
