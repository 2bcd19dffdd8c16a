"""Tar-split data (storage.md 2.7): recording while parsing, and byte-exact reassembly.

The file is gzip of JSON lines ``{"type":2,"payload":"<b64>","position":N}`` (raw segment) and
``{"type":1,"name":"./y","size":3,"payload":"<b64 CRC-64/ISO>","position":N}`` (file entry),
compatible with vbatts/tar-split as used by containers/storage.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import mmap
import os
import posixpath
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

from cs_core.archive import crc64
from cs_core.archive.tarstream import BaseListener, Member
from cs_core.errors import ArchiveError, ChecksumMismatch

SEGMENT = 2
FILE = 1
_TRAIL_CHUNK = 1 << 20
#: Uncompressed JSON lines gathered before they are handed to the compressor.
_LINES_CHUNK = 1 << 18

_zlib_impl: Any
try:
    from isal import isal_zlib as _zlib_impl
except ImportError:  # pragma: no cover - depends on the environment
    _zlib_impl = zlib


def _gzip_compressor() -> Any:
    """A fast compressobj producing a complete gzip member (header and trailer included)."""
    return _zlib_impl.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class DuplicatePath(ArchiveError):
    """``duplicates of file paths not supported``"""

    default_message = "duplicates of file paths not supported"


#: Names that Go's JSON encoder writes as they are (printable ASCII, nothing it escapes).
_JSON_PLAIN = re.compile(rb'[ !#-%\'-;=?-\[\]-~]*')


def _clean_bytes(name: bytes) -> bytes:
    """:func:`_clean` on the raw name (the duplicate-path key)."""
    if not name:
        return b"."
    cleaned = posixpath.normpath(name)
    if cleaned.startswith(b"//"):
        cleaned = b"/" + cleaned.lstrip(b"/")
    return cleaned


def _clean(name: str) -> str:
    """Go ``filepath.Clean`` (on a str that may carry surrogate escapes)."""
    if not name:
        return "."
    cleaned = posixpath.normpath(name)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


class TarSplitRecorder(BaseListener):
    """Collects tar-split entries as JSON lines, plus the UIDs/GIDs of the headers.

    The lines are gzip-compressed as they are produced (only the compressed form is kept in
    memory), so memory stays small even for layers with many members.
    """

    def __init__(self) -> None:
        self._lines = bytearray()
        self._gz: Any = _gzip_compressor()
        self._compressed: list[bytes] = []
        self._sealed = False
        self._pending = bytearray()
        self._pos = 0
        self._seen: set[bytes] = set()
        self._member: Member | None = None
        self._crc = 0
        self.uids: set[int] = set()
        self.gids: set[int] = set()
        self._trailing_open = False
        self._payload_is_raw = False
        self._trail = bytearray()

    # ---- entry encoding ---------------------------------------------------------------------
    def _segment(self, data: bytes | bytearray | memoryview) -> None:
        self._emit(b'{"type":2,"payload":"%s","position":%d}\n' % (binascii.b2a_base64(data, newline=False), self._pos))
        self._pos += 1

    def _emit(self, line: bytes) -> None:
        lines = self._lines
        lines += line
        if len(lines) >= _LINES_CHUNK:
            self._compressed.append(self._gz.compress(lines))
            lines.clear()

    def _flush(self) -> None:
        if self._pending:
            self._segment(self._pending)
            self._pending = bytearray()

    def _file_entry(self, member: Member, size: int, payload: bytes | None) -> None:
        name_bytes = member.name_bytes
        key = _clean_bytes(name_bytes)
        if key in self._seen:
            raise DuplicatePath()
        self._seen.add(key)
        parts = [b'{"type":1,']
        if _JSON_PLAIN.fullmatch(name_bytes):
            parts.append(b'"name":"' + name_bytes + b'",')
        else:
            try:
                name = name_bytes.decode("utf-8")
                parts.append(b'"name":' + json.dumps(name, ensure_ascii=False).translate(_GO_ESCAPES).encode("utf-8") + b",")
            except UnicodeDecodeError:
                parts.append(b'"name_raw":"' + base64.b64encode(name_bytes) + b'",')
        if size:
            parts.append(b'"size":%d,' % size)
        if payload is None:
            parts.append(b'"payload":null,')
        else:
            parts.append(b'"payload":"' + base64.b64encode(payload) + b'",')
        parts.append(b'"position":%d}\n' % self._pos)
        self._pos += 1
        self._emit(b"".join(parts))

    # ---- listener -----------------------------------------------------------------------------
    def on_raw(self, data: memoryview) -> None:
        self._pending += data

    def on_member(self, member: Member) -> None:
        self._flush()
        self._member = member
        self._crc = 0
        # A GNU sparse payload is not the file's content (that is expanded on disk): it is kept
        # verbatim in raw segments, and the file entry has no size, so reassembly is exact.
        self._payload_is_raw = member.sparse
        if not member.name_bytes.rpartition(b"/")[2].startswith(b".wh."):
            self.uids.add(int(member.info.uid))
            self.gids.add(int(member.info.gid))

    def on_payload(self, data: memoryview) -> None:
        if self._payload_is_raw:
            self._pending += data
            if len(self._pending) >= _TRAIL_CHUNK:
                self._flush()
            return
        self._crc = crc64.update(self._crc, data)

    def on_member_end(self) -> None:
        member = self._member
        assert member is not None
        if self._payload_is_raw:
            self._flush()
            self._file_entry(member, 0, None)
        else:
            self._file_entry(member, member.body_size, crc64.to_bytes(self._crc) if member.body_size else None)
        self._member = None

    def on_end(self) -> None:
        self._flush()
        self._trailing_open = True

    def on_trailing(self, data: memoryview) -> None:
        # Segments of 1 MiB counted from the end-of-archive marker, like Go's padding reads,
        # whatever the sizes of the chunks the stream was fed in.
        trail = self._trail
        trail += data
        while len(trail) >= _TRAIL_CHUNK:
            self._segment(trail[:_TRAIL_CHUNK])
            del trail[:_TRAIL_CHUNK]

    def finish(self) -> None:
        """Flush pending bytes and write the final (possibly empty) segment like Go."""
        if self._trail:
            self._segment(self._trail)
            self._trail = bytearray()
        self._flush()
        self._segment(b"")

    # ---- output -------------------------------------------------------------------------------
    def write(self, fileobj: BinaryIO) -> None:
        """Write the gzip'd JSON lines to ``fileobj`` (call after :meth:`finish`)."""
        if not self._sealed:
            self._sealed = True
            self._compressed.append(self._gz.compress(self._lines))
            self._compressed.append(self._gz.flush())
            self._lines = bytearray()
        for chunk in self._compressed:
            fileobj.write(chunk)

    @property
    def entries_count(self) -> int:
        return self._pos


