"""Real overlay mounts: reference counting, read-only mounts, deep chains, recovery."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from overlay_testlib import DriverFactory, overlay_mounts_under, requires_root_overlay

from cs_core.driver import CreateOpts, MountOpts
from cs_core.errors import NotFoundError
from cs_driver_overlay import syscalls
from cs_driver_overlay.driver import OverlayDriver

pytestmark = requires_root_overlay


def _chain(driver: OverlayDriver, depth: int, prefix: str = "layer") -> list[str]:
    ids: list[str] = []
    parent = ""
    for n in range(depth):
        layer_id = f"{prefix}{n:03d}"
        driver.create(layer_id, parent, CreateOpts(), False)
        Path(driver.home, layer_id, "diff", f"f{n:03d}").write_text(str(n))
        ids.append(layer_id)
        parent = layer_id
    return ids


def test_get_put_reference_counting(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(), True)
    merged = os.path.join(driver.home, "base", "merged")
    first = driver.get("base", MountOpts())
    assert first == merged
    assert syscalls.statfs_type(merged) == syscalls.OVERLAY_MAGIC
    assert driver.get("base", MountOpts()) == merged
    assert overlay_mounts_under(driver.home) == [merged]  # mounted once
    driver.put("base")
    assert syscalls.statfs_type(merged) == syscalls.OVERLAY_MAGIC
    driver.put("base")
    assert overlay_mounts_under(driver.home) == []
    assert os.path.isdir(merged) and os.listdir(merged) == []  # merged kept (HEAD)


def test_rw_mount_writes_to_diff_and_whiteouts(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(), False)
    Path(driver.home, "base", "diff", "gone").write_text("x")
    Path(driver.home, "base", "diff", "keep").write_text("k")
    driver.create("top", "base", CreateOpts(), True)
    path = driver.get("top", MountOpts())
    try:
        assert sorted(os.listdir(path)) == ["gone", "keep"]
        os.unlink(os.path.join(path, "gone"))
        Path(path, "new").write_text("n")
    finally:
        driver.put("top")
    diff = Path(driver.home, "top", "diff")
    assert (diff / "new").read_text() == "n"
    st = os.lstat(diff / "gone")
    assert st.st_rdev == 0 and (st.st_mode & 0o170000) == 0o020000


def test_already_mounted_path_counts_as_one_reference(make_driver: DriverFactory) -> None:
    first = make_driver()
    first.create("base", "", CreateOpts(), False)
    merged = first.get("base", MountOpts())
    # a second driver instance (another "process") sees the existing mount
    second = make_driver()
    assert second.get("base", MountOpts()) == merged
    assert overlay_mounts_under(first.home) == [merged]
    second.put("base")
    second.put("base")  # the pre-existing mount counted as one reference: now unmounted
    assert overlay_mounts_under(first.home) == []


def test_read_only_mount(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(), False)
    Path(driver.home, "base", "diff", "f").write_text("data")
    path = driver.get("base", MountOpts(options=["ro"]))
    try:
        assert Path(path, "f").read_text() == "data"
        with pytest.raises(OSError) as info:
            Path(path, "g").write_text("no")
        assert info.value.errno == errno.EROFS
        line = [ln for ln in open("/proc/self/mountinfo", encoding="utf-8") if f" {path} " in ln][0]
        assert "upperdir" not in line
        assert f"lowerdir={driver.home}/base/diff:{driver.home}/base/empty" in line
    finally:
        driver.put("base")


def test_rw_mount_data_uses_short_links(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(), False)
    driver.create("top", "base", CreateOpts(), True)
    short = Path(driver.home, "base", "link").read_text()
    path = driver.get("top", MountOpts(options=["nodev"]))
    try:
        line = [ln for ln in open("/proc/self/mountinfo", encoding="utf-8") if f" {path} " in ln][0]
        assert f"lowerdir={driver.home}/l/{short}" in line
        assert f"upperdir={driver.home}/top/diff" in line and f"workdir={driver.home}/top/work" in line
        assert "nodev" in line.split(" - ")[0]
    finally:
        driver.put("top")


def test_get_of_missing_layer(driver: OverlayDriver) -> None:
    with pytest.raises(NotFoundError):
        driver.get("missing", MountOpts())


@pytest.mark.parametrize("depth", [150])
def test_deep_chain_beyond_page_size(driver: OverlayDriver, depth: int) -> None:
    ids = _chain(driver, depth)
    top = ids[-1]
    driver.create("container", top, CreateOpts(), True)
    for layer_id, options in (("container", []), (top, ["ro"])):
        path = driver.get(layer_id, MountOpts(options=options))
        try:
            names = sorted(os.listdir(path))
            assert names == [f"f{n:03d}" for n in range(depth)]
            assert Path(path, "f000").read_text() == "0"
        finally:
            driver.put(layer_id)
        assert overlay_mounts_under(driver.home) == []


def test_long_home_mounts_from_child_with_relative_lowers(make_driver: DriverFactory, tmp_path: Path) -> None:
    graph = tmp_path / ("g" * 200) / ("h" * 200)
    drv = make_driver(graph=str(graph))
    ids = _chain(drv, 40)
    drv.create("ctr", ids[-1], CreateOpts(), True)
    path = drv.get("ctr", MountOpts())
    try:
        assert len(os.listdir(path)) == 40
        line = [ln for ln in open("/proc/self/mountinfo", encoding="utf-8") if f" {path} " in ln][0]
        assert "lowerdir=l/" in line and "upperdir=ctr/diff" in line
        Path(path, "w").write_text("w")
    finally:
        drv.put("ctr")
    assert Path(drv.home, "ctr", "diff", "w").read_text() == "w"


def test_recovery_of_links_work_and_merged(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(), False)
    Path(driver.home, "base", "diff", "f").write_text("x")
    driver.create("top", "base", CreateOpts(), True)
    home = Path(driver.home)
    base_short = (home / "base" / "link").read_text()
    top_short = (home / "top" / "link").read_text()
    # lose every short link, the base's link file, the top's work and merged dirs
    for entry in os.listdir(home / "l"):
        os.unlink(home / "l" / entry)
    (home / "base" / "link").unlink()
    os.rmdir(home / "top" / "work")
    os.rmdir(home / "top" / "merged")
    # the base's link file cannot come back from l/ (both lost): give it back its link only
    os.symlink("../base/diff", home / "l" / base_short)
    path = driver.get("top", MountOpts())
    try:
        assert Path(path, "f").read_text() == "x"
    finally:
        driver.put("top")
    assert (home / "base" / "link").read_text() == base_short
    assert os.readlink(home / "l" / top_short) == "../top/diff"
    assert (home / "top" / "work").is_dir() and (home / "top" / "merged").is_dir()


def test_volatile_option(driver: OverlayDriver) -> None:
    if not driver.volatile_ok:
        pytest.skip("kernel overlay without volatile support")
    driver.create("base", "", CreateOpts(), True)
    path = driver.get("base", MountOpts(volatile=True))
    try:
        line = [ln for ln in open("/proc/self/mountinfo", encoding="utf-8") if f" {path} " in ln][0]
        assert "volatile" in line
    finally:
        driver.put("base")


def test_chain_of_50_timing(driver: OverlayDriver) -> None:
    """Mount/unmount a 50-deep chain; prints the measured figures (see the report)."""
    ids = _chain(driver, 50)
    driver.create("ctr", ids[-1], CreateOpts(), True)
    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        driver.get("ctr", MountOpts())
        driver.put("ctr")
    elapsed = (time.perf_counter() - start) / rounds
    print(f"50-deep chain: mount+unmount {elapsed * 1000:.2f} ms per cycle")
    assert elapsed < 2.0
