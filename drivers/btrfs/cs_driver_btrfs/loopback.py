"""A throw-away btrfs on a loop device, for tests (this package's and the core's e2e suite).

``with loop_btrfs(workdir) as mnt:`` makes a sparse image in ``workdir``, formats it, mounts it
at ``workdir/mnt`` and, on exit, unmounts everything below that point (including bind mounts left
by drivers or by the Go CLI), detaches the loop device and deletes the image, even on failure.
Raises :class:`LoopUnavailable` (with the reason) where that cannot be done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cs_driver_btrfs.fs import mount_points


class LoopUnavailable(RuntimeError):
    """A loop-mounted btrfs cannot be made here; the message says why."""


def _mounts_under(path: str) -> list[str]:
    prefix = os.path.realpath(path)
    return [p for p in mount_points() if p == prefix or p.startswith(prefix + "/")]


def unmount_all(path: str) -> None:
    """Unmount every mount at or below ``path``, deepest first (lazily as a last resort)."""
    for attempt in range(10):
        points = _mounts_under(path)
        if not points:
            return
        command = ["umount"] if attempt < 5 else ["umount", "-l"]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run([*command, point], check=False, capture_output=True)


def detach_loops(image: str) -> None:
    """Detach every loop device still backed by ``image``."""
    out = subprocess.run(["losetup", "-j", image], check=False, capture_output=True, text=True).stdout
    for line in out.splitlines():
        device = line.split(":", 1)[0].strip()
        if device:
            subprocess.run(["losetup", "-d", device], check=False, capture_output=True)


def unavailable_reason() -> str | None:
    """Why a loop-mounted btrfs cannot be made here, or ``None``."""
    if os.geteuid() != 0:
        return "mounting a loop btrfs needs root"
    for tool in ("mkfs.btrfs", "mount", "umount", "losetup", "truncate"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@contextmanager
def loop_btrfs(workdir: Path, size: str = "1G") -> Iterator[Path]:
    """A fresh btrfs mounted at ``workdir/mnt``; always unmounted and detached on exit."""
    reason = unavailable_reason()
    if reason:
        raise LoopUnavailable(reason)
    image = workdir / "btrfs.img"
    mnt = workdir / "mnt"
    mnt.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["truncate", "-s", size, str(image)], check=True)
        made = subprocess.run(["mkfs.btrfs", "-q", "-f", str(image)], capture_output=True, text=True)
        if made.returncode != 0:
            raise LoopUnavailable(f"mkfs.btrfs failed: {made.stderr.strip()}")
        mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
        if mounted.returncode != 0:
            raise LoopUnavailable(f"cannot loop-mount btrfs here: {mounted.stderr.strip()}")
        yield mnt
    finally:
        unmount_all(str(mnt))
        detach_loops(str(image))
        image.unlink(missing_ok=True)
