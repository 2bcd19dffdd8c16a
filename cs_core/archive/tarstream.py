"""A push-driven, block-level tar parser (ustar, GNU long names, PAX, base-256 numbers).

The parser is fed the uncompressed stream in chunks of any size (:meth:`TarParser.feed`) and
reports to its listeners, in stream order:

* ``on_raw(data)`` — bytes that are *not* member payload (header blocks, PAX/GNU extension
  headers and their bodies, padding, the end-of-archive blocks);
* ``on_member(member)`` — a complete member header (after PAX/GNU resolution);
* ``on_payload(data)`` — payload bytes of the current member;
* ``on_member_end()`` — the payload of the current member is complete;
* ``on_end()`` — the end-of-archive marker was read (or the stream ended on a block boundary);
* ``on_trailing(data)`` — bytes after the end-of-archive marker.

Memoryviews handed to listeners are only valid during the call.  One parse serves several
consumers at once (the tar-split recorder, the UID/GID logger and the extractor).

Errors: a stream that ends inside a block or payload raises ``UnexpectedEOF``; a block that
is not a valid header raises ``InvalidTarHeader`` (texts ``unexpected EOF`` / ``invalid tar
header`` as Go's ``archive/tar``).
"""

from __future__ import annotations

import os
import struct
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from cs_core.archive.sparse import pax_sparse, valid_map
from cs_core.errors import InvalidTarHeader, UnexpectedEOF

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
#: Types whose header ``size`` field does not announce a body (Go ``isHeaderOnlyType``).
HEADER_ONLY_TYPES = frozenset(b"123456")
_SPECIAL_LIMIT = 1 << 20


@dataclass(slots=True)
class Member:
    """One tar member as the stream describes it."""

    #: Standard-library view of the header (name/linkname decoded with surrogateescape).
    info: tarfile.TarInfo
    #: The name exactly as in the stream (after PAX/GNU resolution).
    name_bytes: bytes
    linkname_bytes: bytes
    mtime_ns: int
    atime_ns: int | None
    #: ``SCHILY.xattr.*`` records (name without prefix -> raw value).
    xattrs: dict[str, bytes] = field(default_factory=dict)
    #: Payload bytes following the header (0 for header-only types).
    body_size: int = 0
    #: GNU sparse (PAX 0.x): the data regions ``(offset, length)``; the payload holds only them.
    sparse_map: list[tuple[int, int]] | None = None
    #: GNU sparse 1.0: the map is at the start of the payload.
    sparse_in_data: bool = False

    @property
    def sparse(self) -> bool:
        """Whether the payload is the data of a GNU sparse file (``info.size`` is the real size)."""
        return self.sparse_map is not None or self.sparse_in_data

    @property
    def typeflag(self) -> bytes:
        return self.info.type

    @property
    def size(self) -> int:
        """The header's size field (what Go's ``hdr.Size`` reports)."""
        return int(self.info.size)


class TarListener(Protocol):
    """Receives parse events; see the module docstring."""

    def on_raw(self, data: memoryview) -> None: ...

    def on_member(self, member: Member) -> None: ...

    def on_payload(self, data: memoryview) -> None: ...

    def on_member_end(self) -> None: ...

    def on_end(self) -> None: ...

    def on_trailing(self, data: memoryview) -> None: ...


class BaseListener:
    """A listener that ignores every event (subclass and override what you need)."""

    def on_raw(self, data: memoryview) -> None:
        pass

    def on_member(self, member: Member) -> None:
        pass

    def on_payload(self, data: memoryview) -> None:
        pass

    def on_member_end(self) -> None:
        pass

    def on_end(self) -> None:
        pass

    def on_trailing(self, data: memoryview) -> None:
        pass


def _parse_octal(b: bytes) -> int:
    s = b.strip(b" \x00")
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise InvalidTarHeader("archive/tar: invalid tar header") from None


def _parse_base256(b: bytes) -> int:
    inv = 0xFF if b[0] & 0x40 else 0x00
    x = 0
    for i, c in enumerate(b):
        c ^= inv
        if i == 0:
            c &= 0x7F
        x = (x << 8) | c
    return -x - 1 if inv else x


