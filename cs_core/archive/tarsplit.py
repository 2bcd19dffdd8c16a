"""Tar-split data (storage.md 2.7): recording while parsing, and byte-exact reassembly.

The file is gzip of JSON lines ``{"type":2,"payload":"<b64>","position":N}`` (raw segment) and
``{"type":1,"name":"./y","size":3,"payload":"<b64 CRC-64/ISO>","position":N}`` (file entry),
compatible with vbatts/tar-split as used by containers/storage.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import mmap
import os
import posixpath
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

from cs_core.archive import crc64
from cs_core.archive.tarstream import BaseListener, Member
from cs_core.errors import ArchiveError, ChecksumMismatch

SEGMENT = 2
FILE = 1
_TRAIL_CHUNK = 1 << 20
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class DuplicatePath(ArchiveError):
    """``duplicates of file paths not supported``"""

    default_message = "duplicates of file paths not supported"


def _clean(name: str) -> str:
    """Go ``filepath.Clean`` (on a str that may carry surrogate escapes)."""
    if not name:
        return "."
    cleaned = posixpath.normpath(name)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


class TarSplitRecorder(BaseListener):
    """Collects tar-split entries as JSON lines, plus the UIDs/GIDs of the headers."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._pending = bytearray()
        self._pos = 0
        self._seen: set[str] = set()
        self._member: Member | None = None
        self._crc = 0
        self.uids: set[int] = set()
        self.gids: set[int] = set()
        self._trailing_open = False

    # ---- entry encoding ---------------------------------------------------------------------
    def _segment(self, data: bytes | bytearray | memoryview) -> None:
        b64 = base64.b64encode(data).decode("ascii")
        self._lines.append(b'{"type":2,"payload":"%s","position":%d}\n' % (b64.encode("ascii"), self._pos))
        self._pos += 1

    def _flush(self) -> None:
        if self._pending:
            self._segment(self._pending)
            self._pending = bytearray()

    def _file_entry(self, member: Member, payload: bytes | None) -> None:
        name_bytes = member.name_bytes
        key = _clean(os.fsdecode(name_bytes))
        if key in self._seen:
            raise DuplicatePath()
        self._seen.add(key)
        parts = [b'{"type":1,']
        try:
            name = name_bytes.decode("utf-8")
            parts.append(b'"name":' + json.dumps(name, ensure_ascii=False).translate(_GO_ESCAPES).encode("utf-8") + b",")
        except UnicodeDecodeError:
            parts.append(b'"name_raw":"' + base64.b64encode(name_bytes) + b'",')
        if member.body_size:
            parts.append(b'"size":%d,' % member.body_size)
        if payload is None:
            parts.append(b'"payload":null,')
        else:
            parts.append(b'"payload":"' + base64.b64encode(payload) + b'",')
        parts.append(b'"position":%d}\n' % self._pos)
        self._pos += 1
        self._lines.append(b"".join(parts))

    # ---- listener -----------------------------------------------------------------------------
    def on_raw(self, data: memoryview) -> None:
        self._pending += data

    def on_member(self, member: Member) -> None:
        self._flush()
        self._member = member
        self._crc = 0
        if not posixpath.basename(member.info.name).startswith(".wh."):
            self.uids.add(int(member.info.uid))
            self.gids.add(int(member.info.gid))

    def on_payload(self, data: memoryview) -> None:
        self._crc = crc64.update(self._crc, data)

    def on_member_end(self) -> None:
        member = self._member
        assert member is not None
        self._file_entry(member, crc64.to_bytes(self._crc) if member.body_size else None)
        self._member = None

    def on_end(self) -> None:
        self._flush()
        self._trailing_open = True

    def on_trailing(self, data: memoryview) -> None:
        for i in range(0, len(data), _TRAIL_CHUNK):
            self._segment(data[i : i + _TRAIL_CHUNK])

    def finish(self) -> None:
        """Flush pending bytes and write the final (possibly empty) segment like Go."""
        self._flush()
        self._segment(b"")

    # ---- output -------------------------------------------------------------------------------
    def write(self, fileobj: BinaryIO) -> None:
        """Write the gzip'd JSON lines to ``fileobj``."""
        try:
            from isal import igzip

            gz: Any = igzip.IGzipFile(fileobj=fileobj, mode="wb", compresslevel=1)
        except ImportError:
            gz = gzip.GzipFile(fileobj=fileobj, mode="wb", compresslevel=1, mtime=0)
        with gz:
            for line in self._lines:
                gz.write(line)

    @property
    def entries_count(self) -> int:
        return self._pos


