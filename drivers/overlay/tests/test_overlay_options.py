"""Option parsing (storage.md 9.2.6) with the Go error texts."""

from __future__ import annotations

from pathlib import Path

import pytest
from overlay_testlib import DriverFactory, requires_root_overlay

from cs_core.driver import CreateOpts
from cs_core.errors import InvalidOption, NotSupported
from cs_driver_overlay.options import parse_options, ram_in_bytes


def test_prefixes_and_values(tmp_path: Path) -> None:
    opts = parse_options(
        [
            "overlay.mountopt=nodev,noatime",
            "overlay2.force_mask=shared",
            ".ignore_chown_errors=true",
            "OVERLAY.Skip_Mount_Home = 1",
            "override_kernel_check=whatever",
            f"overlay.imagestore={tmp_path}",
        ]
    )
    assert opts.mount_options == "nodev,noatime"
    assert opts.force_mask == 0o755
    assert opts.ignore_chown_errors and opts.skip_mount_home
    assert opts.image_stores == [str(tmp_path)]
    assert parse_options(["force_mask=private"]).force_mask == 0o700
    assert parse_options(["force_mask=0750"]).force_mask == 0o750
    assert parse_options(["overlay.size=10G"]).quota_size == 10 << 30
    assert ram_in_bytes("512k") == 512 << 10


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("overlay.Bogus=1", "overlay: unknown option overlay.Bogus"),
        ("nokeyvalue", "unable to parse key/value option: nokeyvalue"),
        ("overlay.skip_mount_home=maybe", 'strconv.ParseBool: parsing "maybe": invalid syntax'),
        ("overlay.force_mask=9x", 'strconv.ParseInt: parsing "9x": invalid syntax'),
        ("overlay.inodes=-1", 'strconv.ParseUint: parsing "-1": invalid syntax'),
        ("overlay.size=lots", "invalid size: 'lots'"),
        (
            "overlay.imagestore=relative/path",
            'overlay: image path "relative/path" is not absolute.  Can not be relative',
        ),
        (
            "overlay.mount_program=/does/not/exist",
            'overlay: can\'t stat program "/does/not/exist": stat /does/not/exist: no such file or directory',
        ),
    ],
)
def test_option_errors(option: str, message: str) -> None:
    with pytest.raises(InvalidOption) as info:
        parse_options([option])
    assert str(info.value) == message


def test_imagestore_must_exist_and_be_a_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(InvalidOption, match=f"overlay: can't stat imageStore dir {missing}: "):
        parse_options([f"overlay.imagestore={missing}"])
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(InvalidOption) as info:
        parse_options([f".imagestore={afile}"])
    assert str(info.value) == f'overlay: image path "{afile}" must be a directory'


@requires_root_overlay
def test_size_needs_xfs(make_driver: DriverFactory) -> None:
    with pytest.raises(InvalidOption) as info:
        make_driver("overlay.size=1G")
    assert str(info.value).startswith(
        "storage option overlay.size and overlay.inodes only supported for backingFS XFS. Found "
    )


@requires_root_overlay
def test_create_storage_opt_errors(make_driver: DriverFactory) -> None:
    drv = make_driver()
    with pytest.raises(InvalidOption) as info:
        drv.create("l1", "", CreateOpts(storage_opt={"size": "1G"}), False)
    assert str(info.value) == "--storage-opt size is only supported for ReadWrite Layers"
    with pytest.raises(NotSupported) as info2:
        drv.create("l2", "", CreateOpts(storage_opt={"size": "1G"}), True)
    assert str(info2.value) == "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
    assert not drv.exists("l1") and not drv.exists("l2")


@requires_root_overlay
def test_force_mask_rw_needs_mount_program(make_driver: DriverFactory) -> None:
    drv = make_driver("overlay.force_mask=0700")
    with pytest.raises(InvalidOption) as info:
        drv.create("rw", "", CreateOpts(), True)
    assert str(info.value) == "overlay: force_mask option for writeable layers is only supported with a mount_program"
    drv.create("ro", "", CreateOpts(), False)
    import os

    diff = os.path.join(drv.home, "ro", "diff")
    assert os.stat(diff).st_mode & 0o777 == 0o700
    assert os.getxattr(diff, "user.containers.override_stat") == b"0:0:0555:dir"
