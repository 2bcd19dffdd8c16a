"""XFS project quotas for read-write overlay layers (storage.md 9.2 "Quota").

Each quota-limited layer directory gets its own project ID (``FS_IOC_FSSETXATTR`` with
``FS_XFLAG_PROJINHERIT`` so everything created below inherits it), and the block/inode hard
and soft limits of that project are set with ``quotactl(Q_XSETQLIM)`` on a block device node
for the backing file system (``<home>/backingFsBlockDev``), like Go's ``drivers/quota``.
Everything goes through ctypes/``fcntl`` system calls; no ``xfs_quota`` program is used.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import stat
import threading
from dataclasses import dataclass
from typing import Any

from cs_core.errors import InvalidOption, NotSupported
from cs_core.fsutil import libc
from cs_driver_overlay.options import ram_in_bytes

#: Name of the block device node created in the driver home.
BACKING_FS_BLOCK_DEV = "backingFsBlockDev"

# <linux/fs.h>: _IOR('X', 31, struct fsxattr) / _IOW('X', 32, struct fsxattr).
FS_IOC_FSGETXATTR = 0x801C581F
FS_IOC_FSSETXATTR = 0x401C5820
FS_XFLAG_PROJINHERIT = 0x200

# <sys/quota.h>, <linux/dqblk_xfs.h>.
PRJQUOTA = 2
Q_XGETQUOTA = 0x5803
Q_XSETQLIM = 0x5804
FS_DQUOT_VERSION = 1
FS_PROJ_QUOTA = 2
FS_DQ_ISOFT = 1 << 0
FS_DQ_IHARD = 1 << 1
FS_DQ_BSOFT = 1 << 2
FS_DQ_BHARD = 1 << 3
FS_DQ_LIMITS = FS_DQ_ISOFT | FS_DQ_IHARD | FS_DQ_BSOFT | FS_DQ_BHARD

#: Quota blocks are "basic blocks" of 512 bytes.
BASIC_BLOCK = 512
#: Go's ``projectIDsAllocatedPerQuotaHome``.
IDS_PER_HOME = 10000
_UINT32_MAX = 0xFFFFFFFF


class FsXattr(ctypes.Structure):
    """``struct fsxattr`` (28 bytes)."""

    _fields_ = [
        ("fsx_xflags", ctypes.c_uint32),
        ("fsx_extsize", ctypes.c_uint32),
        ("fsx_nextents", ctypes.c_uint32),
        ("fsx_projid", ctypes.c_uint32),
        ("fsx_cowextsize", ctypes.c_uint32),
        ("fsx_pad", ctypes.c_ubyte * 8),
    ]


class FsDiskQuota(ctypes.Structure):
    """``struct fs_disk_quota`` (``fs_disk_quota_t``, 112 bytes)."""

    _fields_ = [
        ("d_version", ctypes.c_int8),
        ("d_flags", ctypes.c_int8),
        ("d_fieldmask", ctypes.c_uint16),
        ("d_id", ctypes.c_uint32),
        ("d_blk_hardlimit", ctypes.c_uint64),
        ("d_blk_softlimit", ctypes.c_uint64),
        ("d_ino_hardlimit", ctypes.c_uint64),
        ("d_ino_softlimit", ctypes.c_uint64),
        ("d_bcount", ctypes.c_uint64),
        ("d_icount", ctypes.c_uint64),
        ("d_itimer", ctypes.c_int32),
        ("d_btimer", ctypes.c_int32),
        ("d_iwarns", ctypes.c_uint16),
        ("d_bwarns", ctypes.c_uint16),
        ("d_itimer_hi", ctypes.c_int8),
        ("d_btimer_hi", ctypes.c_int8),
        ("d_rtbtimer_hi", ctypes.c_int8),
        ("d_padding2", ctypes.c_int8),
        ("d_rtb_hardlimit", ctypes.c_uint64),
        ("d_rtb_softlimit", ctypes.c_uint64),
        ("d_rtbcount", ctypes.c_uint64),
        ("d_rtbtimer", ctypes.c_int32),
        ("d_rtbwarns", ctypes.c_uint16),
        ("d_padding3", ctypes.c_int16),
        ("d_padding4", ctypes.c_char * 8),
    ]


@functools.cache
def _quotactl_fn() -> Any:
    """libc's ``quotactl``, typed on first use."""
    fn = libc().quotactl
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


