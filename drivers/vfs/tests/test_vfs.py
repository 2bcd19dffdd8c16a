"""The vfs driver: the core's conformance kit plus vfs specifics (layout, options, copies)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cs_core.driver import CreateOpts, DriverOptions, MountOpts
from cs_core.errors import InvalidOption
from cs_core.testing import DriverConformance
from cs_driver_vfs.driver import VfsDriver


def make_options(tmp_path: Path, options: list[str] | None = None) -> DriverOptions:
    return DriverOptions(
        name="vfs",
        home=str(tmp_path / "g" / "vfs"),
        run_home=str(tmp_path / "r" / "vfs"),
        graph_root=str(tmp_path / "g"),
        run_root=str(tmp_path / "r"),
        options=list(options or []),
    )


class TestVfsConformance(DriverConformance):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> Iterator[VfsDriver]:
        yield VfsDriver(make_options(tmp_path))


def test_layout_and_copy_on_create(tmp_path: Path) -> None:
    driver = VfsDriver(make_options(tmp_path))
    driver.create("base", "", CreateOpts(), False)
    base = tmp_path / "g" / "vfs" / "dir" / "base"
    assert base.is_dir() and (base.stat().st_mode & 0o7777) == 0o555
    os.chmod(base, 0o755)
    (base / "f").write_text("x")
    os.link(base / "f", base / "hl")
    driver.create("child", "base", CreateOpts(), True)
    child = Path(driver.get("child", MountOpts()))
    assert child == tmp_path / "g" / "vfs" / "dir" / "child"
    assert (child / "f").read_text() == "x"
    assert (child / "f").stat().st_ino == (child / "hl").stat().st_ino != (base / "f").stat().st_ino
    assert driver.list_layers() == ["base", "child"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("vfs.mountopt=nodev", "vfs driver does not support mount options"),
        ("vfs.Bogus=1", "vfs driver does not support vfs.bogus options"),
        (".mountopt=x", "vfs driver does not support .mountopt options"),
        ("novalue", "unable to parse key/value option: novalue"),
        ("vfs.ignore_chown_errors=maybe", 'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ],
)
def test_option_errors(tmp_path: Path, option: str, message: str) -> None:
    with pytest.raises(InvalidOption) as info:
        VfsDriver(make_options(tmp_path, [option]))
    assert str(info.value) == message


def test_mount_options_and_storage_options_are_refused(tmp_path: Path) -> None:
    driver = VfsDriver(make_options(tmp_path, [".imagestore=/nonexistent", "vfs.ignore_chown_errors=true"]))
    assert driver.additional_image_stores() == ["/nonexistent"]
    with pytest.raises(InvalidOption, match="--storage-opt is not supported for vfs"):
        driver.create("x", "", CreateOpts(storage_opt={"size": "1G"}), True)
    driver.create("x", "", CreateOpts(), True)
    with pytest.raises(InvalidOption, match="vfs driver does not support mount options"):
        driver.get("x", MountOpts(options=["nodev"]))
    assert driver.get("x", MountOpts(options=["ro"])).endswith("/vfs/dir/x")
