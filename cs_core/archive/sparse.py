"""GNU sparse files stored in PAX archives (formats 0.0, 0.1 and 1.0), as Go's ``archive/tar`` reads them.

A sparse member's payload holds only the data regions of the file; the *sparse map* lists
where they go (``(offset, length)`` pairs, holes in between) and the member's real size is in a
PAX record.  Formats 0.0 and 0.1 carry the map in PAX records; format 1.0 stores it at the start
of the payload as decimal numbers, one per line, padded to whole 512-byte blocks.

:func:`pax_sparse` recognises the records (the tar parser calls it); :class:`SparseExpander`
writes a member's payload to its file at the mapped offsets, so the holes stay holes.  (GNU's old
``S`` type is refused, as Go does: ``unhandled tar header type 83``.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from cs_core.errors import ArchiveError, InvalidTarHeader

BLOCK = 512
_INT = re.compile(rb"[+-]?[0-9]+")
_MAX_INT64 = (1 << 63) - 1
#: A 1.0 map longer than this is refused instead of being buffered.
_MAP_LIMIT = 1 << 20

SparseMap = list[tuple[int, int]]


def _invalid() -> InvalidTarHeader:
    return InvalidTarHeader("archive/tar: invalid tar header")


def _parse_int(text: bytes) -> int:
    if not _INT.fullmatch(text):
        raise _invalid()
    value = int(text)
    if not -(1 << 63) <= value <= _MAX_INT64:
        raise _invalid()
    return value


def pax_sparse(records: Sequence[tuple[str, bytes]]) -> tuple[bytes | None, int | None, SparseMap | None, bool] | None:
    """The GNU sparse description in a member's PAX ``records``, or ``None`` for a plain member.

    Returns ``(name, real size, map, map in data)``: the name and size replace the header's
    (either may be ``None``: keep the header's); the map is ``None`` when it is stored at the
    start of the payload (format 1.0).  Malformed records raise ``InvalidTarHeader``.
    """
    values: dict[str, bytes] = {}
    pairs: list[bytes] = []
    for key, value in records:
        if key in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
            # Format 0.0: the pairs repeat, offset first; Go joins them into a 0.1 map.
            expected = "GNU.sparse.offset" if len(pairs) % 2 == 0 else "GNU.sparse.numbytes"
            if key != expected or b"," in value:
                raise _invalid()
            pairs.append(value)
        else:
            values[key] = value
    if pairs:
        values["GNU.sparse.map"] = b",".join(pairs)
    major, minor = values.get("GNU.sparse.major"), values.get("GNU.sparse.minor")
    if major == b"0" and minor in (b"0", b"1"):
        in_data = False
    elif major == b"1" and minor == b"0":
        in_data = True
    elif major is not None or minor is not None:
        return None  # an unknown GNU sparse version: a plain member, as Go reads it
    elif values.get("GNU.sparse.map"):
        in_data = False
    else:
        return None
    name = values.get("GNU.sparse.name") or None
    size_text = values.get("GNU.sparse.size")
    if size_text is None:
        size_text = values.get("GNU.sparse.realsize")
    size = _parse_int(size_text) if size_text else None
    if in_data:
        return name, size, None, True
    fields = values.get("GNU.sparse.map", b"").split(b",")
    if fields == [b""]:
        fields = []
    if len(fields) % 2:
        raise _invalid()
    numbers = [_parse_int(f) for f in fields]
    return name, size, list(zip(numbers[0::2], numbers[1::2])), False


def valid_map(entries: SparseMap, size: int) -> bool:
    """Go's ``validateSparseEntries``: non-negative, inside ``size``, in order, not overlapping."""
    if size < 0:
        return False
    end_of_previous = 0
    for offset, length in entries:
        if offset < 0 or length < 0 or offset > _MAX_INT64 - length:
            return False
        if offset + length > size or end_of_previous > offset:
            return False
        end_of_previous = offset + length
    return True


def _map_in_data(buf: bytes | bytearray) -> tuple[SparseMap, int] | None:
    """Parse a 1.0 map from the start of ``buf``: ``(map, bytes it occupies)``, ``None`` if incomplete."""
    newlines = 0
    needed = 1
    count = -1
    pos = 0
    while pos + BLOCK <= len(buf):
        newlines += buf.count(b"\n", pos, pos + BLOCK)
        pos += BLOCK
        if count < 0 and newlines >= 1:
            count = _parse_int(bytes(buf[: buf.index(b"\n")]))
            if count < 0:
                raise _invalid()
            needed = 1 + 2 * count
        if count >= 0 and newlines >= needed:
            tokens = bytes(buf[:pos]).split(b"\n")[1:needed]
            numbers = [_parse_int(t) for t in tokens]
            return list(zip(numbers[0::2], numbers[1::2])), pos
    return None


class SparseExpander:
    """Writes a sparse member's payload to an open file at the mapped offsets."""

    def __init__(self, real_size: int, entries: SparseMap | None) -> None:
        self.real_size = real_size
        self._entries = entries
        self._map_buf: bytearray | None = bytearray() if entries is None else None
        if entries is not None and not valid_map(entries, real_size):
            raise _invalid()
        self._index = 0
        self._written = 0  # of the current entry

    def feed(self, fd: int, data: memoryview) -> None:
        """Write the next payload bytes (the 1.0 map first, if the payload starts with one)."""
        if self._map_buf is not None:
            self._map_buf += data
            parsed = _map_in_data(self._map_buf)
            if parsed is None:
                if len(self._map_buf) > _MAP_LIMIT:
                    raise _invalid()
                return
            found, used = parsed
            if not valid_map(found, self.real_size):
                raise _invalid()
            self._entries = found
            data = memoryview(bytes(self._map_buf[used:]))
            self._map_buf = None
        entries = self._entries
        assert entries is not None
        while data:
            while self._index < len(entries) and self._written == entries[self._index][1]:
                self._index += 1
                self._written = 0
            if self._index >= len(entries):
                raise ArchiveError("archive/tar: sparse file contains unreferenced data")
            offset, length = entries[self._index]
            take = min(length - self._written, len(data))
            chunk = data[:take]
            while chunk:
                n = os.pwrite(fd, chunk, offset + self._written)
                self._written += n
                chunk = chunk[n:]
            data = data[take:]

    def finish(self, fd: int) -> None:
        """Check that every mapped region got its data, then give the file its real size."""
        entries = self._entries
        if entries is None or any(length for _off, length in entries[self._index + 1 :]) or (
            self._index < len(entries) and self._written < entries[self._index][1]
        ):
            raise ArchiveError("archive/tar: sparse file references non-existent data")
        os.ftruncate(fd, self.real_size)
