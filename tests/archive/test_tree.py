"""Tar of a tree, changes, exported changes, chown by maps, tree copy and disk usage."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from cs_core.archive import (
    changes_dirs,
    changes_size,
    chown_by_maps,
    copy_tree,
    disk_usage,
    export_changes,
    extract_layer,
    write_tree_tar,
)
from cs_core.idmap import IDMap
from cs_core.records import Change


def _write(path: str, data: bytes = b"x", mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


@pytest.fixture
def tree(tmp_path: object) -> str:
    root = os.path.join(str(tmp_path), "tree")
    os.mkdir(root)
    _write(os.path.join(root, "dir1/a"), b"a\n")
    _write(os.path.join(root, "file1"), b"file1\n")
    os.setxattr(os.path.join(root, "file1"), "user.foo", b"bar")
    os.link(os.path.join(root, "file1"), os.path.join(root, "hardlink1"))
    os.symlink("file1", os.path.join(root, "sym1"))
    os.mkfifo(os.path.join(root, "fifo1"))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(1_600_000_000_500_000_000, 1_600_000_000_500_000_000), follow_symlinks=False)
    return root


def test_write_tree_tar_layout(tree: str) -> None:
    out = io.BytesIO()
    write_tree_tar(out, tree, ((), ()))
    data = out.getvalue()
    assert data.endswith(bytes(1024)) and len(data) % 10240 != 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names == ["dir1", "dir1/a", "fifo1", "file1", "hardlink1", "sym1"]
    raw_names = [m.name for m in members]  # tarfile strips the trailing slash; check raw bytes
    assert b"dir1/\x00" in data[:100]
    assert raw_names
    by = {m.name: m for m in members}
    assert by["dir1"].mode == 0o40755 and by["file1"].mode == 0o100644
    assert by["hardlink1"].type == tarfile.LNKTYPE and by["hardlink1"].linkname == "file1"
    assert by["file1"].pax_headers["SCHILY.xattr.user.foo"] == "bar"
    assert by["file1"].mtime == 1_600_000_000
    assert by["sym1"].linkname == "file1" and by["fifo1"].type == tarfile.FIFOTYPE
    assert by["dir1/a"].uname == "" and b"ustar\x0000" in data[257:265]
    assert b"PaxHeaders.0/file1" in data


def test_write_tree_tar_maps_owner_to_container(tree: str) -> None:
    os.chown(os.path.join(tree, "dir1/a"), 100005, 200007)
    out = io.BytesIO()
    write_tree_tar(out, tree, ((IDMap(0, 100000, 65536),), (IDMap(0, 200000, 65536),)))
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        names = {m.name: (m.uid, m.gid) for m in tf.getmembers()}
    assert names["dir1/a"] == (5, 7)
    assert "file1" not in names  # root-owned (0) host files cannot be mapped: skipped


def test_tree_tar_round_trip_through_extract(tree: str, tmp_path: object) -> None:
    out = io.BytesIO()
    write_tree_tar(out, tree)
    dest = os.path.join(str(tmp_path), "copy")
    os.mkdir(dest)
    extract_layer(dest, io.BytesIO(out.getvalue()))
    assert changes_dirs(dest, ((), ()), tree, ((), ())) == []


def test_changes_add_modify_delete(tmp_path: object) -> None:
    base = str(tmp_path)
    old, new = os.path.join(base, "old"), os.path.join(base, "new")
    for p in ("d/x", "d/y", "e/z", "f", "same"):
        _write(os.path.join(old, p), p.encode())
    copy_tree(old, new)
    os.remove(os.path.join(new, "d/x"))
    os.remove(os.path.join(new, "d/y"))
    _write(os.path.join(new, "d/n"), b"n")
    import shutil

    shutil.rmtree(os.path.join(new, "e"))
    os.remove(os.path.join(new, "f"))
    _write(os.path.join(new, "g/h"), b"h")
    os.link(os.path.join(new, "g/h"), os.path.join(new, "hl"))
    changes = changes_dirs(new, ((), ()), old, ((), ()))
    got = {(c.path, c.kind_name) for c in changes}
    assert got == {("/d", "Modify"), ("/d/n", "Add"), ("/d/x", "Delete"), ("/d/y", "Delete"), ("/e", "Delete"),
                   ("/f", "Delete"), ("/g", "Add"), ("/g/h", "Add"), ("/hl", "Add")}
    paths = [c.path for c in changes]
    assert paths.index("/d") < paths.index("/d/n")
    assert changes_size(new, changes) == 2  # d/n + g/h; hl shares g/h's inode
    out = io.BytesIO()
    export_changes(out, new, changes)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert set(members) == {"d", "d/n", "d/.wh.x", "d/.wh.y", ".wh.e", ".wh.f", "g", "g/h", "hl"}
    assert members[".wh.f"].mode == 0 and members[".wh.f"].size == 0
    assert members["hl"].type == tarfile.LNKTYPE and members["hl"].linkname == "g/h"


def test_changes_content_and_metadata(tmp_path: object) -> None:
    base = str(tmp_path)
    old, new = os.path.join(base, "old"), os.path.join(base, "new")
    for p in ("m", "o", "x", "c"):
        _write(os.path.join(old, p), b"1")
    copy_tree(old, new)
    os.chmod(os.path.join(new, "m"), 0o600)
    os.chown(os.path.join(new, "o"), 5, 5)
    os.setxattr(os.path.join(new, "x"), "user.k", b"v")
    _write(os.path.join(new, "c"), b"22")
    got = sorted((c.path, c.kind) for c in changes_dirs(new, ((), ()), old, ((), ())))
    assert got == [("/c", Change.MODIFY), ("/m", Change.MODIFY), ("/o", Change.MODIFY), ("/x", Change.MODIFY)]
    assert changes_dirs(new, ((), ()), None, ((), ()))[0].kind == Change.ADD


def test_chown_by_maps(tree: str) -> None:
    os.chmod(os.path.join(tree, "dir1/a"), 0o4755)
    os.chown(os.path.join(tree, "dir1/a"), 5, 5)
    os.chmod(os.path.join(tree, "dir1/a"), 0o4755)
    chown_by_maps(tree, ((), ()), ((IDMap(0, 100000, 65536),), (IDMap(0, 100000, 65536),)))
    st = os.lstat(os.path.join(tree, "dir1/a"))
    assert (st.st_uid, st.st_gid) == (100005, 100005) and stat.S_IMODE(st.st_mode) == 0o4755
    assert os.lstat(os.path.join(tree, "sym1")).st_uid == 100000
    assert os.lstat(os.path.join(tree, "file1")).st_ino == os.lstat(os.path.join(tree, "hardlink1")).st_ino
    chown_by_maps(tree, ((IDMap(0, 100000, 65536),), (IDMap(0, 100000, 65536),)), ((), ()))
    assert os.lstat(os.path.join(tree, "dir1/a")).st_uid == 5


def test_chown_by_maps_restores_broken_hard_links(tree: str) -> None:
    os.remove(os.path.join(tree, "hardlink1"))
    import shutil

    shutil.copy2(os.path.join(tree, "file1"), os.path.join(tree, "hardlink1"))
    # same content but a different inode: nothing to restore (different inodes are different files)
    chown_by_maps(tree, ((), ()), ((IDMap(0, 1000, 65536),), (IDMap(0, 1000, 65536),)))
    assert os.lstat(os.path.join(tree, "file1")).st_uid == 1000


def test_copy_tree_preserves_everything(tree: str, tmp_path: object) -> None:
    dst = os.path.join(str(tmp_path), "dst")
    os.mknod(os.path.join(tree, "null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.utime(tree, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    copy_tree(tree, dst)
    assert changes_dirs(dst, ((), ()), tree, ((), ())) == []
    assert os.lstat(os.path.join(dst, "file1")).st_ino == os.lstat(os.path.join(dst, "hardlink1")).st_ino
    assert os.getxattr(os.path.join(dst, "file1"), "user.foo") == b"bar"
    assert os.lstat(os.path.join(dst, "null")).st_rdev == os.makedev(1, 3)
    assert os.lstat(os.path.join(dst, "dir1")).st_mtime_ns == 1_600_000_000_500_000_000
    assert os.lstat(dst).st_mtime_ns == 1_600_000_000_123_456_789


def test_disk_usage(tree: str) -> None:
    size, inodes = disk_usage(tree)
    assert size == 2 + 6 + len("file1")  # dir1/a, file1 (hard link once), symlink target length
    assert inodes == 6  # root, dir1, dir1/a, file1=hardlink1, sym1, fifo1
