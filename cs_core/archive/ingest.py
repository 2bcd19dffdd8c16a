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
import queue
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from cs_core.archive.compression import COMPRESSION_NONE, detect_compression, open_decompressed
from cs_core.archive.tarsplit import TarSplitRecorder
from cs_core.archive.tarstream import TarListener, TarParser

PEEK = 10240
_CHUNK = 256 << 10
#: Buffers circulating between the reader thread and the parser (bounds memory).
_NBUF = 8


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
        self._raw_readinto = getattr(raw, "readinto", None)
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
        elif self._raw_readinto is not None:
            n = self._raw_readinto(b) or 0
        else:
            data = self._raw.read(len(b))
            n = len(data)
            b[:n] = data
        if n:
            self.hash.update(memoryview(b)[:n])
            self.count += n
        return n


class _Prefetcher:
    """A background thread that fills buffers from the source while the caller parses.

    Reading, decompressing and hashing release the GIL, so they run on a second core while
    the main thread parses and extracts.  Memory is bounded: ``_NBUF`` buffers of ``_CHUNK``
    bytes circulate between the thread and the consumer.  Errors are delivered in stream
    order, at the point where the consumer reaches them.  ``after_eof`` runs in the thread
    once the source is exhausted (draining the raw input); :meth:`join` waits for it.
    """

    def __init__(self, source: BinaryIO, hashing: bool, after_eof: Callable[[], None]) -> None:
        self._source = source
        self.hash: Any = hashlib.sha256() if hashing else None
        self._after_eof = after_eof
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(_NBUF):
            self._free.put(bytearray(_CHUNK))
        self._full: queue.SimpleQueue[tuple[bytearray | None, int, BaseException | None]] = queue.SimpleQueue()
        self._late_error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="cs-ingest-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        readinto = getattr(self._source, "readinto", None)
        try:
            while True:
                buf = self._free.get()
                if buf is None or self._stopped:
                    return
                if readinto is not None:
                    n = readinto(buf) or 0
                else:
                    data = self._source.read(len(buf))
                    n = len(data)
                    buf[:n] = data
                if n and self.hash is not None:
                    self.hash.update(memoryview(buf)[:n])
                self._full.put((buf, n, None))
                if not n:
                    break
            if self._stopped:
                return  # abandoned: nobody waits for the rest of the raw input
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, in stream order
            self._full.put((None, 0, exc))
            return
        try:
            self._after_eof()
        except BaseException as exc:  # noqa: BLE001 - raised by join()
            self._late_error = exc

    def get(self) -> tuple[bytearray, int]:
        """The next filled buffer and its length (0 at the end); give it back with :meth:`release`."""
        buf, n, exc = self._full.get()
        if exc is not None:
            self._full.put((None, 0, exc))  # stays at the end of the stream
            raise exc
        assert buf is not None
        return buf, n

    def release(self, buf: bytearray) -> None:
        self._free.put(buf)

    def join(self) -> None:
        """Wait for the thread (source and raw input fully read); re-raise a late error."""
        self._thread.join()
        if self._late_error is not None:
            raise self._late_error

    def stop(self) -> None:
        """Ask the thread to stop at the next buffer (it may be blocked in a read)."""
        self._stopped = True
        self._free.put(None)

    def shutdown(self, timeout: float = 1.0) -> None:
        """:meth:`stop`, then wait (bounded) for the thread.

        Run for abandoned streams and at interpreter exit, so the thread is not left inside a
        read of a shared buffered file (e.g. ``sys.stdin``) while the interpreter finalizes
        (which aborts with "could not acquire lock ... at interpreter shutdown").
        """
        self.stop()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


