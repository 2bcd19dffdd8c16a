"""Shifting through ID-mapped lowers (kernel ``mount_setattr(MOUNT_ATTR_IDMAP)``), real mounts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from overlay_testlib import DriverFactory

from cs_core.driver import CreateOpts, MountOpts
from cs_core.idmap import IDMap
from cs_driver_overlay import syscalls
from cs_driver_overlay.driver import OverlayDriver

MAPS = ((IDMap(0, 100000, 65536),), (IDMap(0, 200000, 65536),))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ID-mapped mounts need root")


def _shifting_driver(make_driver: DriverFactory) -> OverlayDriver:
    drv = make_driver()
    if not drv.idmapped_lowers:
        reason = Path(drv.run_home, "idmapped-lower-dir-false").read_text()
        pytest.skip(f"this kernel cannot use ID-mapped lowers: {reason}")
    return drv


def test_probe_is_cached_and_decides_shifting(make_driver: DriverFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = _shifting_driver(make_driver)
    assert Path(drv.run_home, "idmapped-lower-dir-true").exists()
    assert not [name for name in os.listdir(drv.home) if name.startswith("idmapped-check")]
    assert drv.supports_shifting(*MAPS)
    assert ("Supports shifting", "true") in drv.status()
    monkeypatch.setenv("_CONTAINERS_OVERLAY_DISABLE_IDMAP", "yes")
    assert not drv.supports_shifting(*MAPS)
    assert ("Supports shifting", "false") in drv.status()


def test_lowers_are_shifted_and_the_upper_is_not(make_driver: DriverFactory) -> None:
    drv = _shifting_driver(make_driver)
    drv.create("base", "", CreateOpts(), False)
    owned = Path(drv.home, "base", "diff", "f")
    owned.write_text("x")
    os.chown(owned, 5, 6)
    drv.create("mid", "base", CreateOpts(), False)
    drv.create("top", "mid", CreateOpts(), True)
    merged = drv.get("top", MountOpts(uidmap=MAPS[0], gidmap=MAPS[1]))
    try:
        st = os.stat(Path(merged, "f"))
        assert (st.st_uid, st.st_gid) == (100005, 200006)
        Path(merged, "new").write_text("y")
        assert os.stat(Path(drv.home, "top", "diff", "new")).st_uid == 0  # written by host root, unshifted
        data = next(line for line in Path("/proc/mounts").read_text().splitlines() if f" {merged} " in line)
        mapped = os.path.join(drv.home, "top", "mapped", "0")
        assert f"lowerdir={mapped}/l/" in data and f"upperdir={drv.home}/top/diff" in data
        assert not syscalls.mounts_under(os.path.join(drv.home, "top", "mapped"))
        # The lower itself is untouched on disk.
        assert (owned.stat().st_uid, owned.stat().st_gid) == (5, 6)
    finally:
        drv.put("top")
    assert not syscalls.mounts_under(os.path.join(drv.home, "top"))
    # Without maps (or with shifting disabled) the same layer mounts unshifted.
    merged = drv.get("top", MountOpts(uidmap=MAPS[0], gidmap=MAPS[1], disable_shifting=True))
    try:
        assert os.stat(Path(merged, "f")).st_uid == 5
    finally:
        drv.put("top")


def test_read_only_mount_shifts_its_own_diff(make_driver: DriverFactory) -> None:
    drv = _shifting_driver(make_driver)
    drv.create("base", "", CreateOpts(), False)
    Path(drv.home, "base", "diff", "f").write_text("x")
    merged = drv.get("base", MountOpts(options=["ro"], uidmap=MAPS[0], gidmap=MAPS[1]))
    try:
        assert os.stat(Path(merged, "f")).st_uid == 100000
    finally:
        drv.put("base")
    drv.remove("base")
    assert not Path(drv.home, "base").exists()
