"""Compression detection, streaming decompression and compressed writers (storage.md 10.7)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import subprocess
import threading
from typing import IO, Any, BinaryIO, cast

from cs_core.errors import ArchiveError, UnexpectedEOF, UnsupportedCompression

COMPRESSION_NONE = 0
COMPRESSION_BZIP2 = 1
COMPRESSION_GZIP = 2
COMPRESSION_XZ = 3
COMPRESSION_ZSTD = 4

_MAGICS: tuple[tuple[bytes, int], ...] = (
    (b"\x42\x5a\x68", COMPRESSION_BZIP2),
    (b"\x1f\x8b\x08", COMPRESSION_GZIP),
    (b"\xfd\x37\x7a\x58\x5a\x00", COMPRESSION_XZ),
    (b"\x28\xb5\x2f\xfd", COMPRESSION_ZSTD),
)

EXTENSIONS = {COMPRESSION_NONE: "tar", COMPRESSION_BZIP2: "tar.bz2", COMPRESSION_GZIP: "tar.gz",
              COMPRESSION_XZ: "tar.xz", COMPRESSION_ZSTD: "tar.zst"}


def detect_compression(head: bytes) -> int:
    """Return the COMPRESSION_* code for the leading bytes ``head`` (0 when unknown/short)."""
    for magic, code in _MAGICS:
        if head.startswith(magic):
            return code
    return COMPRESSION_NONE


class _DecompressErrors(io.RawIOBase):
    """Translate decompressor failures into archive errors with Go-like texts."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self._readinto = getattr(inner, "readinto", None)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            if self._readinto is not None:
                # readinto straight into the caller's buffer: no copy, and much faster than
                # read(n) on the gzip readers.
                return int(self._readinto(b) or 0)
            data = self._inner.read(len(b))
        except EOFError as exc:
            raise UnexpectedEOF() from exc
        except (OSError, lzma.LZMAError, ValueError) as exc:
            raise ArchiveError(f"decompressing: {exc}") from exc
        except Exception as exc:  # zstandard.ZstdError and friends
            raise ArchiveError(f"decompressing: {exc}") from exc
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def _open_gzip(raw: BinaryIO) -> IO[bytes]:
    try:
        from isal import igzip

        return cast(IO[bytes], igzip.IGzipFile(fileobj=raw, mode="rb"))
    except ImportError:
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))


class _ProcessReader(io.RawIOBase):
    """Pipe ``raw`` through an external decompressor and read its stdout."""

    def __init__(self, argv: list[str], raw: BinaryIO) -> None:
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._raw = raw
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        assert self._proc.stdin is not None
        try:
            while True:
                chunk = self._raw.read(1 << 20)
                if not chunk:
                    break
                self._proc.stdin.write(chunk)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                self._proc.stdin.close()
            except OSError:
                pass

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        assert self._proc.stdout is not None
        n = cast(Any, self._proc.stdout).readinto(b)
        if n == 0:
            rc = self._proc.wait()
            if rc != 0:
                err = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
                if any(w in err for w in ("unexpected end", "truncated", "premature end")):
                    raise UnexpectedEOF()
                raise ArchiveError(f"decompressing: {err or f'exit status {rc}'}")
        return n or 0

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._feeder.join(timeout=5)
        super().close()


def _open_zstd(raw: BinaryIO) -> IO[bytes]:
    try:
        import zstandard

        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    except ImportError:
        exe = shutil.which("zstd")
        if exe is None:
            raise ArchiveError("zstd decompression is not available (install zstandard or zstd)") from None
        return io.BufferedReader(_ProcessReader([exe, "-dc"], raw), 1 << 20)


def open_decompressed(raw: BinaryIO, kind: int, *, buffered: bool = True) -> BinaryIO:
    """Return a streaming reader of the decompressed bytes of ``raw`` compressed with ``kind``.

    ``buffered=False`` returns the raw reader (``readinto`` straight into the caller's buffer,
    possibly short reads) for callers that read in large chunks anyway.
    """
    inner: IO[bytes]
    if kind == COMPRESSION_NONE:
        return raw
    if kind == COMPRESSION_GZIP:
        inner = _open_gzip(raw)
    elif kind == COMPRESSION_BZIP2:
        inner = bz2.BZ2File(raw, "rb")
    elif kind == COMPRESSION_XZ:
        inner = lzma.LZMAFile(raw, "rb")
    elif kind == COMPRESSION_ZSTD:
        inner = _open_zstd(raw)
    else:
        raise UnsupportedCompression(f"unsupported compression format {kind}")
    if not buffered:
        return cast(BinaryIO, _DecompressErrors(inner))
    return cast(BinaryIO, io.BufferedReader(_DecompressErrors(inner), 1 << 20))


class _ZstdWriter(io.RawIOBase):
    def __init__(self, out: BinaryIO) -> None:
        import zstandard

        self._writer = zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return int(self._writer.write(b))

    def close(self) -> None:
        if not self.closed:
            self._writer.flush(1)  # FLUSH_FRAME
            self._writer.close()
        super().close()


def open_compressed_writer(out: BinaryIO, compression: int) -> BinaryIO:
    """A writer compressing into ``out``; ``close()`` finishes the stream but leaves ``out`` open."""
    if compression == COMPRESSION_NONE:
        return cast(BinaryIO, _NoClose(out))
    if compression == COMPRESSION_GZIP:
        try:
            from isal import igzip_threaded

            # Compression runs on a second thread outside the GIL while the caller builds the tar.
            return cast(BinaryIO, igzip_threaded.open(out, "wb", compresslevel=1, threads=1))
        except ImportError:
            pass
        try:
            from isal import igzip

            return cast(BinaryIO, igzip.IGzipFile(fileobj=out, mode="wb", compresslevel=1))
        except ImportError:
            return cast(BinaryIO, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0))
    if compression == COMPRESSION_ZSTD:
        try:
            return cast(BinaryIO, _ZstdWriter(out))
        except ImportError:
            raise UnsupportedCompression("unsupported compression format tar.zst") from None
    if compression in (COMPRESSION_BZIP2, COMPRESSION_XZ):
        raise UnsupportedCompression(f"unsupported compression format {EXTENSIONS[compression]}")
    raise UnsupportedCompression(f"unsupported compression format {compression}")


class _NoClose(io.RawIOBase):
    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._out.write(b)
        return len(b)

    def close(self) -> None:
        if not self.closed:
            self._out.flush()
        super().close()
