"""The ``mount_program`` option with fuse-overlayfs (real FUSE mounts)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from overlay_testlib import DriverFactory, overlay_mounts_under

from cs_core.driver import CreateOpts, MountOpts
from cs_core.idmap import IDMap
from cs_driver_overlay import syscalls

FUSE_OVERLAYFS = shutil.which("fuse-overlayfs") or "/usr/bin/fuse-overlayfs"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(FUSE_OVERLAYFS), reason="fuse-overlayfs is not installed"),
    pytest.mark.skipif(not os.access("/dev/fuse", os.R_OK | os.W_OK), reason="/dev/fuse is not available"),
    pytest.mark.skipif(not (shutil.which("fusermount3") or shutil.which("fusermount")), reason="no fusermount"),
]


def test_mount_program_layers(make_driver: DriverFactory, tmp_path: Path) -> None:
    drv = make_driver(f"overlay.mount_program={FUSE_OVERLAYFS}")
    status = dict(drv.status())
    assert status["Native Overlay Diff"] == "false"
    assert Path(drv.home, ".has-mount-program").read_text() == "true"
    drv.create("base", "", CreateOpts(), False)
    Path(drv.home, "base", "diff", "f").write_text("base")
    drv.create("top", "base", CreateOpts(), True)
    path = drv.get("top", MountOpts())
    try:
        assert syscalls.statfs_type(path) == syscalls.FUSE_MAGIC
        assert drv.get("top", MountOpts()) == path  # reference counted
        drv.put("top")
        assert Path(path, "f").read_text() == "base"
        Path(path, "g").write_text("top")
        os.unlink(Path(path, "f"))
    finally:
        drv.put("top")
    assert overlay_mounts_under(drv.home) == []
    assert Path(drv.home, "top", "diff", "g").read_text() == "top"
    assert Path(drv.home, "base", "diff", "f").exists()  # lower untouched
    # read-only mount of the child shows the deletion and the new file
    path = drv.get("top", MountOpts(options=["ro"]))
    try:
        assert sorted(os.listdir(path)) == ["g"]
        with pytest.raises(OSError):
            Path(path, "h").write_text("no")
    finally:
        drv.put("top")
    assert overlay_mounts_under(drv.home) == []


def test_mount_program_shifting(make_driver: DriverFactory) -> None:
    drv = make_driver(f"overlay.mount_program={FUSE_OVERLAYFS}")
    assert drv.supports_shifting((IDMap(0, 100000, 65536),), (IDMap(0, 100000, 65536),))
    assert not drv.supports_shifting((IDMap(0, 100000, 10), IDMap(20, 200000, 10)), ())
    drv.create("base", "", CreateOpts(), False)
    Path(drv.home, "base", "diff", "f").write_text("x")
    path = drv.get("base", MountOpts(uidmap=(IDMap(0, 100000, 65536),), gidmap=(IDMap(0, 100000, 65536),)))
    try:
        st = os.stat(Path(path, "f"))
        assert (st.st_uid, st.st_gid) == (100000, 100000)
    finally:
        drv.put("base")
