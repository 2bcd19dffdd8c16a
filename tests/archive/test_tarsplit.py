"""Tar-split recording and byte-exact reassembly, including interop with the Go CLI."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs_core.archive import LayerIngest, crc64, extract_layer, reassemble
from cs_core.errors import ArchiveError, ChecksumMismatch

from .helpers import apply_and_reassemble, entry, make_tar

GO_CLI = "/usr/bin/containers-storage"


def test_crc64_check_value() -> None:
    assert base64.b64encode(crc64.to_bytes(crc64.checksum(b"yy\n"))) == b"YVKCoAAAAAA="
    assert crc64.update(crc64.update(0, b"y"), b"y\n") == crc64.checksum(b"yy\n")
    assert crc64._py_update(0, b"yy\n") == crc64.checksum(b"yy\n")


def _entries(ts: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in gzip.decompress(ts).splitlines()]


def test_entry_format(tmp_path: object) -> None:
    tar = make_tar([entry("./", b"5", mode=0o755), entry("./y", data=b"yy\n")])
    out, _res, ts = apply_and_reassemble(tar, str(tmp_path))
    assert out == tar
    lines = gzip.decompress(ts).splitlines()
    assert lines[0].startswith(b'{"type":2,"payload":"')
    assert lines[1] == b'{"type":1,"name":"./","payload":null,"position":1}'
    assert lines[3] == b'{"type":1,"name":"./y","size":3,"payload":"YVKCoAAAAAA=","position":3}'
    ents = _entries(ts)
    assert [e["position"] for e in ents] == list(range(len(ents)))
    assert ents[-1] == {"type": 2, "payload": "", "position": len(ents) - 1}


def test_non_utf8_name_uses_name_raw(tmp_path: object) -> None:
    raw_name = b"caf\xe9"
    info = tarfile.TarInfo(os.fsdecode(raw_name))
    tar = make_tar([(info, b"data")], fmt=tarfile.GNU_FORMAT)
    out, _res, ts = apply_and_reassemble(tar, str(tmp_path))
    assert out == tar
    files = [e for e in _entries(ts) if e["type"] == 1]
    assert files[0]["name_raw"] == base64.b64encode(raw_name).decode()
    assert "name" not in files[0]


def test_names_escaped_like_go_json(tmp_path: object) -> None:
    # Go's encoding/json escapes " \\ < > & and control characters; plain names are copied as they are.
    names = ["a b!#$%'()*+,-.:;=?@[]^_`{|}~", 'q"uote', "back\\slash", "lt<gt>amp&", "tab\tnl\x01", "caf\u00e9"]
    tar = make_tar([entry(n, data=b"x") for n in names], fmt=tarfile.PAX_FORMAT)
    out, _res, ts = apply_and_reassemble(tar, str(tmp_path))
    assert out == tar
    lines = [ln for ln in gzip.decompress(ts).splitlines() if ln.startswith(b'{"type":1')]
    encoded = [ln[len(b'{"type":1,"name":') : ln.index(b',"size"')] for ln in lines]
    assert encoded == [
        b'"a b!#$%\'()*+,-.:;=?@[]^_`{|}~"',
        b'"q\\"uote"',
        b'"back\\\\slash"',
        b'"lt\\u003cgt\\u003eamp\\u0026"',
        b'"tab\\tnl\\u0001"',
        '"caf\u00e9"'.encode(),
    ]


def test_trailing_garbage_kept(tmp_path: object) -> None:
    tar = make_tar([entry("a", data=b"1")]) + b"GARBAGE" * 1000
    out, res, _ts = apply_and_reassemble(tar, str(tmp_path))
    assert out == tar
    assert res.uncompressed_size == len(tar)  # type: ignore[attr-defined]


def test_uid_gid_sets_exclude_whiteouts(tmp_path: object) -> None:
    tar = make_tar([entry("a", data=b"1", uid=5, gid=7), entry("b", data=b"2", uid=3, gid=9),
                    entry(".wh.zz", uid=99, gid=99)])
    _out, res, _ts = apply_and_reassemble(tar, str(tmp_path))
    assert res.uidset == [3, 5]  # type: ignore[attr-defined]
    assert res.gidset == [7, 9]  # type: ignore[attr-defined]


def test_duplicate_paths_rejected(tmp_path: object) -> None:
    tar = make_tar([entry("./a", data=b"1"), entry("a", data=b"2")])
    ing = LayerIngest(io.BytesIO(tar))
    with pytest.raises(ArchiveError, match="duplicates of file paths not supported"):
        extract_layer(str(tmp_path), ing.tar_stream)


def test_checksum_mismatch(tmp_path: object) -> None:
    tar = make_tar([entry("f", data=b"original")])
    ing = LayerIngest(io.BytesIO(tar))
    extract_layer(str(tmp_path), ing.tar_stream)
    ing.finish()
    ts = io.BytesIO()
    ing.write_tar_split(ts)
    with open(os.path.join(str(tmp_path), "f"), "wb") as fh:
        fh.write(b"modified")
    with pytest.raises(ChecksumMismatch, match='file integrity checksum failed for "f"'):
        reassemble(io.BytesIO(ts.getvalue()), lambda n: os.path.join(str(tmp_path), n), io.BytesIO())


def test_reassemble_to_real_file(tmp_path: object) -> None:
    d = os.path.join(str(tmp_path), "d")
    os.mkdir(d)
    tar = make_tar([entry("big", data=os.urandom(3 << 20)), entry("small", data=b"s")], fmt=tarfile.PAX_FORMAT)
    _out, _res, ts = apply_and_reassemble(tar, d)
    path = os.path.join(str(tmp_path), "out.tar")
    with open(path, "wb") as fh:
        n = reassemble(io.BytesIO(ts), lambda name: os.path.join(d, name), fh)
    assert n == len(tar)
    with open(path, "rb") as fh:
        assert fh.read() == tar


def test_driver_reading_stream_itself_records_tar_split(tmp_path: object) -> None:
    """A driver with its own extraction reads .tar_stream; tar-split must still be complete."""
    tar = make_tar([entry("d/", b"5", mode=0o755), entry("d/f", data=b"abc" * 500)])
    ing = LayerIngest(io.BytesIO(tar))
    with tarfile.open(fileobj=ing.tar_stream, mode="r|") as tf:
        tf.extractall(str(tmp_path), filter="tar")
    ing.finish()
    ts = io.BytesIO()
    ing.write_tar_split(ts)
    out = io.BytesIO()
    reassemble(io.BytesIO(ts.getvalue()), lambda n: os.path.join(str(tmp_path), n), out)
    assert out.getvalue() == tar


_names = st.text(alphabet="abcxyz\u00e9-_.", min_size=1, max_size=12).filter(lambda s: s not in (".", "..") and not s.startswith(".wh."))
_FORMATS = st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])


@st.composite
def _trees(draw: st.DrawFn) -> tuple[list[tuple[tarfile.TarInfo, bytes | None]], int, bytes]:
    fmt = draw(_FORMATS)
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    used: set[str] = set()
    dirs = [""]
    files: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        parent = draw(st.sampled_from(dirs))
        name = draw(_names)
        if fmt == tarfile.USTAR_FORMAT:
            name = name.encode("ascii", "ignore").decode() or "n"
        if draw(st.booleans()) and len(parent) < 60:
            name = name * draw(st.integers(1, 12))
        path = f"{parent}{name}"
        if path in used or any(u.startswith(path + "/") or path.startswith(u + "/") for u in used):
            continue
        if fmt == tarfile.USTAR_FORMAT and len(path) > 99:
            continue
        used.add(path)
        kind = draw(st.sampled_from(["file", "dir", "symlink", "hardlink"]))
        mtime = draw(st.integers(0, 2_000_000_000))
        if kind == "dir":
            members.append(entry(path + "/", b"5", mode=0o755, mtime=mtime))
            dirs.append(path + "/")
        elif kind == "symlink":
            members.append(entry(path, b"2", linkname=draw(_names), mode=0o777, mtime=mtime))
        elif kind == "hardlink" and files:
            members.append(entry(path, b"1", linkname=draw(st.sampled_from(files)), mtime=mtime))
        else:
            data = draw(st.binary(max_size=3000))
            members.append(entry(path, data=data, mode=draw(st.sampled_from([0o644, 0o600, 0o755, 0o4755])),
                                 uid=draw(st.integers(0, 70000)), gid=draw(st.integers(0, 70000)), mtime=mtime))
            files.append(path)
    trailer = draw(st.sampled_from([b"", b"\0" * 512, b"junk after the end"]))
    return members, fmt, trailer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_trees())
def test_roundtrip_property(tmp_path_factory: pytest.TempPathFactory, tree: tuple[list[tuple[tarfile.TarInfo, bytes | None]], int, bytes]) -> None:
    members, fmt, trailer = tree
    tar = make_tar(members, fmt) + trailer
    dest = str(tmp_path_factory.mktemp("rt"))
    out, res, _ts = apply_and_reassemble(tar, dest)
    assert out == tar
    assert res.uncompressed_size == len(tar)  # type: ignore[attr-defined]
    for info, data in members:
        if info.type == b"0":
            with open(os.path.join(dest, info.name), "rb") as fh:
                assert fh.read() == data


needs_go = pytest.mark.skipif(not os.path.exists(GO_CLI), reason="Go containers-storage CLI not installed")


def _go(graph: str, *args: str) -> bytes:
    return subprocess.run([GO_CLI, "--graph", f"{graph}/g", "--run", f"{graph}/r", "-s", "vfs", *args],
                          check=True, capture_output=True).stdout


def _sample_tar(path: str) -> bytes:
    src = os.path.join(os.path.dirname(path), "src")
    os.makedirs(os.path.join(src, "a/b"))
    with open(os.path.join(src, "y"), "wb") as fh:
        fh.write(b"yy\n")
    with open(os.path.join(src, "a/b/x"), "wb") as fh:
        fh.write(os.urandom(70000))
    os.symlink("y", os.path.join(src, "ylink"))
    os.link(os.path.join(src, "y"), os.path.join(src, "a/hl"))
    os.setxattr(os.path.join(src, "y"), "user.k", b"v")
    subprocess.run(["tar", "--xattrs", "-C", src, "-cf", path, "."], check=True)
    with open(path, "rb") as fh:
        return fh.read()


@needs_go
def test_go_tar_split_reassembles_with_ours(tmp_path: object) -> None:
    base = str(tmp_path)
    tar_path = os.path.join(base, "in.tar")
    tar = _sample_tar(tar_path)
    layer_id = _go(base, "import-layer", "-f", tar_path).decode().split()[-1]
    out = io.BytesIO()
    with open(f"{base}/g/vfs-layers/{layer_id}.tar-split.gz", "rb") as ts:
        reassemble(ts, lambda n: os.path.join(f"{base}/g/vfs/dir/{layer_id}", n), out)
    assert out.getvalue() == tar


@needs_go
def test_our_tar_split_is_read_by_go(tmp_path: object) -> None:
    base = str(tmp_path)
    tar_path = os.path.join(base, "in.tar")
    tar = _sample_tar(tar_path)
    layer_id = _go(base, "import-layer", "-f", tar_path).decode().split()[-1]
    with open(tar_path, "rb") as fh:
        ing = LayerIngest(fh)
        scratch = os.path.join(base, "scratch")
        os.mkdir(scratch)
        extract_layer(scratch, ing.tar_stream)
        ing.finish()
    ts_path = f"{base}/g/vfs-layers/{layer_id}.tar-split.gz"
    with open(ts_path, "rb") as fh:
        go_lines = gzip.decompress(fh.read())
    with open(ts_path, "wb") as fh:
        ing.write_tar_split(fh)
    with open(ts_path, "rb") as fh:
        assert gzip.decompress(fh.read()) == go_lines
    assert _go(base, "diff", "-u", layer_id) == tar
    shutil.rmtree(scratch)


@pytest.mark.parametrize("size", [10, (1 << 20) + 10])
def test_grown_or_shrunk_file_fails_the_integrity_check(tmp_path: object, size: int) -> None:
    """Like Go's asm, which copies the whole file through the checksum: any change of length fails."""
    from pathlib import Path

    tar = make_tar([entry("f", data=b"x" * size)])
    dest = Path(str(tmp_path))
    ing = LayerIngest(io.BytesIO(tar))
    extract_layer(str(dest), ing.tar_stream)
    ing.finish()
    ts = io.BytesIO()
    ing.write_tar_split(ts)
    for content in (b"x" * size + b"y", b"x" * (size - 1)):
        (dest / "f").write_bytes(content)
        with pytest.raises(ChecksumMismatch, match='file integrity checksum failed for "f"'):
            reassemble(io.BytesIO(ts.getvalue()), lambda name: os.path.join(str(dest), name), io.BytesIO())