def iter_entries(tar_split: BinaryIO) -> Iterator[dict[str, Any]]:
    """Decode the entries of a (gzip'd) tar-split stream."""
    head = tar_split.read(2)
    if head == b"\x1f\x8b":
        import io

        gz: Any = gzip.GzipFile(fileobj=cast(Any, _Prepend(head, tar_split)), mode="rb")
        stream: Any = io.BufferedReader(gz, 1 << 20)
    else:
        stream = _Prepend(head, tar_split)
    for line in _lines(stream):
        if line.strip():
            yield json.loads(line)


def _lines(stream: Any) -> Iterator[bytes]:
    buf = b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        buf += chunk
        parts = buf.split(b"\n")
        buf = parts.pop()
        yield from parts
    if buf:
        yield buf


class _Prepend:
    def __init__(self, head: bytes, inner: BinaryIO) -> None:
        self._head = head
        self._inner = inner

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data = self._head + self._inner.read()
                self._head = b""
                return data
            data = self._head[:n]
            self._head = self._head[n:]
            if len(data) < n:
                data += self._inner.read(n - len(data))
            return data
        return self._inner.read(n)

    def readable(self) -> bool:
        return True


def _entry_name(entry: dict[str, Any]) -> str:
    raw = entry.get("name_raw")
    if raw:
        return os.fsdecode(base64.b64decode(raw))
    return str(entry.get("name", ""))



def _copy_payload(src_fd: int, out: BinaryIO, out_fd: int | None, size: int, name: str) -> int:
    """Copy ``size`` bytes of ``src_fd`` to the output and return their CRC-64.

    The file is memory-mapped: the CRC is computed over the mapping and the bytes go to the
    output with ``sendfile`` (kernel copy) when the output has a file descriptor.
    """
    st = os.fstat(src_fd)
    if st.st_size < size:
        raise ChecksumMismatch(f'file integrity checksum failed for "{name}"')
    with mmap.mmap(src_fd, size, prot=mmap.PROT_READ) as mapped:
        view = memoryview(mapped)
        try:
            crc = crc64.update(0, view)
            if out_fd is not None:
                offset = 0
                while offset < size:
                    try:
                        sent = os.sendfile(out_fd, src_fd, offset, size - offset)
                    except OSError:
                        sent = os.write(out_fd, view[offset : offset + (1 << 22)])
                    if sent <= 0:
                        raise ChecksumMismatch(f'file integrity checksum failed for "{name}"')
                    offset += sent
            else:
                for i in range(0, size, 1 << 22):
                    out.write(view[i : i + (1 << 22)])
        finally:
            view.release()
    return crc


def reassemble(tar_split: BinaryIO, getter: Callable[[str], str], out: BinaryIO) -> int:
    """Reproduce the original tar from tar-split data; payloads come from ``getter(name)``.

    Returns the number of bytes written.  A file whose CRC-64 differs from the recorded one
    raises ``ChecksumMismatch`` (``file integrity checksum failed for "NAME"``).
    """
    out_fd: int | None = None
    # Write payloads straight to the descriptor only for plain files: a compressing wrapper
    # (gzip, zstd) also answers fileno() with the descriptor of what it compresses into.
    if isinstance(out, (io.FileIO, io.BufferedWriter, io.BufferedRandom)):
        try:
            fileno = out.fileno()
            out.flush()
            out_fd = fileno
        except (OSError, ValueError):
            out_fd = None
    total = 0
    seen: set[str] = set()
    for entry in iter_entries(tar_split):
        etype = entry.get("type")
        if etype == SEGMENT:
            payload = entry.get("payload")
            if payload:
                data = base64.b64decode(payload)
                if out_fd is not None:
                    mv = memoryview(data)
                    while mv:
                        written = os.write(out_fd, mv)
                        mv = mv[written:]
                else:
                    out.write(data)
                total += len(data)
            continue
        if etype != FILE:
            raise ArchiveError(f"unknown tar-split entry type {etype}")
        name = _entry_name(entry)
        key = _clean(name)
        if key in seen:
            raise DuplicatePath()
        seen.add(key)
        size = int(entry.get("size") or 0)
        if size == 0:
            continue
        path = getter(name)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            crc = _copy_payload(fd, out, out_fd, size, name)
        finally:
            os.close(fd)
        expected = base64.b64decode(entry.get("payload") or "")
        if expected and crc64.to_bytes(crc) != expected:
            raise ChecksumMismatch(f'file integrity checksum failed for "{name}"')
        total += size
    return total
