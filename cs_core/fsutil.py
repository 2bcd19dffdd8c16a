"""Small file-system helpers: atomic writes, recursive removal, mount-table checks."""

from __future__ import annotations

import base64
import ctypes
import functools
import os
import secrets
import shutil
from typing import BinaryIO

from cs_core.errors import InvalidBigDataName

_COPY_CHUNK = 1 << 20


def atomic_write(path: str, data: bytes, mode: int = 0o600, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through ``.tmp-<base><random>`` + fsync + rename (a new inode)."""
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".tmp-{base}{secrets.randbelow(10**10)}")
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
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".tmp-{base}{secrets.randbelow(10**10)}")
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
    return "=" + base64.b64encode(key.encode("utf-8")).decode("ascii")
