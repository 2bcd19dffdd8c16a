"""The core's driver conformance kit, run against btrfs on a loop-mounted file system."""

from __future__ import annotations

from cs_core.testing import DriverConformance


class TestBtrfsConformance(DriverConformance):
    """Every conformance test, with the ``driver`` fixture from conftest.py."""
