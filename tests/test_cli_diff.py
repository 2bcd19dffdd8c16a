"""Layer contents through the CLI: import-layer, applydiff, diff, changes, diffsize (every driver)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from cs_testlib import CLI


def build_tar(entries: list[tuple[str, str, bytes | str | None]], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A tar of (type, name, data) entries: file, dir, symlink, hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for kind, name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
                tar.addfile(info)
            else:
                payload = data.encode() if isinstance(data, str) else (data or b"")
                info.size, info.mode, info.uid, info.gid = len(payload), 0o644, 5, 6
                tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


BASE = build_tar(
    [
        ("dir", "etc", None),
        ("file", "etc/hosts", "127.0.0.1 localhost\n"),
        ("file", "gone", "bye"),
        ("dir", "d", None),
        ("file", "d/x", "x"),
        ("file", "d/y", "y"),
        ("symlink", "link", "etc/hosts"),
        ("hardlink", "hosts2", "etc/hosts"),
    ]
)
CHILD = build_tar(
    [
        ("file", ".wh.gone", b""),
        ("dir", "d", None),
        ("file", "d/.wh..wh..opq", b""),
        ("file", "d/n", "new"),
        ("file", "added", "hello"),
    ]
)
COMPRESSORS = {
    "none": (lambda b: b, 0),
    "gzip": (gzip.compress, 2),
    "bzip2": (bz2.compress, 1),
    "xz": (lzma.compress, 3),
    "zstd": (lambda b: zstandard.ZstdCompressor().compress(b), 4),
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def import_layer(cli: CLI, data: bytes, *args: str) -> dict:
    return json.loads(cli.ok("import-layer", "--json", *args, stdin=data))


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_import_layer_records_digests_and_diff_reproduces_the_tar(cli: CLI, kind: str, tmp_path: Path) -> None:
    compress, code = COMPRESSORS[kind]
    blob = compress(BASE)
    source = tmp_path / "layer.blob"
    source.write_bytes(blob)
    record = json.loads(cli.ok("import-layer", "--json", "-n", "imp", "-f", str(source)))
    assert record["diff-digest"] == sha(BASE) and record["diff-size"] == len(BASE)
    assert record["compressed-diff-digest"] == sha(blob) and record["compressed-size"] == len(blob)
    assert record.get("compression", 0) == code
    assert record["uidset"] == [0, 5] and record["gidset"] == [0, 6]
    assert (cli.records("layers") / f"{record['id']}.tar-split.gz").exists()
    assert cli("diff", "-u", "imp", binary=True).raw == BASE
    out = tmp_path / "out.tar"
    cli.ok("diff", "--uncompressed", "--file", str(out), "imp")
    assert out.read_bytes() == BASE
    plain = cli("diff", "imp", binary=True)
    if kind in ("bzip2", "xz"):
        ext = {"bzip2": "bz2", "xz": "xz"}[kind]
        assert plain.rc == 1 and plain.err.strip() == f"unsupported compression format tar.{ext}"
    elif kind == "gzip":
        assert gzip.decompress(plain.raw) == BASE
    elif kind == "zstd":
        assert zstandard.ZstdDecompressor().decompressobj().decompress(plain.raw) == BASE
    else:
        assert plain.raw == BASE
    assert gzip.decompress(cli("diff", "-c", "imp", binary=True).raw) == BASE
    mnt = Path(cli.ok("mount", "imp").strip())
    try:
        assert (mnt / "etc/hosts").read_text() == "127.0.0.1 localhost\n"
        assert os.readlink(mnt / "link") == "etc/hosts"
        assert (mnt / "hosts2").stat().st_ino == (mnt / "etc/hosts").stat().st_ino
        assert (mnt / "d/x").stat().st_uid == 5 and (mnt / "d/x").stat().st_gid == 6
    finally:
        cli.ok("unmount", "imp")


def test_applydiff_whiteouts_changes_and_diffsize(cli: CLI) -> None:
    base = import_layer(cli, BASE, "-n", "base")["id"]
    cli.ok("create-layer", "-n", "child", "base")
    res = cli("--debug=false", "applydiff", "child", stdin=CHILD)
    assert (res.rc, res.out, res.err) == (0, "", "")
    mnt = Path(cli.ok("mount", "child").strip())
    try:
        assert not (mnt / "gone").exists()
        assert sorted(os.listdir(mnt / "d")) == ["n"]
        assert (mnt / "added").read_text() == "hello"
        assert not any(name.startswith(".wh.") for name in os.listdir(mnt))
    finally:
        cli.ok("unmount", "child")
    lines = set(cli.ok("changes", "child").splitlines())
    assert {'Delete "/gone"', 'Add "/added"', 'Add "/d/n"'} <= lines
    assert lines & {'Modify "/d"', 'Delete "/d"', 'Delete "/d/x"'}
    assert all(not line.endswith('"/etc/hosts"') for line in lines)
    as_json = json.loads(cli.ok("changes", "--json", "child"))
    assert {"Path": "/gone", "Kind": 2} in as_json and {"Path": "/added", "Kind": 1} in as_json
    assert cli.ok("diffsize", "child") == "8\n"
    assert cli("diff", "-u", "child", binary=True).raw == CHILD
    # Against an explicit FROM that is not the parent, the diff is computed fresh.
    names = tarfile.open(fileobj=io.BytesIO(cli("diff", "-u", "child", base, binary=True).raw)).getnames()
    assert "added" in names and "d/n" in names


def test_naive_diff_of_a_layer_written_through_its_mount(cli: CLI) -> None:
    base = import_layer(cli, BASE, "-n", "base")["id"]
    cli.ok("create-layer", "-n", "child", base)
    mnt = Path(cli.ok("mount", "child").strip())
    try:
        (mnt / "gone").unlink()
        (mnt / "fresh").write_text("fresh")
    finally:
        cli.ok("unmount", "child")
    assert set(cli.ok("changes", "child").splitlines()) == {'Delete "/gone"', 'Add "/fresh"'}
    tar = tarfile.open(fileobj=io.BytesIO(cli("diff", "-u", "child", binary=True).raw))
    members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {".wh.gone", "fresh"}
    assert members[".wh.gone"].size == 0 and members["fresh"].size == 5
    assert cli.ok("diffsize", "child") == "5\n"


@pytest.mark.parametrize(
    ("junk", "needle"),
    [
        (b"this is not a tar\n" * 3, "unexpected EOF"),
        (b"x" * 50, "unexpected EOF"),
        (os.urandom(4096) + b"\0" * 8192, "invalid tar header"),
        (gzip.compress(b"hello world, not a tar at all\n" * 40), "invalid tar header"),
        (bz2.compress(b"short"), "unexpected EOF"),
        (lzma.compress(b"z" * 600), "invalid tar header"),
        (zstandard.ZstdCompressor().compress(b"y" * 600), "invalid tar header"),
    ],
)
def test_junk_input_fails_cleanly(cli: CLI, junk: bytes, needle: str) -> None:
    res = cli("import-layer", stdin=junk)
    assert res.rc == 1 and needle in res.err and "Traceback" not in res.err
    assert json.loads(cli.ok("layers", "--json")) in (None, [])
    assert cli.driver_layers() == []
    target = cli.ok("create-layer", "-n", "target").split("\n")[0]
    res = cli("applydiff", "target", stdin=junk)
    assert res.rc == 1 and needle in res.err
    assert cli.ok("layer", "target").startswith(f"ID: {target}")
    assert cli("create-layer", "target").rc == 0


def test_hostile_members_stay_inside_the_layer(cli: CLI, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    rel = os.path.relpath(outside, "/")
    escape = build_tar([("file", f"../../../../../../../../{rel}/escaped1", "x"), ("file", f"/{rel}/escaped2", "y")])
    layer = import_layer(cli, escape, "-n", "h1")["id"]
    mnt = Path(cli.ok("mount", layer).strip())
    try:
        assert (mnt / rel / "escaped1").read_text() == "x"
        assert (mnt / rel / "escaped2").read_text() == "y"
    finally:
        cli.ok("unmount", layer)
    through_link = build_tar([("symlink", "link", str(outside)), ("file", "link/escaped3", "z")])
    res = cli("import-layer", stdin=through_link)
    assert res.rc == 1 and "no such file or directory" in res.err
    hard = build_tar([("hardlink", "h", "../../../../../../../../etc/hostname")])
    assert cli("import-layer", stdin=hard).rc == 1
    assert list(outside.iterdir()) == []


def test_diff_is_identical_with_the_go_cli_both_ways(cli: CLI, go_cli: CLI, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "file").write_text("from gnu tar\n")
    os.symlink("dir/file", src / "sym")
    os.link(src / "dir" / "file", src / "hard")
    gnu = tmp_path / "gnu.tar"
    subprocess.run(["tar", "-C", str(src), "-cf", str(gnu), "."], check=True)
    blob = gzip.compress(gnu.read_bytes())
    theirs = go_cli.ok("import-layer", "-n", "theirs", stdin=blob).split("\n")[0]
    ours = cli.ok("import-layer", "-n", "ours", stdin=blob).split("\n")[0]
    assert cli("diff", "-u", theirs, binary=True).raw == gnu.read_bytes()
    assert go_cli("diff", "-u", ours, binary=True).raw == gnu.read_bytes()
    ours_rec = json.loads(go_cli.ok("layer", "--json", ours))[0]
    theirs_rec = json.loads(cli.ok("layer", "--json", theirs))[0]
    for key in ("diff-digest", "diff-size", "compressed-diff-digest", "compressed-size", "compression", "uidset", "gidset"):
        assert ours_rec.get(key) == theirs_rec.get(key), key
    assert set(cli.ok("changes", ours).splitlines()) == set(go_cli.ok("changes", theirs).splitlines())
    assert cli.ok("diffsize", ours) == go_cli.ok("diffsize", theirs)
