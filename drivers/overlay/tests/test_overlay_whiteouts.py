"""Whiteout conversion both ways and the native diff family (storage.md 9.2.1, 9.2.2, 10.4)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from overlay_testlib import requires_root_overlay

from cs_core.driver import ApplyDiffOpts, CreateOpts, MountOpts
from cs_core.records import Change
from cs_driver_overlay.driver import OverlayDriver
from cs_driver_overlay.native import native_changes, tree_size, tree_usage
from cs_driver_overlay.whiteouts import OverlayWhiteoutConverter

pytestmark = requires_root_overlay
NO_MAPS = ((), ())
OPAQUE = "trusted.overlay.opaque"


def _tar(entries: list[tuple[str, str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.type, info.mode, info.size = tarfile.REGTYPE, 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def _is_whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


@pytest.fixture
def base_and_child(driver: OverlayDriver) -> tuple[OverlayDriver, str, str]:
    """A base layer with d/{x,y}, e/z, f, keep; an empty child layer on it."""
    driver.create("base", "", CreateOpts(), False)
    size = driver.apply_diff(
        "base",
        "",
        ApplyDiffOpts(
            stream=io.BytesIO(
                _tar(
                    [
                        ("dir", "d", b""),
                        ("file", "d/x", b"x"),
                        ("file", "d/y", b"yy"),
                        ("dir", "e", b""),
                        ("file", "e/z", b"z"),
                        ("file", "f", b"ffff"),
                        ("file", "keep", b"k"),
                    ]
                )
            )
        ),
    )
    assert size == 1 + 2 + 1 + 4 + 1
    driver.create("child", "base", CreateOpts(), False)
    return driver, "base", "child"


def test_apply_converts_tar_whiteouts_to_devices_and_xattr(base_and_child: tuple[OverlayDriver, str, str]) -> None:
    driver, base, child = base_and_child
    tar = _tar(
        [
            ("dir", "d", b""),
            ("file", "d/.wh..wh..opq", b""),
            ("file", "d/n", b"new"),
            ("file", ".wh.e", b""),
            ("file", ".wh.f", b""),
        ]
    )
    size = driver.apply_diff(child, base, ApplyDiffOpts(stream=io.BytesIO(tar)))
    diff = Path(driver.home, child, "diff")
    assert size == 3  # the size of diff/ (devices count 0)
    assert _is_whiteout(diff / "e") and _is_whiteout(diff / "f")
    assert os.getxattr(diff / "d", OPAQUE) == b"y"
    assert not (diff / "d" / ".wh..wh..opq").exists() and not (diff / ".wh.e").exists()
    assert stat.S_IMODE(os.stat(diff).st_mode) == 0o555  # "./" of an existing dir is skipped
    path = driver.get(child, MountOpts(options=["ro"]))
    try:
        assert sorted(os.listdir(path)) == ["d", "keep"]
        assert os.listdir(Path(path, "d")) == ["n"]
    finally:
        driver.put(child)


def test_native_diff_gives_the_whiteout_members_back(base_and_child: tuple[OverlayDriver, str, str]) -> None:
    driver, base, child = base_and_child
    tar = _tar([("dir", "d", b""), ("file", "d/.wh..wh..opq", b""), ("file", "d/n", b"new"), ("file", ".wh.f", b"")])
    driver.apply_diff(child, base, ApplyDiffOpts(stream=io.BytesIO(tar)))
    out = io.BytesIO()
    driver.diff(child, NO_MAPS, base, NO_MAPS, "", out)
    members = _members(out.getvalue())
    assert list(members) == ["d", "d/.wh..wh..opq", "d/n", ".wh.f"]
    marker = members["d/.wh..wh..opq"]
    assert marker.isreg() and marker.size == 0 and marker.mtime == 0 and marker.mode == 0o755
    wh = members[".wh.f"]
    assert wh.isreg() and wh.mode == 0 and wh.size == 0
    assert not any("overlay" in key for key in members["d"].pax_headers)
    changes = driver.changes(child, NO_MAPS, base, NO_MAPS, "")
    assert changes == [Change("/d", 2), Change("/d/n", 1), Change("/f", 2)]
    assert driver.diff_size(child, NO_MAPS, base, NO_MAPS, "") == 3


def test_kernel_made_whiteouts_export(base_and_child: tuple[OverlayDriver, str, str]) -> None:
    driver, base, child = base_and_child
    path = driver.get(child, MountOpts())
    try:
        os.unlink(Path(path, "f"))
        for name in os.listdir(Path(path, "d")):
            os.unlink(Path(path, "d", name))
        os.rmdir(Path(path, "d"))
        os.mkdir(Path(path, "d"))
        Path(path, "keep").write_text("changed")
    finally:
        driver.put(child)
    out = io.BytesIO()
    driver.diff(child, NO_MAPS, base, NO_MAPS, "", out)
    members = _members(out.getvalue())
    assert ".wh.f" in members and "d/.wh..wh..opq" in members and "keep" in members
    kinds = {c.path: c.kind for c in driver.changes(child, NO_MAPS, base, NO_MAPS, "")}
    assert kinds == {"/d": 2, "/f": 2, "/keep": 0}


def test_opaque_marker_lower_scan_rules(tmp_path: Path) -> None:
    upper, lower1, lower2 = tmp_path / "u", tmp_path / "l1", tmp_path / "l2"
    dirs = (
        upper / "a",
        upper / "b",
        upper / "c",
        upper / "w" / "x",
        lower1,
        lower2 / "a",
        lower2 / "b",
        lower2 / "w" / "x",
    )
    for p in dirs:
        p.mkdir(parents=True)
    os.mknod(lower1 / "b", stat.S_IFCHR, 0)  # b is a whiteout in the nearer lower: no marker
    os.mknod(lower1 / "w", stat.S_IFCHR, 0)  # ancestor whiteout: no marker for w/x
    for name in ("a", "b", "c", "w/x"):
        os.setxattr(upper / name, OPAQUE, b"y")
    conv = OverlayWhiteoutConverter([str(lower1), str(lower2)])
    result = {}
    for name in ("a", "b", "c", "w/x"):
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        _, extra = conv.on_write(name, str(upper / name), os.lstat(upper / name), info)
        result[name] = [m.name for m in extra]
    assert result == {"a": ["a/.wh..wh..opq"], "b": [], "c": [], "w/x": []}


def test_on_read_with_safe_root(tmp_path: Path) -> None:
    from cs_core.archive import SafeRoot

    dest = tmp_path / "diff"
    (dest / "d").mkdir(parents=True)
    conv = OverlayWhiteoutConverter([])
    with SafeRoot(str(dest)) as root:
        info = tarfile.TarInfo("d/.wh.gone")
        info.uid, info.gid = 1234, 5678
        assert conv.on_read(root, "d/.wh.gone", info) is False
        assert conv.on_read(root, "d/.wh..wh..opq", tarfile.TarInfo("d/.wh..wh..opq")) is False
        assert conv.on_read(root, "d/plain", tarfile.TarInfo("d/plain")) is True
    st = os.lstat(dest / "d" / "gone")
    assert _is_whiteout(dest / "d" / "gone") and (st.st_uid, st.st_gid) == (1234, 5678)
    assert os.getxattr(dest / "d", OPAQUE) == b"y"
    assert sorted(os.listdir(dest / "d")) == ["gone"]


def test_native_changes_skip_unchanged_directories(tmp_path: Path) -> None:
    upper, lower = tmp_path / "u", tmp_path / "l"
    (lower / "dir").mkdir(parents=True)
    (upper / "dir").mkdir(parents=True)
    (upper / "dir" / "new").write_text("n")
    st = os.stat(lower / "dir")
    os.chmod(upper / "dir", stat.S_IMODE(st.st_mode))
    os.utime(upper / "dir", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert native_changes(str(upper), [str(lower)]) == [Change("/dir", 0), Change("/dir/new", 1)]
    (upper / "deep" / "er").mkdir(parents=True)
    os.mknod(upper / "deep" / "er" / "gone", stat.S_IFCHR, 0)
    got = native_changes(str(upper), [str(lower)])
    assert got[:3] == [Change("/deep", 1), Change("/deep/er", 1), Change("/deep/er/gone", 2)]
    assert tree_size(str(upper)) == 1


def test_naive_fallback_when_parent_is_not_the_lower(base_and_child: tuple[OverlayDriver, str, str]) -> None:
    driver, base, child = base_and_child
    path = driver.get(child, MountOpts())
    try:
        os.unlink(Path(path, "f"))
    finally:
        driver.put(child)
    assert not driver._use_native(child, "")
    # against no parent the naive diff is the whole merged tree
    out = io.BytesIO()
    driver.diff(child, NO_MAPS, "", NO_MAPS, "", out)
    names = set(_members(out.getvalue()))
    assert {"d", "d/x", "e/z", "keep"} <= names and "f" not in names and ".wh.f" not in names


def test_diff_getter_searches_lowers(base_and_child: tuple[OverlayDriver, str, str]) -> None:
    driver, base, child = base_and_child
    Path(driver.home, child, "diff", "own").write_text("o")
    getter = driver.diff_getter(child)
    assert getter is not None
    assert getter("own") == os.path.join(driver.home, child, "diff", "own")
    assert getter("./d/x") == os.path.join(driver.home, base, "diff", "d", "x")
    with pytest.raises(FileNotFoundError):
        getter("nope")


def test_tree_size_agrees_with_tree_usage(tmp_path: Path) -> None:
    root = tmp_path / "diff"
    (root / "d" / "e").mkdir(parents=True)
    (root / "f").write_bytes(b"x" * 100)
    os.link(root / "f", root / "d" / "hl")
    outside = tmp_path / "outside"
    outside.write_bytes(b"y" * 7)
    os.link(outside, root / "d" / "e" / "linked-out")
    os.symlink("f", root / "sym")
    os.mkfifo(root / "fifo")
    os.mknod(root / "gone", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    assert tree_size(str(root)) == tree_usage(str(root))[0] == 100 + 7 + 1
    assert tree_size(str(tmp_path / "missing")) == tree_usage(str(tmp_path / "missing"))[0] == 0
