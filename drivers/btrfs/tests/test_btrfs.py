"""btrfs-specific behaviour, checked on a real loop-mounted btrfs with btrfs-progs as witness."""

from __future__ import annotations

import errno
import os
import secrets
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cs_core.driver import CreateOpts, DriverOptions, MountOpts
from cs_core.errors import DriverNotSupported, InvalidOption, StorageError
from cs_driver_btrfs import fs, ioctl
from cs_driver_btrfs.driver import BtrfsDriver, probe
from cs_driver_btrfs.plugin import cs_graphdrivers

DriverMaker = Callable[..., BtrfsDriver]
OptionsMaker = Callable[..., DriverOptions]


def new_id() -> str:
    return secrets.token_hex(32)


def subvolume_paths(mount: Path) -> list[str]:
    """``btrfs subvolume list`` paths (relative to the file system's top)."""
    out = subprocess.run(["btrfs", "subvolume", "list", str(mount)], check=True, capture_output=True, text=True)
    return [line.split(" path ", 1)[1] for line in out.stdout.splitlines() if " path " in line]


def subvolume_show(path: str) -> dict[str, str]:
    out = subprocess.run(["btrfs", "subvolume", "show", path], check=True, capture_output=True, text=True)
    fields: dict[str, str] = {}
    for line in out.stdout.splitlines()[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def test_each_layer_is_a_subvolume_with_mode_0555(driver: BtrfsDriver, btrfs_mount: Path) -> None:
    layer = new_id()
    driver.create(layer, "", CreateOpts(), False)
    path = os.path.join(driver.home, "subvolumes", layer)
    st = os.lstat(path)
    assert st.st_ino == 256
    assert stat.S_IMODE(st.st_mode) == 0o555
    assert driver.get(layer, MountOpts()) == path
    rel = os.path.relpath(path, btrfs_mount)
    assert rel in subvolume_paths(btrfs_mount)
    assert stat.S_IMODE(os.stat(driver.home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(driver.home, "subvolumes")).st_mode) == 0o700


def test_child_is_a_snapshot_of_its_parent(driver: BtrfsDriver) -> None:
    parent, child = new_id(), new_id()
    driver.create(parent, "", CreateOpts(), False)
    with open(os.path.join(driver.get(parent, MountOpts()), "data"), "wb") as fh:
        fh.write(b"x" * 65536)
    driver.create(child, parent, CreateOpts(), True)
    parent_path, child_path = driver.layer_dir(parent), driver.layer_dir(child)
    assert os.lstat(child_path).st_ino == 256
    assert subvolume_show(child_path)["Parent UUID"] == subvolume_show(parent_path)["UUID"]
    fd_p = os.open(parent_path, os.O_RDONLY | os.O_DIRECTORY)
    fd_c = os.open(child_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert ioctl.subvolume_id(fd_p) != ioctl.subvolume_id(fd_c)
    finally:
        os.close(fd_p)
        os.close(fd_c)
    with open(os.path.join(child_path, "data"), "rb") as fh:
        assert fh.read() == b"x" * 65536


def test_remove_deletes_nested_subvolumes(driver: BtrfsDriver, btrfs_mount: Path) -> None:
    layer = new_id()
    driver.create(layer, "", CreateOpts(), False)
    path = driver.layer_dir(layer)
    subprocess.run(["btrfs", "subvolume", "create", f"{path}/nested"], check=True, capture_output=True)
    os.makedirs(f"{path}/dir/sub")
    subprocess.run(["btrfs", "subvolume", "create", f"{path}/dir/sub/deeper"], check=True, capture_output=True)
    subprocess.run(["btrfs", "subvolume", "create", f"{path}/nested/inner"], check=True, capture_output=True)
    rel = os.path.relpath(path, btrfs_mount)
    assert sum(1 for p in subvolume_paths(btrfs_mount) if p.startswith(rel)) == 4
    driver.remove(layer)
    assert not os.path.exists(path)
    assert not any(p.startswith(rel) for p in subvolume_paths(btrfs_mount))
    assert not driver.exists(layer)


def test_remove_missing_layer_is_an_error(driver: BtrfsDriver) -> None:
    with pytest.raises(StorageError, match="no such file or directory"):
        driver.remove(new_id())


def test_get_accepts_only_ro(driver: BtrfsDriver) -> None:
    layer = new_id()
    driver.create(layer, "", CreateOpts(), False)
    assert driver.get(layer, MountOpts(options=["ro"])) == driver.layer_dir(layer)
    with pytest.raises(InvalidOption, match="^btrfs driver does not support mount options$"):
        driver.get(layer, MountOpts(options=["nodev"]))


def test_list_layers(driver: BtrfsDriver) -> None:
    a, b = new_id(), new_id()
    driver.create(a, "", CreateOpts(), False)
    driver.create(b, a, CreateOpts(), False)
    assert sorted(driver.list_layers()) == sorted([a, b])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("btrfs.mountopt=nodev", "btrfs driver does not support mount options"),
        ("btrfs.size=1G", "unknown option btrfs.size"),
        ("btrfs.foo=bar", "unknown option btrfs.foo"),
        ("foo", "unable to parse key/value option: foo"),
        ("btrfs.min_space=lots", "invalid size: 'lots'"),
    ],
)
def test_driver_option_errors(make_driver: DriverMaker, option: str, message: str) -> None:
    with pytest.raises(InvalidOption) as info:
        make_driver([option])
    assert str(info.value) == message


