"""Raw btrfs ioctls through :func:`fcntl.ioctl` with ``struct``-packed buffers.

Only what the driver needs (storage.md 9.3): subvolume create / snapshot v2 / destroy, inode
lookup (the subvolume's tree ID, which is its level-0 qgroup ID), quota enable / rescan-wait,
qgroup destroy / limit, and a tree search for the quota status item.  Every function takes an
open directory file descriptor and raises :class:`OSError` with the kernel's errno.
"""

from __future__ import annotations

import fcntl
import struct

#: Size of ``struct btrfs_ioctl_vol_args`` and ``_v2`` and of the search/lookup args.
ARGS_SIZE = 4096
#: ``BTRFS_FIRST_FREE_OBJECTID``: the inode number of every subvolume's root directory.
FIRST_FREE_OBJECTID = 256
#: ``BTRFS_QUOTA_TREE_OBJECTID``.
QUOTA_TREE_OBJECTID = 8
#: ``BTRFS_QGROUP_STATUS_KEY``.
QGROUP_STATUS_KEY = 240
#: ``BTRFS_QGROUP_LIMIT_MAX_RFER``.
QGROUP_LIMIT_MAX_RFER = 1
#: ``BTRFS_QUOTA_CTL_ENABLE``.
QUOTA_CTL_ENABLE = 1

IOC_SUBVOL_CREATE = 0x5000940E
IOC_SNAP_DESTROY = 0x5000940F
IOC_TREE_SEARCH = 0xD0009411
IOC_INO_LOOKUP = 0xD0009412
IOC_SNAP_CREATE_V2 = 0x50009417
IOC_QUOTA_CTL = 0xC0109428
IOC_QGROUP_CREATE = 0x4010942A
IOC_QGROUP_LIMIT = 0x8030942B
IOC_QUOTA_RESCAN_WAIT = 0x942E

_U64_MAX = 0xFFFFFFFFFFFFFFFF
_VOL_NAME_MAX = 4087  # name[4088] including the terminating NUL
_V2_NAME_MAX = 4039  # name[4040]
# struct btrfs_ioctl_search_key: 7 x u64, 4 x u32, 4 x u64 (unused)
_SEARCH_KEY = struct.Struct("=7Q4I4Q")
# struct btrfs_ioctl_search_header: transid, objectid, offset (u64), type, len (u32)
_SEARCH_HEADER = struct.Struct("=3Q2I")


def _name_bytes(name: str, limit: int) -> bytes:
    raw = name.encode()
    if len(raw) > limit or b"\0" in raw or b"/" in raw:
        raise OSError(22, f"invalid subvolume name {name!r}")
    return raw


def vol_args(fd: int, name: str) -> bytearray:
    """``struct btrfs_ioctl_vol_args``: s64 fd + name[4088]."""
    buf = bytearray(ARGS_SIZE)
    struct.pack_into("=q", buf, 0, fd)
    raw = _name_bytes(name, _VOL_NAME_MAX)
    buf[8 : 8 + len(raw)] = raw
    return buf


def vol_args_v2(fd: int, name: str, flags: int = 0) -> bytearray:
    """``struct btrfs_ioctl_vol_args_v2``: s64 fd, u64 transid, u64 flags, 32-byte union, name[4040]."""
    buf = bytearray(ARGS_SIZE)
    struct.pack_into("=qQQ", buf, 0, fd, 0, flags)
    raw = _name_bytes(name, _V2_NAME_MAX)
    buf[56 : 56 + len(raw)] = raw
    return buf


def subvol_create(dir_fd: int, name: str) -> None:
    """Create subvolume ``name`` inside the directory ``dir_fd``."""
    fcntl.ioctl(dir_fd, IOC_SUBVOL_CREATE, vol_args(0, name))


def snapshot_create(dest_dir_fd: int, source_fd: int, name: str) -> None:
    """Create ``name`` in ``dest_dir_fd`` as a writable snapshot of the subvolume ``source_fd``."""
    fcntl.ioctl(dest_dir_fd, IOC_SNAP_CREATE_V2, vol_args_v2(source_fd, name))


def snapshot_destroy(dir_fd: int, name: str) -> None:
    """Delete subvolume ``name`` inside the directory ``dir_fd``."""
    fcntl.ioctl(dir_fd, IOC_SNAP_DESTROY, vol_args(0, name))


def subvolume_id(fd: int) -> int:
    """The tree ID of the subvolume containing ``fd`` (``BTRFS_IOC_INO_LOOKUP``, treeid 0)."""
    buf = bytearray(ARGS_SIZE)
    struct.pack_into("=QQ", buf, 0, 0, FIRST_FREE_OBJECTID)
    fcntl.ioctl(fd, IOC_INO_LOOKUP, buf)
    return int(struct.unpack_from("=Q", buf, 0)[0])


def quota_enable(fd: int) -> None:
    """Enable quota groups on the file system of ``fd``."""
    buf = bytearray(struct.pack("=QQ", QUOTA_CTL_ENABLE, 0))
    fcntl.ioctl(fd, IOC_QUOTA_CTL, buf)


def quota_rescan_wait(fd: int) -> None:
    """Wait for a running quota rescan to finish."""
    fcntl.ioctl(fd, IOC_QUOTA_RESCAN_WAIT, 0)


def qgroup_destroy(fd: int, qgroup_id: int) -> None:
    """Destroy qgroup ``qgroup_id`` (``BTRFS_IOC_QGROUP_CREATE`` with create = 0)."""
    fcntl.ioctl(fd, IOC_QGROUP_CREATE, bytearray(struct.pack("=QQ", 0, qgroup_id)))


def qgroup_limit(fd: int, max_referenced: int, qgroup_id: int = 0) -> None:
    """Limit the referenced bytes of ``qgroup_id`` (0 = the subvolume of ``fd``)."""
    buf = bytearray(struct.pack("=Q5Q", qgroup_id, QGROUP_LIMIT_MAX_RFER, max_referenced, 0, 0, 0))
    fcntl.ioctl(fd, IOC_QGROUP_LIMIT, buf)


def quota_status_present(fd: int) -> bool:
    """Whether the file system of ``fd`` has a ``QGROUP_STATUS`` item, i.e. quotas are enabled.

    Runs ``BTRFS_IOC_TREE_SEARCH`` over the quota tree; a missing quota tree (``ENOENT``) means
    quotas are off.  Other errors propagate.
    """
    buf = bytearray(ARGS_SIZE)
    _SEARCH_KEY.pack_into(
        buf,
        0,
        QUOTA_TREE_OBJECTID,  # tree_id
        0,  # min_objectid
        _U64_MAX,  # max_objectid
        0,  # min_offset
        _U64_MAX,  # max_offset
        0,  # min_transid
        _U64_MAX,  # max_transid
        QGROUP_STATUS_KEY,  # min_type
        QGROUP_STATUS_KEY,  # max_type
        4096,  # nr_items
        0,
        0,
        0,
        0,
        0,
    )
    try:
        fcntl.ioctl(fd, IOC_TREE_SEARCH, buf)
    except FileNotFoundError:
        return False
    nr_items = _SEARCH_KEY.unpack_from(buf, 0)[9]
    if nr_items == 0:
        return False
    header = _SEARCH_HEADER.unpack_from(buf, _SEARCH_KEY.size)
    return bool(header[3] == QGROUP_STATUS_KEY)
