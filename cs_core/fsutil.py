"""Small file-system helpers: atomic writes, recursive removal, mount-table checks."""

from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING, BinaryIO

from cs_core.errors import InvalidBigDataName

if TYPE_CHECKING:
    import ctypes

_COPY_CHUNK = 1 << 20


def _tmp_name(path: str) -> str:
    """``<dir>/.tmp-<base><random digits>``, next to ``path``."""
    directory, base = os.path.split(path)
    return os.path.join(directory, f".tmp-{base}{int.from_bytes(os.urandom(8), 'big') % 10**10}")


def atomic_write(path: str, data: bytes, mode: int = 0o600, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through ``.tmp-<base><random>`` + fsync + rename (a new inode)."""
    tmp = _tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fdatasync(fd)
        os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_stream(path: str, stream: BinaryIO, mode: int = 0o600, fsync: bool = True) -> int:
    """Like :func:`atomic_write`, copying from ``stream``; returns the byte count."""
    tmp = _tmp_name(path)
    total = 0
    try:
        with open(tmp, "xb") as out:
            while True:
                chunk = stream.read(_COPY_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                total += len(chunk)
            out.flush()
            if fsync:
                os.fdatasync(out.fileno())
            os.fchmod(out.fileno(), mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return total


def cache_dir() -> str:
    """Where cs-core keeps caches: ``$XDG_CACHE_HOME/cs-core`` (``~/.cache/cs-core``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cs-core")


#: How long ago (ns) a file must have changed for its time stamps to tell later changes apart.
_SETTLED_NS = 2_000_000_000


def settled(*times_ns: int) -> bool:
    """Whether the time stamps ``times_ns`` lie far enough in the past to key a cache on them.

    File times move in clock ticks: a second change within the tick of the first one leaves them
    as they were, so a cache keyed on a time that recent could miss that change.
    """
    return max(times_ns, default=-1) < time.time_ns() - _SETTLED_NS


def write_cache_file(path: str, data: bytes) -> bool:
    """Atomically replace the cache file ``path``; ``False`` (and nothing written) where that fails."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, data, fsync=False)
    except OSError:
        return False
    return True


def remove_all(path: str) -> None:
    """``rm -rf``: missing is fine; mounts below are detached first."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
        return
    del st
    import shutil

    try:
        shutil.rmtree(path)
    except OSError:
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=False)


def mount_points() -> list[str]:
    """Mount points of this process's mount namespace."""
    result = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                fields = line.split(" ")
                if len(fields) > 4:
                    result.append(fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\"))
    except OSError:
        pass
    return result


def is_mount_point(path: str) -> bool:
    """Whether ``path`` is in the mount table."""
    path = os.path.realpath(path)
    return path in mount_points()


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, for system calls Python does not wrap (mount, umount2, ioctl buffers ...).

    ``dlopen(NULL)`` finds libc's symbols in the running interpreter without running
    ``ldconfig`` the way ``ctypes.util.find_library`` does (which costs a process per start).
    """
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def unmount_below(path: str) -> None:
    """Lazily unmount everything mounted at or below ``path`` (deepest first)."""
    prefix = os.path.realpath(path)
    targets = [m for m in mount_points() if m == prefix or m.startswith(prefix + "/")]
    if not targets:
        return
    for target in sorted(targets, key=len, reverse=True):
        libc().umount2(target.encode(), 2)  # MNT_DETACH


def big_data_file_name(key: str) -> str:
    """The file name of a big-data item (storage.md 0.6)."""
    if not key:
        raise InvalidBigDataName(f"can't set empty name for big data item: {InvalidBigDataName.default_message}")
    if all(c == "." or "0" <= c <= "9" or "a" <= c <= "z" for c in key):
        return key
    import base64

    return "=" + base64.b64encode(key.encode("utf-8")).decode("ascii")
