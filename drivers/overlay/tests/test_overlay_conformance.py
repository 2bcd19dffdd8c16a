"""The core's driver conformance kit, run against the overlay driver (real mounts)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from overlay_testlib import DriverFactory, requires_root_overlay

from cs_core.testing import DriverConformance
from cs_driver_overlay.driver import OverlayDriver

pytestmark = requires_root_overlay


class TestOverlayConformance(DriverConformance):
    """Every conformance test, on kernel overlayfs."""

    @pytest.fixture
    def driver(self, make_driver: DriverFactory) -> Iterator[OverlayDriver]:
        yield make_driver()
