"""Entry point of the btrfs driver: registers its :class:`~cs_core.driver.GraphDriverSpec`.

Kept light: the driver module is imported only when the factory or the probe is called.
"""

from __future__ import annotations

from collections.abc import Iterable

from cs_core.driver import DriverOptions, GraphDriver, GraphDriverSpec

try:
    from cs_core import hookimpl
except ImportError:  # pragma: no cover - older cs_core without the re-export
    from cs_core.hookspecs import hookimpl


def _factory(options: DriverOptions) -> GraphDriver:
    from cs_driver_btrfs.driver import BtrfsDriver

    return BtrfsDriver(options)


def _probe(options: DriverOptions) -> None:
    from cs_driver_btrfs.driver import probe

    probe(options)


@hookimpl
def cs_graphdrivers() -> Iterable[GraphDriverSpec]:
    """The ``btrfs`` driver (third in Go's default priority: overlay, aufs, btrfs, zfs, vfs)."""
    return [
        GraphDriverSpec(
            name="btrfs",
            factory=_factory,
            probe=_probe,
            priority=30,
            capabilities=frozenset({"quota", "snapshots"}),
        )
    ]
