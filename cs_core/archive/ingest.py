"""``LayerIngest``: the read side of ApplyDiff (storage.md 2.5).

Raw input -> sha256/count of the raw bytes -> decompression -> sha256/count of the tar ->
one :class:`~cs_core.archive.tarstream.TarParser` feeding the tar-split recorder (which also
logs UIDs/GIDs).  Drivers read ``.tar_stream`` (a plain binary file-like; every byte read
through it is parsed and recorded).  The core's extractor recognises the stream and attaches
itself to the same parser, so the tar is parsed only once.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from cs_core.archive.compression import COMPRESSION_NONE, detect_compression, open_decompressed
from cs_core.archive.tarsplit import TarSplitRecorder
from cs_core.archive.tarstream import TarListener, TarParser

PEEK = 10240
_CHUNK = 1 << 20


@dataclass(slots=True)
class IngestResult:
    """What the layer store records after a successful ApplyDiff."""

    compressed_digest: str
    compressed_size: int
    uncompressed_digest: str
    uncompressed_size: int
    compression: int
    uidset: list[int] = field(default_factory=list)
    gidset: list[int] = field(default_factory=list)


class _HashingReader(io.RawIOBase):
    """Reads the raw input (peeked bytes first), hashing and counting what passes."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            data = self._raw.read(len(b))
            n = len(data)
            b[:n] = data
        if n:
            self.hash.update(memoryview(b)[:n])
            self.count += n
        return n


class TarStream(io.RawIOBase):
    """The uncompressed tar stream; reading it parses and records it."""

    def __init__(self, source: BinaryIO, parser: TarParser, *, hashing: bool = True) -> None:
        self._source = source
        self.parser = parser
        self.hash: Any = hashlib.sha256() if hashing else None
        self.count = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._eof:
            return 0
        mv = memoryview(b).cast("B")
        readinto = getattr(self._source, "readinto", None)
        if readinto is not None:
            n = readinto(mv) or 0
        else:
            data = self._source.read(len(mv))
            n = len(data)
            mv[:n] = data
        if n == 0:
            self._eof = True
            self.parser.close()
            return 0
        chunk = mv[:n]
        if self.hash is not None:
            self.hash.update(chunk)
        self.count += n
        self.parser.feed(chunk)
        return n

    def attach_listener(self, listener: TarListener) -> None:
        """Have ``listener`` receive the parse events of the bytes read from now on."""
        if self.count:
            raise ValueError("listeners must be attached before the stream is read")
        self.parser.listeners.append(listener)

    def detach_listener(self, listener: TarListener) -> None:
        if listener in self.parser.listeners:
            self.parser.listeners.remove(listener)

    def drain(self) -> None:
        """Read (and parse) everything that is left."""
        buf = bytearray(_CHUNK)
        while self.readinto(buf):
            pass


class LayerIngest:
    """Wraps the raw (possibly compressed) input of applydiff / import-layer."""

    def __init__(self, raw: BinaryIO) -> None:
        head = raw.read(PEEK) or b""
        self.compression = detect_compression(head)
        self._raw = _HashingReader(head, raw)
        buffered = cast(BinaryIO, io.BufferedReader(self._raw, _CHUNK))
        if self.compression == COMPRESSION_NONE:
            source = buffered
        else:
            source = open_decompressed(buffered, self.compression)
        self._source = source
        self.recorder = TarSplitRecorder()
        # Uncompressed input: the raw digest is the tar digest (HEAD skips the second hash too).
        self._stream = TarStream(source, TarParser([self.recorder]), hashing=self.compression != COMPRESSION_NONE)
        self._result: IngestResult | None = None

    @property
    def tar_stream(self) -> BinaryIO:
        """The uncompressed tar stream drivers extract from (a :class:`TarStream`)."""
        return cast(BinaryIO, self._stream)

    def finish(self) -> IngestResult:
        """Drain the rest of the input and return digests, sizes and ID sets."""
        if self._result is not None:
            return self._result
        self._stream.drain()
        # Consume whatever the decompressor left unread (e.g. bytes after a gzip member).
        while self._raw.readinto(bytearray(_CHUNK)):
            pass
        self.recorder.finish()
        self._result = IngestResult(
            compressed_digest="sha256:" + self._raw.hash.hexdigest(),
            compressed_size=self._raw.count,
            uncompressed_digest="sha256:" + (self._stream.hash or self._raw.hash).hexdigest(),
            uncompressed_size=self._stream.count,
            compression=self.compression,
            uidset=sorted(self.recorder.uids),
            gidset=sorted(self.recorder.gids),
        )
        return self._result

    def write_tar_split(self, fileobj: BinaryIO) -> None:
        """Write the gzip'd JSON-lines tar-split data (call after :meth:`finish`)."""
        if self._result is None:
            self.finish()
        self.recorder.write(fileobj)

    def close(self) -> None:
        try:
            self._source.close()
        except Exception:  # noqa: BLE001 - closing a failed decompressor must not mask errors
            pass
