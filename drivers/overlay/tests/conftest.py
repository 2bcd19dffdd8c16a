"""Fixtures of the overlay driver tests: real mounts, always cleaned up."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cs_core.driver import DriverOptions
from cs_driver_overlay.driver import OverlayDriver

# The helper module sits beside this file; with --import-mode=importlib the test directory is
# not on sys.path, so make it importable for the test modules (unique name: overlay_testlib).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from overlay_testlib import DriverFactory, unmount_all_under  # noqa: E402


@pytest.fixture(autouse=True)
def mount_guard(tmp_path: Path) -> Iterator[None]:
    """Whatever a test mounted under its tmp dir is unmounted afterwards, even on failure."""
    try:
        yield
    finally:
        unmount_all_under(str(tmp_path))


@pytest.fixture
def make_driver(tmp_path: Path) -> Iterator[DriverFactory]:
    """``make_driver(*options, graph=..., run=...)`` builds a driver on a scratch root."""
    drivers: list[OverlayDriver] = []

    def factory(*options: str, graph: str | None = None, run: str | None = None) -> OverlayDriver:
        graph_root = graph or str(tmp_path / "graph")
        run_root = run or str(tmp_path / "run")
        drv = OverlayDriver(
            DriverOptions(
                name="overlay",
                home=os.path.join(graph_root, "overlay"),
                run_home=os.path.join(run_root, "overlay"),
                graph_root=graph_root,
                run_root=run_root,
                options=list(options),
            )
        )
        drivers.append(drv)
        return drv

    yield factory
    for drv in drivers:
        drv.cleanup()


@pytest.fixture
def driver(make_driver: DriverFactory) -> OverlayDriver:
    """A driver with default options on a scratch root."""
    return make_driver()
