"""File-system helpers: ``statfs`` magic, mount points, private bind mounts (via libc)."""

from __future__ import annotations

import ctypes
import os

from cs_core.fsutil import libc

#: ``BTRFS_SUPER_MAGIC``.
BTRFS_MAGIC = 0x9123683E

_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2


class _Statfs(ctypes.Structure):
    """``struct statfs`` on 64-bit Linux (only ``f_type`` is read; padded generously)."""

    _fields_ = [
        ("f_type", ctypes.c_long),
        ("f_bsize", ctypes.c_long),
        ("f_blocks", ctypes.c_ulong),
        ("f_bfree", ctypes.c_ulong),
        ("f_bavail", ctypes.c_ulong),
        ("f_files", ctypes.c_ulong),
        ("f_ffree", ctypes.c_ulong),
        ("f_fsid", ctypes.c_int * 2),
        ("f_namelen", ctypes.c_long),
        ("f_frsize", ctypes.c_long),
        ("f_flags", ctypes.c_long),
        ("f_spare", ctypes.c_long * 8),
    ]


def _raise_errno(what: str, path: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}", path)


def fs_magic(path: str) -> int:
    """The ``f_type`` of ``statfs(path)``."""
    buf = _Statfs()
    if libc().statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        _raise_errno("statfs", path)
    return int(buf.f_type) & 0xFFFFFFFF


def _unescape(field: str) -> str:
    """Undo the octal escapes (``\\040`` ...) of /proc/self/mountinfo."""
    out = bytearray()
    raw = field.encode()
    i = 0
    while i < len(raw):
        digits = raw[i + 1 : i + 4]
        if raw[i] == 0x5C and len(digits) == 3 and digits.isdigit():
            out.append(int(digits, 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


def mount_points() -> list[str]:
    """Every mount point of this process's mount namespace (``/proc/self/mountinfo`` order)."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        return [_unescape(line.split()[4]) for line in fh if line.strip()]


def is_mount_point(path: str) -> bool:
    """Whether ``path`` (resolved) is a mount point."""
    return os.path.realpath(path) in mount_points()


def make_private_mount(path: str) -> bool:
    """Make ``path`` a private mount point, bind-mounting it onto itself when it is not one.

    Returns whether a bind mount was created (so the caller knows to unmount it later).
    """
    c = libc()
    target = os.fsencode(os.path.realpath(path))
    created = False
    if not is_mount_point(path):
        if c.mount(target, target, b"none", ctypes.c_ulong(_MS_BIND | _MS_REC), None) != 0:
            _raise_errno("bind mount", path)
        created = True
    if c.mount(b"none", target, None, ctypes.c_ulong(_MS_PRIVATE), None) != 0:
        _raise_errno("make private", path)
    return created


def unmount(path: str) -> None:
    """Lazily unmount ``path``; a path that is not mounted is not an error."""
    if libc().umount2(os.fsencode(os.path.realpath(path)), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT
            raise OSError(err, f"unmount: {os.strerror(err)}", path)
