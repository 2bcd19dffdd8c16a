"""The module the entry point names: registers the driver, imports nothing heavy."""

from __future__ import annotations

from collections.abc import Iterable

from cs_core import hookimpl
from cs_core.driver import DriverOptions, GraphDriver, GraphDriverSpec


def _factory(options: DriverOptions) -> GraphDriver:
    from cs_driver_snapshotdir.driver import SnapshotDirDriver

    return SnapshotDirDriver(options)


@hookimpl
def cs_graphdrivers() -> Iterable[GraphDriverSpec]:
    return [GraphDriverSpec(name="snapshotdir", factory=_factory, priority=2000, capabilities=frozenset({"naive-diff"}))]
