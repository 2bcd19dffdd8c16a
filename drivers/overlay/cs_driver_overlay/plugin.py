"""Hook module of the overlay driver: registers ``overlay`` (alias ``overlay2``).

Importing this module is cheap: the driver implementation is imported by the factory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cs_core.driver import DriverOptions, GraphDriver, GraphDriverSpec
from cs_core.errors import DriverNotSupported

try:
    from cs_core import hookimpl
except ImportError:  # pragma: no cover - older core
    from cs_core.hookspecs import hookimpl


def _factory(options: DriverOptions) -> GraphDriver:
    from cs_driver_overlay.driver import OverlayDriver

    return OverlayDriver(options)


def _kernel_has_overlay() -> bool:
    try:
        with open("/proc/filesystems", encoding="ascii") as fh:
            if any(line.split()[-1:] == ["overlay"] for line in fh):
                return True
    except OSError:
        return False
    return os.path.isdir("/sys/module/overlay")


def _has_mount_program(options: DriverOptions) -> bool:
    import shutil

    return any("mount_program" in opt for opt in options.options) or bool(shutil.which("fuse-overlayfs"))


def _probe(options: DriverOptions) -> None:
    """Raise ``DriverNotSupported`` where neither kernel overlay nor fuse-overlayfs can work."""
    from cs_driver_overlay import syscalls

    parent = os.path.dirname(options.home.rstrip("/")) or "/"
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    backing = syscalls.fs_name(syscalls.statfs_type(parent))
    if os.geteuid() == 0 and _kernel_has_overlay() and backing not in syscalls.UNSUPPORTED_BACKING:
        return
    if _has_mount_program(options):
        return
    if backing in syscalls.UNSUPPORTED_BACKING:
        raise DriverNotSupported(
            f"'overlay' is not supported over {backing}, a mount_program is required: "
            "backing file system is unsupported for this graph driver"
        )
    raise DriverNotSupported(
        "'overlay' not found as a supported filesystem on this host. Please ensure kernel is new enough "
        "and has overlay support loaded.: driver not supported"
    )


@hookimpl
def cs_graphdrivers() -> Iterable[GraphDriverSpec]:
    """The overlay driver."""
    return [
        GraphDriverSpec(
            name="overlay",
            factory=_factory,
            probe=_probe,
            priority=10,
            capabilities=frozenset({"native-diff", "mount", "shifting"}),
            aliases=("overlay2",),
        )
    ]