# The shapes this module (and Go's tar-split) write; anything else goes through json.loads.
_SEGMENT_LINE = re.compile(rb'\{"type":2,"payload":"([A-Za-z0-9+/=]*)","position":([0-9]+)\}\s*')
_FILE_LINE = re.compile(
    rb'\{"type":1,"name":"([^"\\\x00-\x1f]*)",(?:"size":([0-9]+),)?"payload":(?:"([A-Za-z0-9+/=]*)"|null),"position":([0-9]+)\}\s*'
)


def _decode_line(line: bytes) -> dict[str, Any]:
    """One JSON line -> entry dict; the common shapes are decoded without the json module."""
    m = _SEGMENT_LINE.fullmatch(line)
    if m is not None:
        return {"type": SEGMENT, "payload": m.group(1).decode("ascii"), "position": int(m.group(2))}
    m = _FILE_LINE.fullmatch(line)
    if m is not None:
        try:
            name = m.group(1).decode("utf-8")
        except UnicodeDecodeError:
            return cast(dict[str, Any], json.loads(line))
        entry: dict[str, Any] = {"type": FILE, "name": name}
        if m.group(2) is not None:
            entry["size"] = int(m.group(2))
        payload = m.group(3)
        entry["payload"] = payload.decode("ascii") if payload is not None else None
        entry["position"] = int(m.group(4))
        return entry
    return cast(dict[str, Any], json.loads(line))


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
            yield _decode_line(line)


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



