"""Helpers shared by the overlay driver tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import pytest

from cs_driver_overlay import syscalls
from cs_driver_overlay.driver import OverlayDriver

DriverFactory = Callable[..., OverlayDriver]


def _has_overlay() -> bool:
    try:
        with open("/proc/filesystems", encoding="ascii") as fh:
            return any(line.split()[-1:] == ["overlay"] for line in fh)
    except OSError:
        return False


requires_root_overlay = pytest.mark.skipif(
    os.geteuid() != 0 or not (_has_overlay() or os.path.isdir("/sys/module/overlay")),
    reason="kernel overlay mounts need root and overlayfs support",
)


def unmount_all_under(path: str) -> list[str]:
    """Unmount every mount point below (or at) ``path``, deepest first; returns what it unmounted."""
    real = os.path.realpath(path)
    done: list[str] = []
    for _ in range(5):
        entries = [(mp, fs) for mp, fs in reversed(syscalls.mount_points()) if mp == real or mp.startswith(real + "/")]
        if not entries:
            break
        for mount_point, fstype in entries:
            if fstype.startswith("fuse"):
                for helper in ("fusermount3", "fusermount"):
                    if shutil.which(helper):
                        subprocess.run([helper, "-u", "-z", mount_point], capture_output=True, check=False)
                        break
            try:
                syscalls.umount(mount_point, syscalls.MNT_DETACH)
            except OSError:
                pass
            done.append(mount_point)
    return done


def overlay_mounts_under(path: str) -> list[str]:
    """Overlay (or fuse) mount points below ``path``."""
    real = os.path.realpath(path) + "/"
    return [
        mp for mp, fs in syscalls.mount_points() if mp.startswith(real) and (fs == "overlay" or fs.startswith("fuse"))
    ]