class TarStream(io.RawIOBase):
    """The uncompressed tar stream; reading it parses and records it.

    The bytes come from a :class:`_Prefetcher` thread; ``hash``/``count`` describe the whole
    uncompressed stream once it was read to the end.
    """

    def __init__(self, source: BinaryIO, parser: TarParser, *, hashing: bool = True,
                 after_eof: Callable[[], None] = lambda: None) -> None:
        self._source = source
        self.parser = parser
        self._hashing = hashing
        self._after_eof = after_eof
        self._pump: _Prefetcher | None = None
        self._finalizer: weakref.finalize | None = None
        self._buf: bytearray | None = None
        self._pos = 0
        self._len = 0
        self.count = 0
        self._eof = False

    @property
    def hash(self) -> Any:
        """The sha256 of the uncompressed stream (``None`` when not hashing)."""
        return self._start().hash

    def _start(self) -> _Prefetcher:
        pump = self._pump
        if pump is None:
            pump = self._pump = _Prefetcher(self._source, self._hashing, self._after_eof)
            # A stream abandoned after an error must not leave the thread waiting forever.
            self._finalizer = weakref.finalize(self, pump.shutdown)
        return pump

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        """Fetch the next chunk into ``self._buf``; False (and the parser closed) at EOF."""
        pump = self._start()
        buf, n = pump.get()
        if n == 0:
            pump.release(buf)
            self._eof = True
            self.parser.close()
            return False
        self._buf, self._pos, self._len = buf, 0, n
        return True

    def _take(self, limit: int, out: memoryview | None = None) -> int:
        """Parse and count up to ``limit`` bytes of the current chunk, copying them to ``out`` first."""
        buf = self._buf
        assert buf is not None
        start = self._pos
        end = min(self._len, start + limit)
        n = end - start
        chunk = memoryview(buf)[start:end]
        if out is not None:
            out[:n] = chunk
        self.count += n
        self.parser.feed(chunk)
        self._pos = end
        if end >= self._len:
            self._buf = None
            self._start().release(buf)
        return n

    def readinto(self, b: Any) -> int:
        if self._buf is None and (self._eof or not self._next()):
            return 0
        out = memoryview(b).cast("B")
        return self._take(len(out), out)

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
        while True:
            if self._buf is None and (self._eof or not self._next()):
                return
            self._take(self._len)

    def wait_input(self) -> None:
        """After EOF: wait until the raw input was read completely (re-raising late errors)."""
        self._start().join()

    def close(self) -> None:
        if self._pump is not None and not self._eof:
            self._pump.shutdown()
        super().close()


class LayerIngest:
    """Wraps the raw (possibly compressed) input of applydiff / import-layer."""

    def __init__(self, raw: BinaryIO) -> None:
        head = raw.read(PEEK) or b""
        self.compression = detect_compression(head)
        self._raw = _HashingReader(head, raw)
        source: BinaryIO
        if self.compression == COMPRESSION_NONE:
            source = cast(BinaryIO, self._raw)
        else:
            source = open_decompressed(cast(BinaryIO, io.BufferedReader(self._raw, _CHUNK)), self.compression,
                                       buffered=False)
        self._source = source
        self.recorder = TarSplitRecorder()
        # Uncompressed input: the raw digest is the tar digest (HEAD skips the second hash too).
        self._stream = TarStream(source, TarParser([self.recorder]), hashing=self.compression != COMPRESSION_NONE,
                                 after_eof=self._drain_raw)
        self._result: IngestResult | None = None

    def _drain_raw(self) -> None:
        """Consume whatever the decompressor left unread (e.g. bytes after a gzip member)."""
        buf = bytearray(_CHUNK)
        while self._raw.readinto(buf):
            pass

    @property
    def tar_stream(self) -> BinaryIO:
        """The uncompressed tar stream drivers extract from (a :class:`TarStream`)."""
        return cast(BinaryIO, self._stream)

    def finish(self) -> IngestResult:
        """Drain the rest of the input and return digests, sizes and ID sets."""
        if self._result is not None:
            return self._result
        self._stream.drain()
        self._stream.wait_input()
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
        self._stream.close()
        try:
            self._source.close()
        except Exception:  # noqa: BLE001 - closing a failed decompressor must not mask errors
            pass