class QuotaNotSupported(NotSupported):
    """The backing file system cannot enforce project quotas."""


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits of one project: bytes and inodes (0 = unlimited)."""

    size: int = 0
    inodes: int = 0


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """What ``Q_XGETQUOTA`` reports for a project (bytes, inodes)."""

    size_limit: int
    inode_limit: int
    used_bytes: int
    used_inodes: int


def qcmd(cmd: int, qtype: int) -> int:
    """The ``QCMD(cmd, type)`` macro."""
    return (cmd << 8) | (qtype & 0xFF)


def _quotactl(cmd: int, device: str, qid: int, addr: ctypes.Array[ctypes.c_char] | ctypes.Structure) -> None:
    if _quotactl_fn()(qcmd(cmd, PRJQUOTA), os.fsencode(device), ctypes.c_int(qid), ctypes.byref(addr)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), device)


def _go_errno_text(exc: OSError) -> str:
    """Go's ``syscall.Errno.Error()`` text: the lower-case C message."""
    return (exc.strerror or os.strerror(exc.errno or 0)).lower()


def get_project_id(path: str) -> int:
    """The project ID of the file or directory ``path`` (``FS_IOC_FSGETXATTR``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fsx = FsXattr()
        try:
            fcntl.ioctl(fd, FS_IOC_FSGETXATTR, fsx)
        except OSError as exc:
            raise NotSupported(f"failed to get projid for {path}: {_go_errno_text(exc)}") from exc
        return int(fsx.fsx_projid)
    finally:
        os.close(fd)


def get_xflags(path: str) -> int:
    """The ``fsx_xflags`` of ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fsx = FsXattr()
        fcntl.ioctl(fd, FS_IOC_FSGETXATTR, fsx)
        return int(fsx.fsx_xflags)
    finally:
        os.close(fd)


def set_project_id(path: str, project_id: int) -> None:
    """Give directory ``path`` the project ID and the ``PROJINHERIT`` flag."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsx = FsXattr()
        try:
            fcntl.ioctl(fd, FS_IOC_FSGETXATTR, fsx)
        except OSError as exc:
            raise NotSupported(f"failed to get projid for {path}: {_go_errno_text(exc)}") from exc
        fsx.fsx_projid = project_id
        fsx.fsx_xflags |= FS_XFLAG_PROJINHERIT
        try:
            fcntl.ioctl(fd, FS_IOC_FSSETXATTR, fsx)
        except OSError as exc:
            raise NotSupported(f"failed to set projid for {path}: {_go_errno_text(exc)}") from exc
    finally:
        os.close(fd)


def make_backing_fs_dev(home: str) -> str:
    """(Re-)create ``<home>/backingFsBlockDev``: a 0600 block node for ``home``'s ``st_dev``."""
    dev = os.stat(home).st_dev
    path = os.path.join(home, BACKING_FS_BLOCK_DEV)
    tmp = path + ".tmp"
    try:
        os.mknod(tmp, stat.S_IFBLK | 0o600, dev)
    except FileExistsError:
        os.unlink(tmp)
        os.mknod(tmp, stat.S_IFBLK | 0o600, dev)
    except OSError as exc:
        raise QuotaNotSupported(f"failed to mknod {tmp}: {_go_errno_text(exc)}") from exc
    os.rename(tmp, path)
    return path


def unique_project_id(path: str) -> int:
    """Go's ``generateUniqueProjectID``: a base ID derived from the inode of ``path``."""
    ino = os.stat(path).st_ino
    return IDS_PER_HOME + (ino * IDS_PER_HOME) % (_UINT32_MAX - IDS_PER_HOME)


def parse_storage_opt(storage_opt: dict[str, str]) -> Quota:
    """Per-layer ``size``/``inodes`` options (keys case-insensitive); other keys are errors."""
    size = inodes = 0
    for key, value in storage_opt.items():
        name = key.lower()
        if name == "size":
            size = ram_in_bytes(value)
        elif name == "inodes":
            try:
                if not value or value.startswith(("+", "-")):
                    raise ValueError(value)
                inodes = int(value, 10)
            except ValueError:
                raise InvalidOption(f'strconv.ParseUint: parsing "{value}": invalid syntax') from None
        else:
            raise InvalidOption(f"unknown option {name}")
    return Quota(size=size, inodes=inodes)