def parse_numeric(b: bytes) -> int:
    """Octal or base-256 (GNU) number field."""
    if b and b[0] & 0x80:
        return _parse_base256(b)
    return _parse_octal(b)


def _cstr(b: bytes) -> bytes:
    i = b.find(0)
    return b if i < 0 else b[:i]


def _checksum_ok(blk: bytes, stored_field: bytes) -> bool:
    try:
        stored = _parse_octal(stored_field)
    except InvalidTarHeader:
        return False
    unsigned = sum(blk) - sum(stored_field) + 8 * 32
    if stored == unsigned:
        return True
    signed = sum(c - 256 if c > 127 else c for c in blk) - sum(c - 256 if c > 127 else c for c in stored_field) + 8 * 32
    return stored == signed


#: The ustar/GNU header block: name mode uid gid size mtime chksum typeflag linkname magic
#: version uname gname devmajor devminor prefix(155) pad(12).
_HEADER = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s12s")


def parse_pax(data: bytes) -> list[tuple[str, bytes]]:
    """Parse PAX extended header records into (key, raw value) pairs."""
    out: list[tuple[str, bytes]] = []
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0 and not data[pos:].strip(b"\x00"):
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise InvalidTarHeader("archive/tar: invalid tar header")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise InvalidTarHeader("archive/tar: invalid tar header") from None
        end = pos + length
        if length <= 0 or end > n or data[end - 1] != 0x0A:
            raise InvalidTarHeader("archive/tar: invalid tar header")
        rec = data[sp + 1 : end - 1]
        eq = rec.find(b"=")
        if eq < 0:
            raise InvalidTarHeader("archive/tar: invalid tar header")
        out.append((rec[:eq].decode("utf-8", "surrogateescape"), rec[eq + 1 :]))
        pos = end
    return out


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    sec, _, frac = text.partition(".")
    try:
        ns = int(sec or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    except ValueError:
        raise InvalidTarHeader("archive/tar: invalid tar header") from None
    return -ns if neg else ns


_ST_HEADER, _ST_SPECIAL, _ST_PAYLOAD, _ST_PAD, _ST_ZERO2, _ST_TRAILER = range(6)


class TarParser:
    """Incremental tar parser; see the module docstring."""

    def __init__(self, listeners: Sequence[TarListener] = ()) -> None:
        self.listeners: list[TarListener] = list(listeners)
        self._state = _ST_HEADER
        self._blk = bytearray()
        self._remaining = 0
        self._special = bytearray()
        self._special_type = b""
        self._special_pad = 0
        self._pax: list[tuple[str, bytes]] = []
        self._long_name: bytes | None = None
        self._long_link: bytes | None = None
        self._ended = False
        #: Number of bytes fed so far.
        self.offset = 0

    # ---- public --------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        """Whether the end-of-archive marker has been read."""
        return self._ended

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Process the next chunk of the stream."""
        mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
        self.offset += len(mv)
        pos = 0
        n = len(mv)
        while pos < n:
            st = self._state
            if st == _ST_PAYLOAD:
                take = min(self._remaining, n - pos)
                chunk = mv[pos : pos + take]
                for lst in self.listeners:
                    lst.on_payload(chunk)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._finish_member()
            elif st == _ST_TRAILER:
                chunk = mv[pos:]
                for lst in self.listeners:
                    lst.on_trailing(chunk)
                pos = n
            elif st == _ST_PAD:
                take = min(self._remaining, n - pos)
                self._raw(mv[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _ST_HEADER
            elif st == _ST_SPECIAL:
                take = min(self._remaining, n - pos)
                chunk = mv[pos : pos + take]
                self._raw(chunk)
                self._special += chunk
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._finish_special()
            else:  # header or second zero block: need a full block
                need = BLOCK - len(self._blk)
                if not self._blk and n - pos >= BLOCK:
                    blk = bytes(mv[pos : pos + BLOCK])
                    pos += BLOCK
                else:
                    take = min(need, n - pos)
                    self._blk += mv[pos : pos + take]
                    pos += take
                    if len(self._blk) < BLOCK:
                        continue
                    blk = bytes(self._blk)
                    self._blk.clear()
                self._raw(memoryview(blk))
                if st == _ST_ZERO2:
                    if blk != ZERO_BLOCK:
                        raise InvalidTarHeader("archive/tar: invalid tar header")
                    self._end()
                else:
                    self._header(blk)

    def close(self) -> None:
        """Signal the end of the stream; raises ``UnexpectedEOF`` when it ended mid-member."""
        st = self._state
        if st in (_ST_HEADER, _ST_ZERO2) and not self._blk:
            if self._pax or self._long_name is not None or self._long_link is not None:
                raise UnexpectedEOF()
            if not self._ended:
                self._end()
            return
        if st == _ST_TRAILER:
            return
        raise UnexpectedEOF()

    def pump(self, stream: BinaryIO, bufsize: int = 1 << 20) -> None:
        """Feed all of ``stream`` and close."""
        buf = bytearray(bufsize)
        mv = memoryview(buf)
        readinto = getattr(stream, "readinto", None)
        while True:
            if readinto is not None:
                got = readinto(mv)
                if not got:
                    break
                self.feed(mv[:got])
            else:
                data = stream.read(bufsize)
                if not data:
                    break
                self.feed(data)
        self.close()

    # ---- internals -------------------------------------------------------------------------
    def _raw(self, data: memoryview) -> None:
        for lst in self.listeners:
            lst.on_raw(data)

    def _end(self) -> None:
        self._ended = True
        self._state = _ST_TRAILER
        for lst in self.listeners:
            lst.on_end()

    def _finish_member(self) -> None:
        for lst in self.listeners:
            lst.on_member_end()
        self._state = _ST_PAD if self._remaining_pad else _ST_HEADER
        self._remaining = self._remaining_pad

    _remaining_pad = 0

    def _finish_special(self) -> None:
        data = bytes(self._special)
        self._special.clear()
        t = self._special_type
        if t == b"L":
            self._long_name = _cstr(data)
        elif t == b"K":
            self._long_link = _cstr(data)
        else:  # x / g
            self._pax.extend(parse_pax(data))
        if t == b"g":
            self._emit_global()
        self._remaining = self._special_pad
        self._state = _ST_PAD if self._remaining else _ST_HEADER

    def _emit_global(self) -> None:
        records = self._pax
        self._pax = []
        name = self._global_name
        ti = tarfile.TarInfo(os.fsdecode(name))
        ti.type = b"g"
        ti.size = 0
        ti.pax_headers = {k: v.decode("utf-8", "surrogateescape") for k, v in records}
        m = Member(ti, name, b"", 0, None, {}, 0)
        for lst in self.listeners:
            lst.on_member(m)
        for lst in self.listeners:
            lst.on_member_end()

    _global_name = b""

    def _header(self, blk: bytes) -> None:
        if blk == ZERO_BLOCK:
            if self._pax or self._long_name is not None or self._long_link is not None:
                raise InvalidTarHeader("archive/tar: invalid tar header")
            self._state = _ST_ZERO2
            return
        (name, f_mode, f_uid, f_gid, f_size, f_mtime, f_chksum, typeflag, linkname, magic, version,
         uname, gname, f_devmajor, f_devminor, prefix, _pad) = _HEADER.unpack(blk)
        if not _checksum_ok(blk, f_chksum):
            raise InvalidTarHeader("archive/tar: invalid tar header")
        size = parse_numeric(f_size)
        if size < 0:
            raise InvalidTarHeader("archive/tar: invalid tar header")
        if typeflag in (b"L", b"K", b"x", b"g"):
            if size > _SPECIAL_LIMIT:
                raise InvalidTarHeader("archive/tar: invalid tar header")
            self._special_type = typeflag
            if typeflag == b"g":
                self._global_name = _cstr(name)
            self._special_pad = -size % BLOCK
            self._remaining = size
            if size == 0:
                self._finish_special()
            else:
                self._state = _ST_SPECIAL
            return
        gnu = magic == b"ustar " and version == b" \x00"
        ustar = magic == b"ustar\x00"
        name = _cstr(name)
        if ustar:
            prefix = _cstr(prefix[:131] if blk[508:512] == b"tar\x00" else prefix)
            if prefix:
                name = prefix + b"/" + name
        linkname = _cstr(linkname)
        mode = parse_numeric(f_mode)
        uid = parse_numeric(f_uid)
        gid = parse_numeric(f_gid)
        mtime = parse_numeric(f_mtime)
        devmajor = devminor = 0
        atime_ns: int | None = None
        if ustar or gnu:
            uname = _cstr(uname)
            gname = _cstr(gname)
            if typeflag in (b"3", b"4"):
                devmajor = parse_numeric(f_devmajor)
                devminor = parse_numeric(f_devminor)
            if gnu and blk[345] != 0:
                try:
                    atime_ns = parse_numeric(blk[345:357]) * 1_000_000_000
                except InvalidTarHeader:
                    atime_ns = None
        else:
            uname = gname = b""
        mtime_ns = mtime * 1_000_000_000
        xattrs: dict[str, bytes] = {}
        pax_str: dict[str, str] = {}
        for key, value in self._pax:
            pax_str[key] = value.decode("utf-8", "surrogateescape")
            try:
                if key == "path":
                    name = value
                elif key == "linkpath":
                    linkname = value
                elif key == "size":
                    size = int(value)
                elif key == "uid":
                    uid = int(value)
                elif key == "gid":
                    gid = int(value)
                elif key == "uname":
                    uname = value
                elif key == "gname":
                    gname = value
                elif key == "mtime":
                    mtime_ns = _pax_time_ns(value)
                elif key == "atime":
                    atime_ns = _pax_time_ns(value)
                elif key.startswith("SCHILY.xattr."):
                    xattrs[key[len("SCHILY.xattr.") :]] = value
            except ValueError:
                raise InvalidTarHeader("archive/tar: invalid tar header") from None
        if size < 0:
            raise InvalidTarHeader("archive/tar: invalid tar header")
        if self._long_name is not None:
            name = self._long_name
        if self._long_link is not None:
            linkname = self._long_link
        raw_size = size
        sparse = pax_sparse(self._pax) if self._pax else None
        if sparse is not None:
            if typeflag[0] in HEADER_ONLY_TYPES:
                raise InvalidTarHeader("archive/tar: invalid tar header")
            sparse_name, sparse_size, sparse_map, sparse_in_data = sparse
            if sparse_name is not None:
                name = sparse_name
            if sparse_size is not None:
                size = sparse_size
            if size < 0 or (sparse_map is not None and not valid_map(sparse_map, size)):
                raise InvalidTarHeader("archive/tar: invalid tar header")
        self._pax = []
        self._long_name = self._long_link = None
        if typeflag in (b"\x00", b"7"):
            typeflag = b"5" if name.endswith(b"/") else b"0"
        ti = tarfile.TarInfo(os.fsdecode(name))
        ti.type = typeflag
        ti.mode = mode
        ti.uid = uid
        ti.gid = gid
        ti.size = size
        ti.mtime = mtime_ns // 1_000_000_000 if mtime_ns % 1_000_000_000 == 0 else mtime_ns / 1e9
        ti.linkname = os.fsdecode(linkname)
        ti.uname = uname.decode("utf-8", "surrogateescape")
        ti.gname = gname.decode("utf-8", "surrogateescape")
        ti.devmajor = devmajor
        ti.devminor = devminor
        ti.pax_headers = pax_str
        body = 0 if typeflag[0] in HEADER_ONLY_TYPES else raw_size
        member = Member(ti, name, linkname, mtime_ns, atime_ns, xattrs, body)
        if sparse is not None:
            member.sparse_map, member.sparse_in_data = sparse_map, sparse_in_data
        for lst in self.listeners:
            lst.on_member(member)
        self._remaining_pad = -body % BLOCK
        if body:
            self._remaining = body
            self._state = _ST_PAYLOAD
        else:
            self._finish_member()
