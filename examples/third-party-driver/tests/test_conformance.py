"""The example driver passes the core's conformance kit (what every third-party driver should run)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cs_driver_snapshotdir import plugin  # noqa: E402
from cs_driver_snapshotdir.driver import SnapshotDirDriver  # noqa: E402

from cs_core.driver import DriverOptions  # noqa: E402
from cs_core.testing import DriverConformance  # noqa: E402


class TestSnapshotDirConformance(DriverConformance):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> Iterator[SnapshotDirDriver]:
        options = DriverOptions(
            name="snapshotdir",
            home=str(tmp_path / "g" / "snapshotdir"),
            run_home=str(tmp_path / "r" / "snapshotdir"),
            graph_root=str(tmp_path / "g"),
            run_root=str(tmp_path / "r"),
        )
        yield SnapshotDirDriver(options)


def test_registration_spec() -> None:
    (spec,) = plugin.cs_graphdrivers()
    assert spec.name == "snapshotdir" and callable(spec.factory)
