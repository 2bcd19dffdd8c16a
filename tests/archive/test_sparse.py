"""GNU sparse members in PAX archives (0.0, 0.1, 1.0): expanded on apply, reproduced exactly by diff."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from cs_core.errors import ArchiveError, InvalidTarHeader

from .helpers import apply_and_reassemble

GO_CLI = shutil.which("containers-storage", path="/usr/bin:/usr/sbin") or ""
GNU_TAR = shutil.which("tar") or ""


def _sparse_source(tmp: Path) -> Path:
    """``holes``: 1 MiB with data at 500000 and at the end; ``allholes``: 64 KiB of nothing."""
    src = tmp / "src"
    src.mkdir()
    with open(src / "holes", "wb") as fh:
        fh.truncate(1 << 20)
        fh.seek(500_000)
        fh.write(b"abc")
        fh.seek(0, os.SEEK_END)
        fh.write(b"end")
    with open(src / "allholes", "wb") as fh:
        fh.truncate(1 << 16)
    return src


@pytest.mark.skipif(not GNU_TAR, reason="GNU tar is needed to write sparse archives")
@pytest.mark.parametrize("version", ["0.0", "0.1", "1.0"])
def test_gnu_tar_sparse_members_apply_expanded_and_diff_exactly(tmp_path: Path, version: str) -> None:
    src = _sparse_source(tmp_path)
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", f"--sparse-version={version}", "--format=pax", "-cf", str(archive),
                    "-C", str(src), "holes", "allholes"], check=True)
    dest = tmp_path / "layer"
    dest.mkdir()
    raw = archive.read_bytes()
    out, result, _ts = apply_and_reassemble(raw, str(dest))
    assert sorted(os.listdir(dest)) == ["allholes", "holes"]  # real names, no GNUSparseFile.N
    for name in ("holes", "allholes"):
        assert (dest / name).read_bytes() == (src / name).read_bytes()
    assert os.stat(dest / "holes").st_blocks * 512 < 64 * 1024, "the holes stay holes"
    assert out == raw
    assert result.uncompressed_size == len(raw)  # type: ignore[attr-defined]


def _pax_member(name: str, records: dict[str, str], payload: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.pax_headers = records
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_sparse_map_in_records(tmp_path: Path) -> None:
    records = {"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.map": "2,3,8,2",
               "GNU.sparse.size": "12", "GNU.sparse.name": "real"}
    raw = _pax_member("GNUSparseFile.1/real", records, b"abcde")
    out, _result, _ts = apply_and_reassemble(raw, str(tmp_path))
    assert (tmp_path / "real").read_bytes() == b"\0\0abc\0\0\0de\0\0"
    assert out == raw


@pytest.mark.parametrize(
    ("records", "payload", "error", "text"),
    [
        ({"GNU.sparse.map": "0,20", "GNU.sparse.size": "10"}, b"x" * 20, InvalidTarHeader, "invalid tar header"),
        ({"GNU.sparse.map": "5,2,0,2", "GNU.sparse.size": "10"}, b"xxxx", InvalidTarHeader, "invalid tar header"),
        ({"GNU.sparse.map": "0,2,4", "GNU.sparse.size": "10"}, b"xx", InvalidTarHeader, "invalid tar header"),
        ({"GNU.sparse.map": "0,x", "GNU.sparse.size": "10"}, b"", InvalidTarHeader, "invalid tar header"),
        ({"GNU.sparse.map": "0,2", "GNU.sparse.size": "10"}, b"xxxx", ArchiveError, "contains unreferenced data"),
        ({"GNU.sparse.map": "0,4", "GNU.sparse.size": "10"}, b"xx", ArchiveError, "references non-existent data"),
    ],
)
def test_bad_sparse_members_are_refused(tmp_path: Path, records: dict[str, str], payload: bytes,
                                        error: type[Exception], text: str) -> None:
    raw = _pax_member("f", records, payload)
    with pytest.raises(error, match=text):
        apply_and_reassemble(raw, str(tmp_path))


def test_sparse_1_0_map_in_the_payload(tmp_path: Path) -> None:
    sparse_map = b"2\n1\n2\n6\n1\n".ljust(512, b"\0")
    records = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "m",
               "GNU.sparse.realsize": "9"}
    raw = _pax_member("GNUSparseFile.7/m", records, sparse_map + b"abc")
    out, _result, _ts = apply_and_reassemble(raw, str(tmp_path))
    assert (tmp_path / "m").read_bytes() == b"\0ab\0\0\0c\0\0"
    assert out == raw


@pytest.mark.skipif(not (GO_CLI and GNU_TAR), reason="needs the Go containers-storage CLI and GNU tar")
def test_go_reassembles_our_sparse_layer(tmp_path: Path) -> None:
    """Go's diff of a layer we applied gives back the original archive (our tar-split keeps the raw payload)."""
    src = _sparse_source(tmp_path)
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=pax", "-cf", str(archive), "-C", str(src), "holes"], check=True)
    store = ["--graph", str(tmp_path / "g"), "--run", str(tmp_path / "r"), "-s", "vfs"]
    ours = subprocess.run([sys.executable, "-m", "cs_core.cli", *store, "import-layer", "-f", str(archive)],
                          capture_output=True, text=True, check=True)
    layer = ours.stdout.split()[0]
    go_diff = subprocess.run([GO_CLI, *store, "diff", "-u", layer], capture_output=True, check=True).stdout
    assert go_diff == archive.read_bytes()
