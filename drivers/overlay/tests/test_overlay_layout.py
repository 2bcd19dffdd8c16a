"""On-disk layout (storage.md 9.2) and interoperability with the Go CLI's overlay driver."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from overlay_testlib import DriverFactory, requires_root_overlay

from cs_core.driver import CreateOpts, MountOpts
from cs_core.idmap import IDMap
from cs_driver_overlay import syscalls
from cs_driver_overlay.driver import OverlayDriver

pytestmark = requires_root_overlay
SHORT_RE = re.compile(r"^[A-Z2-7]{26}$")
GO_CLI = shutil.which("containers-storage")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_init_creates_home_run_home_and_probe_cache(driver: OverlayDriver, tmp_path: Path) -> None:
    home = tmp_path / "graph" / "overlay"
    run = tmp_path / "run" / "overlay"
    assert _mode(home) == 0o700
    assert _mode(home / "l") == 0o755
    assert (home / ".has-mount-program").read_text() == "false"
    assert _mode(home / ".has-mount-program") == 0o600
    names = set(os.listdir(run))
    assert "overlay-true" in names
    assert "native-diff()-true" in names or "native-diff()-false" in names
    assert {"metacopy()-true", "metacopy()-false"} & names
    # the home is a private mount point
    assert syscalls.is_mount_point(str(home))
    info = [line for line in open("/proc/self/mountinfo", encoding="utf-8") if f" {home} " in line]
    assert info and "shared:" not in info[-1].split(" - ")[0]


def test_status_pairs_in_order(driver: OverlayDriver) -> None:
    keys = [k for k, _ in driver.status()]
    assert keys == [
        "Backing Filesystem",
        "Supports d_type",
        "Native Overlay Diff",
        "Using metacopy",
        "Supports shifting",
        "Supports volatile",
    ]
    values = dict(driver.status())
    assert values["Backing Filesystem"] == syscalls.fs_name(syscalls.statfs_type(os.path.dirname(driver.home)))
    assert values["Supports d_type"] == "true"


def test_cleanup_unmounts_home(make_driver: DriverFactory) -> None:
    drv = make_driver()
    assert syscalls.is_mount_point(drv.home)
    drv.cleanup()
    assert not syscalls.is_mount_point(drv.home)


def test_skip_mount_home(make_driver: DriverFactory) -> None:
    drv = make_driver("overlay.skip_mount_home=true")
    assert not syscalls.is_mount_point(drv.home)


def test_base_and_child_layout(driver: OverlayDriver) -> None:
    home = Path(driver.home)
    driver.create("base", "", CreateOpts(), False)
    driver.create("child", "base", CreateOpts(), True)
    base, child = home / "base", home / "child"
    assert _mode(base) == 0o700
    assert _mode(base / "diff") == 0o555 and _mode(child / "diff") == 0o555
    assert sorted(os.listdir(base)) == ["diff", "empty", "link", "merged", "work"]
    assert sorted(os.listdir(child)) == ["diff", "link", "lower", "merged", "work"]
    base_short = (base / "link").read_text()
    child_short = (child / "link").read_text()
    assert SHORT_RE.match(base_short) and SHORT_RE.match(child_short)
    assert _mode(base / "link") == 0o644
    assert os.readlink(home / "l" / base_short) == "../base/diff"
    assert os.readlink(home / "l" / child_short) == "../child/diff"
    assert (child / "lower").read_text() == f"l/{base_short}"
    driver.create("grandchild", "child", CreateOpts(), False)
    assert (home / "grandchild" / "lower").read_text() == f"l/{child_short}:l/{base_short}"
    assert driver.list_layers() == ["base", "child", "grandchild"]
    assert driver.exists("child") and not driver.exists("nope")


def test_child_diff_inherits_parent_mode_and_owner(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(uidmap=(IDMap(0, 1000, 65536),), gidmap=(IDMap(0, 2000, 65536),)), False)
    diff = Path(driver.home) / "base" / "diff"
    st = os.stat(diff)
    assert (st.st_uid, st.st_gid) == (1000, 2000)
    os.chmod(diff, 0o751)
    driver.create("child", "base", CreateOpts(), False)
    st = os.stat(Path(driver.home) / "child" / "diff")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 2000, 0o751)


def test_remove_deletes_dir_and_link(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(), False)
    short = (Path(driver.home) / "base" / "link").read_text()
    path = driver.get("base", MountOpts())
    assert os.path.ismount(path)
    driver.remove("base")
    assert not os.path.exists(Path(driver.home) / "base")
    assert not os.path.lexists(Path(driver.home) / "l" / short)
    assert not driver.exists("base")
    driver.remove("base")  # missing is fine


def test_metadata(driver: OverlayDriver) -> None:
    driver.create("base", "", CreateOpts(), False)
    driver.create("child", "base", CreateOpts(), False)
    home = driver.home
    assert driver.metadata("base") == {
        "WorkDir": f"{home}/base/work",
        "MergedDir": f"{home}/base/merged",
        "UpperDir": f"{home}/base/diff",
    }
    assert driver.metadata("child")["LowerDir"] == f"{home}/base/diff"


def _go(graph: Path, run: Path, *args: str) -> str:
    assert GO_CLI
    proc = subprocess.run(
        [GO_CLI, "--graph", str(graph), "--run", str(run), "-s", "overlay", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


@pytest.mark.skipif(GO_CLI is None, reason="the Go containers-storage CLI is not installed")
def test_interop_with_go_cli(make_driver: DriverFactory, tmp_path: Path) -> None:
    graph, run = tmp_path / "graph", tmp_path / "run"
    go_base = _go(graph, run, "create-layer")
    go_child = _go(graph, run, "create-layer", go_base)
    # Go's layout matches what our driver writes
    home = graph / "overlay"
    assert sorted(os.listdir(home / go_base)) == ["diff", "empty", "link", "merged", "work"]
    assert sorted(os.listdir(home / go_child)) == ["diff", "link", "lower", "merged", "work"]
    assert _mode(home / go_base / "diff") == 0o555
    drv = make_driver(graph=str(graph), run=str(run))
    # our driver mounts Go's layers and stacks its own on them
    path = drv.get(go_base, MountOpts())
    try:
        Path(path, "from-python").write_text("py")
    finally:
        drv.put(go_base)
    drv.create("pychild", go_child, CreateOpts(), False)
    assert (home / "pychild" / "lower").read_text() == (
        f"l/{(home / go_child / 'link').read_text()}:{(home / go_child / 'lower').read_text()}"
    )
    path = drv.get("pychild", MountOpts(options=["ro"]))
    try:
        assert Path(path, "from-python").read_text() == "py"
    finally:
        drv.put("pychild")
    # Go mounts a layer whose directory our driver (re)created
    drv.remove(go_child)
    drv.create(go_child, go_base, CreateOpts(), True)
    mounted = _go(graph, run, "mount", go_child)
    try:
        assert mounted == str(home / go_child / "merged")
        assert Path(mounted, "from-python").read_text() == "py"
        Path(mounted, "from-go").write_text("go")
    finally:
        _go(graph, run, "unmount", go_child)
    assert (home / go_child / "diff" / "from-go").read_text() == "go"
    assert go_base in drv.list_layers() and go_child in drv.list_layers()
