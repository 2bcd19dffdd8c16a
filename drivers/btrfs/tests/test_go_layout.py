"""The Go ``containers-storage`` CLI and this driver agree on the on-disk layout of btrfs layers.

Store-level interoperability (layers.json etc.) is tested by the core's suite; here only the
driver's part is compared: where a layer's subvolume lives, its inode and mode, and that each side
can use the other's subvolumes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cs_core.driver import CreateOpts, DriverOptions, MountOpts
from cs_driver_btrfs import fs
from cs_driver_btrfs.driver import BtrfsDriver

GO_CLI = shutil.which("containers-storage")

pytestmark = pytest.mark.skipif(GO_CLI is None, reason="the Go containers-storage CLI is not installed")


def go(graph: Path, run: Path, *args: str) -> str:
    assert GO_CLI is not None
    result = subprocess.run(
        [GO_CLI, "--graph", str(graph), "--run", str(run), "-s", "btrfs", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def layout(home: Path, layer_id: str) -> dict[str, object]:
    """What the layout comparison looks at, relative to the driver home."""
    path = home / "subvolumes" / layer_id
    st = os.lstat(path)
    return {
        "relative": os.path.relpath(path, home.parent),
        "inode": st.st_ino,
        "mode": stat.S_IMODE(st.st_mode),
        "is_dir": stat.S_ISDIR(st.st_mode),
        "home_mode": stat.S_IMODE(os.stat(home).st_mode),
        "subvolumes_mode": stat.S_IMODE(os.stat(home / "subvolumes").st_mode),
        "entries": sorted(os.listdir(path)),
    }


def test_go_created_layer_matches_ours_and_is_usable(
    btrfs_mount: Path, tmp_path: Path, driver_options: Callable[..., DriverOptions]
) -> None:
    go_graph = btrfs_mount / "go-graph"
    go_graph.mkdir()
    run = tmp_path / "run"
    go_layer = go(go_graph, run, "create-layer")
    assert len(go_layer) == 64

    our_graph = btrfs_mount / "our-graph"
    our_graph.mkdir()
    ours = BtrfsDriver(driver_options(our_graph, tmp_path / "our-run"))
    our_layer = secrets.token_hex(32)
    try:
        ours.create(our_layer, "", CreateOpts(), False)
        go_view = layout(go_graph / "btrfs", go_layer)
        our_view = layout(our_graph / "btrfs", our_layer)
        assert go_view["relative"] == f"btrfs/subvolumes/{go_layer}"
        assert go_view["inode"] == 256 and go_view["mode"] == 0o555
        assert {**go_view, "relative": None} == {**our_view, "relative": None}
        assert our_view["relative"] == f"btrfs/subvolumes/{our_layer}"
    finally:
        ours.cleanup()

    # Our driver opened on the Go store sees the Go layer and can build on it.
    on_go = BtrfsDriver(driver_options(go_graph, tmp_path / "our-run2"))
    try:
        assert fs.is_mount_point(str(go_graph / "btrfs"))
        assert on_go.exists(go_layer)
        assert on_go.list_layers() == [go_layer]
        path = on_go.get(go_layer, MountOpts(options=["ro"]))
        assert path == str(go_graph / "btrfs" / "subvolumes" / go_layer)
        on_go.put(go_layer)
        child = secrets.token_hex(32)
        on_go.create(child, go_layer, CreateOpts(), True)
        assert os.lstat(on_go.layer_dir(child)).st_ino == 256
        on_go.remove(child)
        on_go.remove(go_layer)
        assert on_go.list_layers() == []
    finally:
        on_go.cleanup()

