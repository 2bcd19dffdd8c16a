"""Layer extraction: whiteouts, opaque dirs, links, metadata, and chroot-equivalent safety."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator

import pytest

from cs_core.archive import SafeRoot, extract_layer, unpack
from cs_core.archive.saferoot import openat2_available
from cs_core.errors import ArchiveError, StorageError
from cs_core.idmap import IDMap

from .helpers import entry, make_tar

RESOLVERS = [pytest.param(False, id="walk")] + (
    [pytest.param(True, id="openat2")] if openat2_available() else []
)


@pytest.fixture(params=RESOLVERS)
def use_openat2(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _apply(dest: str, members: list[tuple[tarfile.TarInfo, bytes | None]], use_openat2: bool, **kw: object) -> int:
    return extract_layer(dest, io.BytesIO(make_tar(members, tarfile.PAX_FORMAT)), use_openat2=use_openat2, **kw)  # type: ignore[arg-type]


def _snapshot(path: str) -> dict[str, tuple[int, int, int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, st.st_nlink)
    return out


@pytest.fixture
def arena(tmp_path: object) -> Iterator[tuple[str, str]]:
    """(dest, outside) where outside holds a sentinel file that must never change."""
    base = str(tmp_path)
    dest = os.path.join(base, "layer")
    outside = os.path.join(base, "OUTSIDE")
    os.makedirs(dest)
    os.makedirs(os.path.join(outside, "trav"))
    with open(os.path.join(outside, "trav", "secret"), "w") as fh:
        fh.write("keep")
    os.chmod(os.path.join(outside, "trav", "secret"), 0o600)
    yield dest, outside


def test_basic_metadata(tmp_path: object, use_openat2: bool) -> None:
    dest = str(tmp_path)
    info, data = entry("d/f", data=b"hello", mode=0o4751, uid=1234, gid=4321)
    info.pax_headers = {"mtime": "1600000000.123456789", "SCHILY.xattr.user.foo": "bar"}
    size = _apply(dest, [entry("d/", b"5", mode=0o710, mtime=1_500_000_000), (info, data), entry("d/ln", b"2", linkname="/nowhere"),
                         entry("fifo", b"6", mode=0o640), entry("dev", b"3", mode=0o600)], use_openat2)
    assert size == 5
    st = os.lstat(os.path.join(dest, "d/f"))
    assert stat.S_IMODE(st.st_mode) == 0o4751 and (st.st_uid, st.st_gid) == (1234, 4321)
    assert st.st_mtime_ns == 1_600_000_000_123_456_789
    assert os.getxattr(os.path.join(dest, "d/f"), "user.foo") == b"bar"
    assert os.readlink(os.path.join(dest, "d/ln")) == "/nowhere"
    dst = os.lstat(os.path.join(dest, "d"))
    assert stat.S_IMODE(dst.st_mode) == 0o710 and dst.st_mtime_ns == 1_500_000_000 * 10**9
    assert stat.S_ISFIFO(os.lstat(os.path.join(dest, "fifo")).st_mode)
    assert stat.S_ISCHR(os.lstat(os.path.join(dest, "dev")).st_mode)


def test_missing_parents_created_0755(tmp_path: object, use_openat2: bool) -> None:
    _apply(str(tmp_path), [entry("x/y/z", data=b"1")], use_openat2)
    assert stat.S_IMODE(os.stat(os.path.join(str(tmp_path), "x/y")).st_mode) == 0o755


def test_root_entry_applies_to_root(tmp_path: object, use_openat2: bool) -> None:
    dest = os.path.join(str(tmp_path), "r")
    os.mkdir(dest, 0o555)
    _apply(dest, [entry("./", b"5", mode=0o750, uid=7, gid=8)], use_openat2)
    st = os.stat(dest)
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == 7


def test_whiteouts_and_opaque(tmp_path: object, use_openat2: bool) -> None:
    dest = str(tmp_path)
    for p in ("d/x", "d/y", "e/z", "f", "keep"):
        os.makedirs(os.path.dirname(os.path.join(dest, p)), exist_ok=True)
        with open(os.path.join(dest, p), "w") as fh:
            fh.write(p)
    _apply(dest, [entry("d/", b"5", mode=0o755), entry("d/n", data=b"new"), entry("d/.wh..wh..opq"),
                  entry(".wh.e"), entry(".wh.f"), entry(".wh.missing"), entry(".wh..wh.other")], use_openat2)
    assert sorted(os.listdir(dest)) == ["d", "keep"]
    assert os.listdir(os.path.join(dest, "d")) == ["n"]


def test_existing_non_dir_replaced(tmp_path: object, use_openat2: bool) -> None:
    dest = str(tmp_path)
    with open(os.path.join(dest, "a"), "w") as fh:
        fh.write("file")
    os.mkdir(os.path.join(dest, "b"))
    with open(os.path.join(dest, "b", "inner"), "w") as fh:
        fh.write("x")
    _apply(dest, [entry("a/", b"5", mode=0o755), entry("b", data=b"now a file")], use_openat2)
    assert os.path.isdir(os.path.join(dest, "a"))
    with open(os.path.join(dest, "b")) as fh:
        assert fh.read() == "now a file"


def test_hard_links_across_dirs(tmp_path: object, use_openat2: bool) -> None:
    dest = str(tmp_path)
    _apply(dest, [entry("a/", b"5", mode=0o755), entry("a/f", data=b"data"), entry("b/", b"5", mode=0o755),
                  entry("b/g", b"1", linkname="a/f"), entry("c", b"1", linkname="/a/f")], use_openat2)
    ino = os.lstat(os.path.join(dest, "a/f")).st_ino
    assert os.lstat(os.path.join(dest, "b/g")).st_ino == ino
    assert os.lstat(os.path.join(dest, "c")).st_nlink == 3


def test_maps_container_to_host(tmp_path: object, use_openat2: bool) -> None:
    dest = str(tmp_path)
    maps = ((IDMap(0, 100000, 65536),), (IDMap(0, 200000, 65536),))
    _apply(dest, [entry("f", data=b"x", uid=5, gid=6)], use_openat2, maps=maps)
    st = os.lstat(os.path.join(dest, "f"))
    assert (st.st_uid, st.st_gid) == (100005, 200006)
    with pytest.raises(StorageError, match="container ID 70000 cannot be mapped to a host ID"):
        _apply(dest, [entry("g", data=b"x", uid=70000)], use_openat2, maps=maps)


# ---- hostile archives -------------------------------------------------------------------------

HOSTILE = {
    "dotdot": ([entry("../../../../OUTSIDE/trav/escaped1", data=b"x")], None, "OUTSIDE/trav/escaped1"),
    "absolute": ([entry("/OUTSIDE/trav/escaped2", data=b"x")], None, "OUTSIDE/trav/escaped2"),
    "symlink-then-write": ([entry("link", b"2", linkname="/OUTSIDE/trav"), entry("link/escaped3", data=b"x")],
                           "open /link/escaped3: no such file or directory", None),
    "relative-symlink-then-write": ([entry("link", b"2", linkname="../../../../OUTSIDE/trav"), entry("link/secret", data=b"x")],
                                    "no such file or directory", None),
    "symlink-verbatim": ([entry("link2", b"2", linkname="../../../../../../../../OUTSIDE/trav")], None, "link2"),
    "hardlink-outside": ([entry("h", b"1", linkname="../../../../../etc/hostname")], "no such file or directory", None),
    "hardlink-via-symlink-dir": ([entry("s", b"2", linkname="../OUTSIDE/trav"), entry("h", b"1", linkname="s/secret")],
                                 "no such file or directory", None),
    "symlink-chain": ([entry("l1", b"2", linkname="l2"), entry("l2", b"2", linkname="/../.."),
                       entry("l1/OUTSIDE/trav/secret", data=b"pwned")], None, "OUTSIDE/trav/secret"),
    "symlink-to-file-outside": ([entry("f", b"2", linkname="/OUTSIDE/trav/secret"), entry("f", data=b"over")],
                                None, "f"),
    "device-named-outside": ([entry("../OUTSIDE/trav/dev", b"3", mode=0o666)], None, "OUTSIDE/trav/dev"),
    "dir-symlink-chmod": ([entry("d", b"2", linkname="/../OUTSIDE/trav"), entry("d/", b"5", mode=0o777)], None, "d"),
    "whiteout-through-symlink": ([entry("w", b"2", linkname="../OUTSIDE/trav"), entry("w/.wh.secret")], None, "w"),
    "opaque-through-symlink": ([entry("o", b"2", linkname="../OUTSIDE/trav"), entry("o/.wh..wh..opq")], None, "o"),
    "xattr-on-symlink-target": ([entry("x", b"2", linkname="../OUTSIDE/trav/secret")], None, "x"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_stay_inside(arena: tuple[str, str], case: str, use_openat2: bool) -> None:
    dest, outside = arena
    members, error, created = HOSTILE[case]
    before = _snapshot(outside)
    tar = make_tar(members, tarfile.PAX_FORMAT)
    if error:
        with pytest.raises(ArchiveError, match=error):
            extract_layer(dest, io.BytesIO(tar), use_openat2=use_openat2)
    else:
        extract_layer(dest, io.BytesIO(tar), use_openat2=use_openat2)
    assert _snapshot(outside) == before
    with open(os.path.join(outside, "trav", "secret")) as fh:
        assert fh.read() == "keep"
    if created:
        assert os.path.lexists(os.path.join(dest, created))


def test_hostile_via_ingest_duplicate_symlink(arena: tuple[str, str]) -> None:
    """Through LayerIngest, re-using a path is refused before anything follows the symlink."""
    from cs_core.archive import LayerIngest

    dest, outside = arena
    tar = make_tar([entry("f", b"2", linkname="/OUTSIDE/trav/secret"), entry("./f", data=b"over")], tarfile.PAX_FORMAT)
    ing = LayerIngest(io.BytesIO(tar))
    with pytest.raises(ArchiveError, match="duplicates of file paths not supported"):
        extract_layer(dest, ing.tar_stream)
    with open(os.path.join(outside, "trav", "secret")) as fh:
        assert fh.read() == "keep"


def test_replacing_symlink_does_not_touch_target(arena: tuple[str, str], use_openat2: bool) -> None:
    dest, outside = arena
    os.symlink(os.path.join(outside, "trav", "secret"), os.path.join(dest, "f"))
    extract_layer(dest, io.BytesIO(make_tar([entry("f", data=b"over", mode=0o777, uid=5)])), use_openat2=use_openat2)
    with open(os.path.join(outside, "trav", "secret")) as fh:
        assert fh.read() == "keep"
    assert stat.S_IMODE(os.stat(os.path.join(outside, "trav", "secret")).st_mode) == 0o600


# ---- unpack + converter -----------------------------------------------------------------------

class _OverlayLike:
    """Minimal converter: whiteouts become 0/0 char devices, opaque markers an xattr."""

    def on_write(self, rel_path: str, full_path: str, st: os.stat_result, info: tarfile.TarInfo) -> tuple[tarfile.TarInfo | None, list[tarfile.TarInfo]]:
        return info, []

    def on_read(self, root: SafeRoot, rel_path: str, info: tarfile.TarInfo) -> bool:
        head, base = os.path.split(rel_path)
        if base == ".wh..wh..opq":
            root.setxattr(head, "user.overlay.opaque", b"y")
            return False
        if base.startswith(".wh."):
            target = os.path.join(head, base[4:])
            root.mknod(target, stat.S_IFCHR, os.makedev(0, 0))
            root.lchown(target, int(info.uid), int(info.gid))
            return False
        return True


def test_unpack_with_converter(tmp_path: object, use_openat2: bool) -> None:
    dest = os.path.join(str(tmp_path), "diff")
    os.mkdir(dest, 0o555)
    tar = make_tar([entry("./", b"5", mode=0o777), entry("d/", b"5", mode=0o755), entry("d/.wh..wh..opq"),
                    entry(".wh.gone", uid=3), entry("d/n", data=b"n")])
    unpack(dest, io.BytesIO(tar), converter=_OverlayLike(), use_openat2=use_openat2)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o555  # root untouched by Unpack
    assert os.getxattr(os.path.join(dest, "d"), "user.overlay.opaque") == b"y"
    st = os.lstat(os.path.join(dest, "gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and st.st_uid == 3
    assert sorted(os.listdir(dest)) == ["d", "gone"]


def test_unpack_without_converter_keeps_whiteout_files(tmp_path: object) -> None:
    dest = str(tmp_path)
    unpack(dest, io.BytesIO(make_tar([entry(".wh.x"), entry("a/b", data=b"1")])))
    assert sorted(os.listdir(dest)) == [".wh.x", "a"]


def test_force_mask_records_override_stat(tmp_path: object) -> None:
    dest = str(tmp_path)
    extract_layer(dest, io.BytesIO(make_tar([entry("f", data=b"1", mode=0o4755, uid=5, gid=6), entry("c", b"3", mode=0o600)])),
                  force_mask=0o700)
    assert os.getxattr(os.path.join(dest, "f"), "user.containers.override_stat") == b"5:6:4755:file"
    assert os.getxattr(os.path.join(dest, "c"), "user.containers.override_stat") == b"0:0:0600:char-0-0"
    assert stat.S_ISREG(os.lstat(os.path.join(dest, "c")).st_mode)
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "f")).st_mode) == 0o700
