"""Conformance kits for third-party plugins (pytest, opt-in).

* :mod:`cs_core.testing.driver_conformance` — :class:`DriverConformance`, the tests every graph
  driver should pass, run against the real file system.
"""

from __future__ import annotations

from cs_core.testing.driver_conformance import DriverConformance

__all__ = ["DriverConformance"]
