"""Optional progress display for long applies/diffs (rich bar on stderr, only on a TTY).

The CLI opts in by wrapping a stream: ``stream = with_progress(stream, "applying", total)``.
When stderr is not a terminal (or ``rich`` is missing) the stream is returned unchanged, so
the hot path has no cost and nothing is written.
"""

from __future__ import annotations

import io
import sys
from typing import Any, BinaryIO, cast


def _start_bar(label: str, total: int | None) -> tuple[Any, Any]:
    """A started transient rich bar on stderr and its task."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task(label, total=total)
    progress.start()
    return progress, task


class _ProgressReader(io.RawIOBase):
    def __init__(self, inner: BinaryIO, label: str, total: int | None) -> None:
        self._inner = inner
        self._progress, self._task = _start_bar(label, total)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        if n:
            self._progress.advance(self._task, n)
        return n

    def close(self) -> None:
        if not self.closed:
            self._progress.stop()
        super().close()


def with_progress(stream: BinaryIO, label: str, total: int | None = None, *, enabled: bool | None = None) -> BinaryIO:
    """Wrap ``stream`` with a progress bar when stderr is a TTY (or ``enabled`` forces it)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return stream
    try:
        return cast(BinaryIO, io.BufferedReader(_ProgressReader(stream, label, total), 1 << 20))
    except ImportError:
        return stream


class _ProgressWriter(io.RawIOBase):
    def __init__(self, inner: BinaryIO, label: str, total: int | None) -> None:
        self._inner = inner
        self._progress, self._task = _start_bar(label, total)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._inner.write(b)
        n = len(b)
        self._progress.advance(self._task, n)
        return n

    def flush(self) -> None:
        self._inner.flush()

    def close(self) -> None:
        if not self.closed:
            self._inner.flush()
            self._progress.stop()
        super().close()


def with_write_progress(out: BinaryIO, label: str, total: int | None = None, *, enabled: bool | None = None) -> BinaryIO:
    """Wrap an output stream with a progress bar when stderr is a TTY; ``close()`` leaves ``out`` open."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return out
    try:
        return cast(BinaryIO, _ProgressWriter(out, label, total))
    except ImportError:
        return out