def test_probe_rejects_a_home_not_on_btrfs(tmp_path: Path, driver_options: OptionsMaker) -> None:
    if fs.fs_magic(str(tmp_path)) == fs.BTRFS_MAGIC:
        pytest.skip("the temporary directory is itself on btrfs")
    options = driver_options(tmp_path / "g", tmp_path / "r")
    (tmp_path / "g").mkdir()
    expected = (
        f'"{tmp_path}/g/btrfs" is not on a btrfs filesystem: '
        "prerequisites for driver not satisfied (wrong filesystem?)"
    )
    with pytest.raises(DriverNotSupported) as info:
        probe(options)
    assert str(info.value) == expected
    with pytest.raises(DriverNotSupported):
        BtrfsDriver(options)
    assert not (tmp_path / "g" / "btrfs").exists()


def test_probe_accepts_btrfs(btrfs_mount: Path, tmp_path: Path, driver_options: OptionsMaker) -> None:
    probe(driver_options(btrfs_mount / "nonexistent-yet", tmp_path))


def test_plugin_registers_spec(btrfs_mount: Path, tmp_path: Path, driver_options: OptionsMaker) -> None:
    (spec,) = list(cs_graphdrivers())
    assert spec.name == "btrfs"
    assert spec.probe is not None
    graph = btrfs_mount / "plugin-graph"
    graph.mkdir()
    options = driver_options(graph, tmp_path)
    spec.probe(options)
    drv = spec.factory(options)
    try:
        assert isinstance(drv, BtrfsDriver)
        assert drv.name == "btrfs"
    finally:
        drv.cleanup()


def test_home_is_a_private_bind_mount_until_cleanup(btrfs_mount: Path, tmp_path: Path, driver_options: OptionsMaker) -> None:
    graph = btrfs_mount / "mount-graph"
    graph.mkdir()
    drv = BtrfsDriver(driver_options(graph, tmp_path))
    home = str(graph / "btrfs")
    try:
        assert fs.is_mount_point(home)
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            line = next(ln for ln in fh if ln.split()[4] == home)
        assert "shared:" not in line.split(" - ")[0]
        # A second driver on the same home leaves the existing mount alone.
        other = BtrfsDriver(driver_options(graph, tmp_path))
        other.cleanup()
        assert fs.is_mount_point(home)
    finally:
        drv.cleanup()
    assert not fs.is_mount_point(home)


def test_status_pairs_are_known_keys(driver: BtrfsDriver) -> None:
    assert {k for k, _ in driver.status()} <= {"Build Version", "Library Version"}


# ---- quotas (each on its own file system) ----------------------------------------------------
def _quota_driver(make_driver: DriverMaker, mount: Path, options: list[str] | None = None) -> BtrfsDriver:
    try:
        return make_driver(options, mount=mount)
    except StorageError as exc:
        if "failed to enable btrfs quota" in str(exc):
            pytest.skip(f"btrfs quotas cannot be enabled here: {exc}")
        raise


def test_size_option_limits_the_layer(make_driver: DriverMaker, quota_btrfs: Path) -> None:
    drv = _quota_driver(make_driver, quota_btrfs)
    layer = new_id()
    try:
        drv.create(layer, "", CreateOpts(storage_opt={"size": "10M"}), True)
    except StorageError as exc:
        if "failed to enable btrfs quota" in str(exc):
            pytest.skip(f"btrfs quotas cannot be enabled here: {exc}")
        raise
    assert drv.quota_enabled
    quota_file = Path(drv.home) / "quotas" / layer
    assert quota_file.read_text() == str(10 * 1024 * 1024)
    assert stat.S_IMODE(quota_file.stat().st_mode) == 0o644
    path = drv.get(layer, MountOpts())
    with pytest.raises(OSError) as info:
        with open(os.path.join(path, "big"), "wb") as fh:
            chunk = b"\1" * (1 << 20)
            for _ in range(20):
                fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
    assert info.value.errno == errno.EDQUOT
    drv.remove(layer)
    assert not quota_file.exists()
    assert not drv.exists(layer)


def test_min_space_enables_quota_and_bounds_size(make_driver: DriverMaker, quota_btrfs: Path) -> None:
    drv = _quota_driver(make_driver, quota_btrfs, ["btrfs.min_space=20M"])
    assert drv.quota_enabled
    fd = os.open(drv.home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert ioctl.quota_status_present(fd)
    finally:
        os.close(fd)
    with pytest.raises(InvalidOption, match="^btrfs: storage size cannot be less than 20.97MB$"):
        drv.create(new_id(), "", CreateOpts(storage_opt={"size": "10M"}), False)
    with pytest.raises(InvalidOption, match=r"^unknown option foo \(map\[foo:bar size:30M\]\)$"):
        drv.create(new_id(), "", CreateOpts(storage_opt={"size": "30M", "foo": "bar"}), False)


def test_quota_status_is_off_on_a_fresh_file_system(driver: BtrfsDriver) -> None:
    fd = os.open(driver.home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert not ioctl.quota_status_present(fd)
    finally:
        os.close(fd)
