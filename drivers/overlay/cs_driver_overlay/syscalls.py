"""Thin ctypes wrappers over the Linux system calls the overlay driver needs.

``mount(2)``, ``umount2(2)``, ``statfs(2)`` (only ``f_type``), the new mount API
(``fsopen``/``fsconfig``/``fsmount``/``move_mount``), and ``/proc/self/mountinfo`` parsing.
Failures raise :class:`OSError` with the C ``errno``.
"""

from __future__ import annotations

import ctypes
import os

from cs_core.fsutil import libc

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

MNT_DETACH = 0x2

#: ``statfs`` magic numbers.
OVERLAY_MAGIC = 0x794C7630
FUSE_MAGIC = 0x65735546

#: Go's ``graphdriver.FsNames`` table (magic -> name shown as "Backing Filesystem").
FS_NAMES: dict[int, str] = {
    0x61756673: "aufs",
    0x9123683E: "btrfs",
    0x28CD3D45: "cramfs",
    0x0000F15F: "ecryptfs",
    0x0000EF53: "extfs",
    0xF2F52010: "f2fs",
    0x47504653: "gpfs",
    0x000072B6: "jffs2",
    0x3153464A: "jfs",
    0x00006969: "nfs",
    0x858458F6: "ramfs",
    0x52654973: "reiserfs",
    0x0000517B: "smb",
    0x73717368: "squashfs",
    0x01021994: "tmpfs",
    0xA501FCF5: "vxfs",
    0x58465342: "xfs",
    0x2FC12FC1: "zfs",
    OVERLAY_MAGIC: "overlayfs",
    FUSE_MAGIC: "fuse",
    0x00C36400: "ceph",
    0xFF534D42: "cifs",
}

#: File systems the kernel overlay cannot use as its backing store.
UNSUPPORTED_BACKING = frozenset({"aufs", "overlayfs", "ecryptfs"})
#: Network file systems.
NETWORK_FS = frozenset({"nfs", "smb", "ceph", "cifs", "gpfs"})

_libc = libc()
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_libc.syscall.restype = ctypes.c_long

# Generic syscall numbers of the new mount API (identical on every architecture since 5.2).
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432

FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_NODIRATIME = 0x80
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _raise(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), what)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """``mount(2)``."""
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        _raise(target)


def umount(target: str, flags: int = 0) -> None:
    """``umount2(2)``."""
    if _libc.umount2(_b(target), flags) != 0:
        _raise(target)


def statfs_type(path: str) -> int:
    """``f_type`` of ``statfs(path)`` (the first field of ``struct statfs`` on Linux)."""
    buf = ctypes.create_string_buffer(256)
    if _libc.statfs(_b(path), buf) != 0:
        _raise(path)
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def fs_name(magic: int) -> str:
    """The Go name of a file-system magic, ``<unknown>`` when not in the table."""
    return FS_NAMES.get(magic, "<unknown>")


def _syscall(number: int, *args: object) -> int:
    result = int(_libc.syscall(ctypes.c_long(number), *args))
    if result < 0:
        _raise(f"syscall {number}")
    return result


def fsopen(fstype: str) -> int:
    """``fsopen(2)``: a file-system context fd."""
    return _syscall(_SYS_FSOPEN, ctypes.c_char_p(fstype.encode()), ctypes.c_uint(FSOPEN_CLOEXEC))


def fsconfig_string(fd: int, key: str, value: str | None) -> None:
    """``fsconfig(fd, FSCONFIG_SET_STRING|SET_FLAG, key, value, 0)``."""
    if value is None:
        _syscall(
            _SYS_FSCONFIG,
            ctypes.c_int(fd),
            ctypes.c_uint(FSCONFIG_SET_FLAG),
            ctypes.c_char_p(key.encode()),
            None,
            ctypes.c_int(0),
        )
    else:
        _syscall(
            _SYS_FSCONFIG,
            ctypes.c_int(fd),
            ctypes.c_uint(FSCONFIG_SET_STRING),
            ctypes.c_char_p(key.encode()),
            ctypes.c_char_p(os.fsencode(value)),
            ctypes.c_int(0),
        )


def fsconfig_create(fd: int) -> None:
    """``fsconfig(fd, FSCONFIG_CMD_CREATE)``."""
    _syscall(_SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None, ctypes.c_int(0))


def fsmount(fd: int, attr_flags: int) -> int:
    """``fsmount(2)``: a detached mount fd."""
    return _syscall(_SYS_FSMOUNT, ctypes.c_int(fd), ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attr_flags))


def move_mount(fd: int, target: str) -> None:
    """Attach the detached mount ``fd`` at ``target``."""
    _syscall(
        _SYS_MOVE_MOUNT,
        ctypes.c_int(fd),
        ctypes.c_char_p(b""),
        ctypes.c_int(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(target)),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )


_SYS_OPEN_TREE = 428
_SYS_MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 0x1
AT_EMPTY_PATH = 0x1000
MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def open_tree_clone(path: str) -> int:
    """``open_tree(path, OPEN_TREE_CLONE)``: a detached bind mount of ``path`` (not recursive)."""
    return _syscall(
        _SYS_OPEN_TREE,
        ctypes.c_int(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC),
    )


def set_idmap(fd: int, userns_fd: int) -> None:
    """``mount_setattr(fd, MOUNT_ATTR_IDMAP)`` with the mappings of the user namespace ``userns_fd``."""
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    _syscall(
        _SYS_MOUNT_SETATTR,
        ctypes.c_int(fd),
        ctypes.c_char_p(b""),
        ctypes.c_uint(AT_EMPTY_PATH),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )


def _unescape(field: str) -> str:
    """Undo the octal escapes of ``/proc/self/mountinfo`` (``\\040`` for space ...)."""
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points() -> list[tuple[str, str]]:
    """``(mount point, fs type)`` of every entry of ``/proc/self/mountinfo``, in order."""
    result: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            fields = line.split()
            try:
                sep = fields.index("-")
            except ValueError:
                continue
            result.append((_unescape(fields[4]), fields[sep + 1]))
    return result


def is_mount_point(path: str) -> bool:
    """Whether ``path`` is listed as a mount point in ``/proc/self/mountinfo``."""
    real = os.path.realpath(path)
    return any(mp == real for mp, _ in mount_points())


def mounts_under(path: str) -> list[str]:
    """Mount points strictly below ``path``, deepest (latest) first."""
    real = os.path.realpath(path).rstrip("/") + "/"
    return [mp for mp, _ in reversed(mount_points()) if mp.startswith(real)]
