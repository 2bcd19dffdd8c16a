"""Compression detection, decompression of every format and the junk-input error texts."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os

import pytest
import zstandard

from cs_core.archive import (
    COMPRESSION_BZIP2,
    COMPRESSION_GZIP,
    COMPRESSION_NONE,
    COMPRESSION_XZ,
    COMPRESSION_ZSTD,
    LayerIngest,
    detect_compression,
    extract_layer,
    open_compressed_writer,
)
from cs_core.errors import ArchiveError, InvalidTarHeader, UnexpectedEOF, UnsupportedCompression

from .helpers import entry, make_tar

COMPRESSORS = {
    COMPRESSION_NONE: lambda b: b,
    COMPRESSION_GZIP: gzip.compress,
    COMPRESSION_BZIP2: bz2.compress,
    COMPRESSION_XZ: lzma.compress,
    COMPRESSION_ZSTD: lambda b: zstandard.ZstdCompressor().compress(b),
}


def test_detect_magic() -> None:
    assert detect_compression(b"\x1f\x8b\x08rest") == COMPRESSION_GZIP
    assert detect_compression(b"BZh91AY") == COMPRESSION_BZIP2
    assert detect_compression(b"\xfd7zXZ\x00\x00") == COMPRESSION_XZ
    assert detect_compression(b"\x28\xb5\x2f\xfd\x00") == COMPRESSION_ZSTD
    assert detect_compression(b"\x1f\x8b") == COMPRESSION_NONE
    assert detect_compression(b"") == COMPRESSION_NONE


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_ingest_each_compression(kind: int, tmp_path: object) -> None:
    tar = make_tar([entry("d/", b"5", mode=0o755), entry("d/f", data=b"hello" * 1000)])
    raw = COMPRESSORS[kind](tar)
    dest = os.path.join(str(tmp_path), "dest")
    os.mkdir(dest)
    ing = LayerIngest(io.BytesIO(raw))
    assert extract_layer(dest, ing.tar_stream) == 5000
    res = ing.finish()
    assert res.compression == kind
    assert res.compressed_digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert res.compressed_size == len(raw)
    assert res.uncompressed_digest == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert res.uncompressed_size == len(tar)
    with open(os.path.join(dest, "d/f"), "rb") as fh:
        assert fh.read() == b"hello" * 1000


JUNK = {
    "50-byte text": (b"this is not a tar file, just fifty bytes of text.\n", "unexpected EOF"),
    "short text": (b"hello\n", "unexpected EOF"),
    "random": (bytes(range(256)) * 8 + os.urandom(1024), "invalid tar header"),
    "long text": (b"not a tar archive at all, only words\n" * 40, "invalid tar header"),
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
@pytest.mark.parametrize("junk", sorted(JUNK))
def test_junk_inputs_fail_with_go_texts(kind: int, junk: str, tmp_path: object) -> None:
    payload, text = JUNK[junk]
    raw = COMPRESSORS[kind](payload)
    ing = LayerIngest(io.BytesIO(raw))
    with pytest.raises(ArchiveError) as info:
        extract_layer(str(tmp_path), ing.tar_stream)
    assert text in str(info.value)
    assert isinstance(info.value, UnexpectedEOF if text == "unexpected EOF" else InvalidTarHeader)


def test_junk_fails_when_driver_reads_stream_itself() -> None:
    ing = LayerIngest(io.BytesIO(b"x" * 50))
    with pytest.raises(UnexpectedEOF):
        while ing.tar_stream.read(7):
            pass


def test_truncated_member_is_unexpected_eof(tmp_path: object) -> None:
    tar = make_tar([entry("f", data=b"z" * 4000)])
    ing = LayerIngest(io.BytesIO(tar[:1500]))
    with pytest.raises(UnexpectedEOF, match="unexpected EOF"):
        extract_layer(str(tmp_path), ing.tar_stream)


def test_empty_input_is_an_empty_layer(tmp_path: object) -> None:
    ing = LayerIngest(io.BytesIO(b""))
    assert extract_layer(str(tmp_path), ing.tar_stream) == 0
    assert ing.finish().uncompressed_size == 0


@pytest.mark.parametrize("kind,ext", [(COMPRESSION_BZIP2, "tar.bz2"), (COMPRESSION_XZ, "tar.xz")])
def test_unsupported_output(kind: int, ext: str) -> None:
    with pytest.raises(UnsupportedCompression, match=f"unsupported compression format {ext}"):
        open_compressed_writer(io.BytesIO(), kind)


@pytest.mark.parametrize("kind", [COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_ZSTD])
def test_writers_round_trip(kind: int) -> None:
    out = io.BytesIO()
    w = open_compressed_writer(out, kind)
    w.write(b"abc" * 10000)
    w.close()
    assert not out.closed
    data = out.getvalue()
    assert detect_compression(data) == kind
    if kind == COMPRESSION_GZIP:
        data = gzip.decompress(data)
    elif kind == COMPRESSION_ZSTD:
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    assert data == b"abc" * 10000


def test_progress_wrapper_is_transparent() -> None:
    from cs_core.archive.progress import with_progress

    src = io.BytesIO(b"p" * 300000)
    assert with_progress(src, "x", enabled=False) is src
    wrapped = with_progress(io.BytesIO(b"p" * 300000), "x", 300000, enabled=True)
    assert wrapped.read() == b"p" * 300000
    wrapped.close()