class ProjectQuotaControl:
    """Project-quota bookkeeping for the directories directly below one driver home."""

    def __init__(self, base_path: str) -> None:
        """Create the device node and verify that limits can be set (else :class:`QuotaNotSupported`)."""
        self.base_path = base_path
        self.device = make_backing_fs_dev(base_path)
        self._lock = threading.Lock()
        self._quotas: dict[str, int] = {}
        base_id = get_project_id(base_path)
        first_id = base_id + 1 if base_id else unique_project_id(base_path)
        try:
            self._set_limits(first_id, None)
        except OSError as exc:
            raise QuotaNotSupported(
                f"failed to set quota limit for projid {first_id} on {self.device}: {_go_errno_text(exc)}"
            ) from exc
        self._next_id = first_id + 1
        self._scan(base_id)

    def _scan(self, base_id: int) -> None:
        """Remember the IDs of existing layer directories; continue above the highest."""
        for entry in os.scandir(self.base_path):
            if not entry.is_dir(follow_symlinks=False):
                continue
            project_id = get_project_id(entry.path)
            if project_id > 0 and project_id != base_id:
                self._quotas[entry.path] = project_id
            if self._next_id <= project_id:
                self._next_id = project_id + 1

    def _set_limits(self, project_id: int, quota: Quota | None) -> None:
        """``Q_XSETQLIM``; ``None`` only probes (empty field mask), else all four limits are set."""
        dq = FsDiskQuota()
        dq.d_version = FS_DQUOT_VERSION
        dq.d_flags = FS_PROJ_QUOTA
        dq.d_id = project_id
        if quota is not None:
            dq.d_fieldmask = FS_DQ_LIMITS
            dq.d_blk_hardlimit = dq.d_blk_softlimit = quota.size // BASIC_BLOCK
            dq.d_ino_hardlimit = dq.d_ino_softlimit = quota.inodes
        _quotactl(Q_XSETQLIM, self.device, project_id, dq)

    def project_id(self, path: str) -> int | None:
        """The project ID this control assigned to ``path`` (``None`` if none)."""
        with self._lock:
            return self._quotas.get(os.path.normpath(path))

    def set_quota(self, path: str, quota: Quota) -> int:
        """Assign ``path`` a project ID (once) and set its limits; returns the ID."""
        key = os.path.normpath(path)
        with self._lock:
            project_id = self._quotas.get(key)
            assigned = project_id is None
            if project_id is None:
                project_id = self._next_id
                set_project_id(key, project_id)
                self._quotas[key] = project_id
                self._next_id += 1
        try:
            self._set_limits(project_id, quota)
        except OSError as exc:
            if assigned:
                with self._lock:
                    self._quotas.pop(key, None)
            raise NotSupported(
                f"failed to set quota limit for projid {project_id} on {self.device}: {_go_errno_text(exc)}"
            ) from exc
        return project_id

    def get_quota(self, path: str) -> QuotaUsage:
        """Limits and usage of the project of ``path`` (``Q_XGETQUOTA``)."""
        project_id = self.project_id(path)
        if project_id is None:
            project_id = get_project_id(path)
        return self.usage(project_id)

    def usage(self, project_id: int) -> QuotaUsage:
        """Limits and usage of a project ID (``Q_XGETQUOTA``)."""
        dq = FsDiskQuota()
        try:
            _quotactl(Q_XGETQUOTA, self.device, project_id, dq)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return QuotaUsage(0, 0, 0, 0)
            raise NotSupported(
                f"failed to get quota limit for projid {project_id} on {self.device}: {_go_errno_text(exc)}"
            ) from exc
        return QuotaUsage(
            size_limit=int(dq.d_blk_hardlimit) * BASIC_BLOCK,
            inode_limit=int(dq.d_ino_hardlimit),
            used_bytes=int(dq.d_bcount) * BASIC_BLOCK,
            used_inodes=int(dq.d_icount),
        )

    def clear_quota(self, path: str) -> None:
        """Forget ``path`` and reset its project's limits to 0 (unlimited), best effort.

        Unknown paths are fine; a failing ``quotactl`` is ignored (like Go's ``ClearQuota``, which
        never fails): :meth:`set_quota` sets all four limits whenever it reuses an ID.
        """
        with self._lock:
            project_id = self._quotas.pop(os.path.normpath(path), None)
        if project_id is None:
            return
        try:
            self._set_limits(project_id, Quota())
        except OSError:
            pass