#: Payloads up to this size are read into the output buffer (fewer system calls than mmap +
#: sendfile); larger ones are copied by the kernel.
_SMALL_PAYLOAD = 1 << 20
_OUT_BUFFER = 256 << 10


class _OutBuffer:
    """Gathers tar-split segments and small payloads into few large writes."""

    def __init__(self, out: BinaryIO, out_fd: int | None) -> None:
        self._out = out
        self._fd = out_fd
        self._buf = bytearray(_OUT_BUFFER + _SMALL_PAYLOAD)
        self.view = memoryview(self._buf)
        self.pos = 0

    def add(self, data: bytes) -> None:
        n = len(data)
        if self.pos + n > len(self._buf):
            self.flush()
            if n > len(self._buf):
                self._write(memoryview(data))
                return
        self.view[self.pos : self.pos + n] = data
        self.pos += n
        if self.pos >= _OUT_BUFFER:
            self.flush()

    def room(self, n: int) -> memoryview:
        """A writable view of ``n`` bytes at the end of the buffer (commit with :meth:`commit`)."""
        if self.pos + n > len(self._buf):
            self.flush()
        return self.view[self.pos : self.pos + n]

    def commit(self, n: int) -> None:
        self.pos += n
        if self.pos >= _OUT_BUFFER:
            self.flush()

    def _write(self, mv: memoryview) -> None:
        if self._fd is None:
            self._out.write(mv)
            return
        while mv:
            written = os.write(self._fd, mv)
            mv = mv[written:]

    def flush(self) -> None:
        if self.pos:
            self._write(self.view[: self.pos])
            self.pos = 0


def _read_small(src_fd: int, buf: _OutBuffer, size: int, name: str) -> int:
    """Read a ``size``-byte payload into the output buffer; return its CRC-64.

    A file that is shorter or longer than recorded fails the integrity check, as in Go (which
    copies the whole file through the checksum).
    """
    room = buf.room(size + 1)
    got = 0
    while got <= size:
        n = os.readv(src_fd, [room[got:]])
        if n <= 0:
            break
        got += n
    if got != size:
        raise ChecksumMismatch(f'file integrity checksum failed for "{name}"')
    crc = crc64.update(0, room[:size])
    buf.commit(size)
    return crc


def _copy_payload(src_fd: int, out: BinaryIO, out_fd: int | None, size: int, name: str) -> int:
    """Copy ``size`` bytes of ``src_fd`` to the output and return their CRC-64.

    The file is memory-mapped: the CRC is computed over the mapping and the bytes go to the
    output with ``sendfile`` (kernel copy) when the output has a file descriptor.
    """
    st = os.fstat(src_fd)
    if st.st_size != size:
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
    buf = _OutBuffer(out, out_fd)
    b64decode = base64.b64decode
    for entry in iter_entries(tar_split):
        etype = entry.get("type")
        if etype == SEGMENT:
            payload = entry.get("payload")
            if payload:
                data = b64decode(payload)
                buf.add(data)
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
            if size <= _SMALL_PAYLOAD:
                crc = _read_small(fd, buf, size, name)
            else:
                buf.flush()
                crc = _copy_payload(fd, out, out_fd, size, name)
        finally:
            os.close(fd)
        expected = b64decode(entry.get("payload") or "")
        if expected and crc64.to_bytes(crc) != expected:
            raise ChecksumMismatch(f'file integrity checksum failed for "{name}"')
        total += size
    buf.flush()
    return total
