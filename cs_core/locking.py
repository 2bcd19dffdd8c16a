"""Inter-process read/write locks compatible with Go's containers/storage.

POSIX record locks (``fcntl(F_SETLKW)`` over the whole file, never ``flock``) on lock files
that also carry a 64-byte *last-writer token*: 8 bytes little-endian nanosecond time, 8 bytes
little-endian per-process counter, 4 bytes little-endian PID, 44 random bytes.  A writer
records a new token before writing data; a reader compares the token with the one it saw at
its last load and reloads when it changed.

fcntl locks belong to the process and vanish when *any* descriptor of the file is closed, so
the process keeps exactly one :class:`LockFile` per absolute path (:func:`get_lockfile`), which
opens the file when its hold count goes from 0 to 1 and closes it when it drops back to 0.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import struct
import threading
import time

from cs_core.errors import StorageError

TOKEN_SIZE = 64
_counter = itertools.count(1)
_registry: dict[str, LockFile] = {}
_registry_guard = threading.Lock()


def new_token() -> bytes:
    """A fresh last-writer token."""
    return (
        struct.pack("<qQI", time.time_ns(), next(_counter), os.getpid() & 0xFFFFFFFF)
        + os.urandom(TOKEN_SIZE - 20)
    )


class LockFile:
    """One lock file of this process: shared/exclusive fcntl locks plus the last-writer token."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._fd = -1
        self._holders = 0
        self._exclusive = False
        self._mutex = threading.RLock()

    # ---- locking --------------------------------------------------------------------------
    def _open(self) -> None:
        parent = os.path.dirname(self.path)
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, mode=0o700, exist_ok=True)
        flags = (os.O_RDONLY if self.read_only else os.O_RDWR) | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o644)

    def _fcntl(self, kind: int) -> None:
        while True:
            try:
                fcntl.lockf(self._fd, kind | 0)
                return
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.EDEADLK):
                    time.sleep(0.01)
                    continue
                raise

    def _acquire(self, exclusive: bool) -> None:
        self._mutex.acquire()
        try:
            if self._holders == 0:
                self._open()
                self._fcntl(fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                self._exclusive = exclusive
            elif exclusive and not self._exclusive:
                self._fcntl(fcntl.LOCK_EX)
                self._exclusive = True
            self._holders += 1
        except BaseException:
            self._mutex.release()
            raise

    def lock(self) -> None:
        """Take the lock exclusively (writer)."""
        if self.read_only:
            raise StorageError(f"can't take write lock on read-only lock file {self.path}")
        self._acquire(True)

    def rlock(self) -> None:
        """Take the lock shared (reader)."""
        self._acquire(False)

    def unlock(self) -> None:
        """Release one hold; the file is closed (and the fcntl lock dropped) at zero."""
        if self._holders <= 0:
            raise StorageError(f"unlock of unlocked lock file {self.path}")
        self._holders -= 1
        if self._holders == 0:
            os.close(self._fd)
            self._fd = -1
            self._exclusive = False
        self._mutex.release()

    @property
    def locked(self) -> bool:
        return self._holders > 0

    @property
    def locked_exclusive(self) -> bool:
        return self._holders > 0 and self._exclusive

    def __enter__(self) -> LockFile:
        self.lock()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.unlock()

    # ---- last-writer token ---------------------------------------------------------------
    def record_write(self) -> bytes:
        """Write a new token (the lock must be held exclusively); return it."""
        if not self.locked_exclusive:
            raise StorageError(f"recording a write on {self.path} without holding it exclusively")
        token = new_token()
        written = os.pwrite(self._fd, token, 0)
        if written != TOKEN_SIZE:
            raise StorageError(f"writing last-writer token to {self.path}: no space left on device")
        return token

    def current_token(self) -> bytes:
        """The token now in the file (empty for a never-written lock file)."""
        if self._fd >= 0:
            return os.pread(self._fd, TOKEN_SIZE, 0)
        try:
            with open(self.path, "rb") as fh:
                return fh.read(TOKEN_SIZE)
        except FileNotFoundError:
            return b""

    def modified_since(self, token: bytes) -> bool:
        """Whether someone wrote after ``token`` was seen."""
        return self.current_token() != token


def get_lockfile(path: str, read_only: bool = False) -> LockFile:
    """The process-wide :class:`LockFile` for ``path`` (created on first use)."""
    path = os.path.abspath(path)
    with _registry_guard:
        lock = _registry.get(path)
        if lock is None:
            lock = LockFile(path, read_only=read_only)
            _registry[path] = lock
        elif lock.read_only != read_only and not read_only:
            raise StorageError(f"lock file {path} is already open read-only")
        return lock
