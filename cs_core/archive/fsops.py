"""Tree operations: re-owning by maps (storage.md 11.2), the vfs tree copy (9.1), disk usage."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Sequence

from cs_core.errors import StorageError
from cs_core.idmap import IDMap, overflow_id, root_id, to_container, to_host

Mapping = Sequence[IDMap]
_FICLONE = 0x40049409


def _walk_entries(root: str) -> list[tuple[str, os.stat_result]]:
    """Every entry below ``root`` (root excluded), parents before children, sorted."""
    out: list[tuple[str, os.stat_result]] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        base = os.path.join(root, rel) if rel else root
        with os.scandir(base) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name), reverse=True)
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            out.append((child, st))
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(f"{rel}/{entry.name}" if rel else entry.name)
    return out


def _to_host_overflow(mapping: Mapping, value: int, kind: str) -> int:
    target = root_id(mapping)
    if value != target:
        try:
            target = to_host(mapping, value)
        except StorageError:
            target = overflow_id(kind)
    return target


def chown_by_maps(root: str, to_container_maps: tuple[Mapping, Mapping], to_host_maps: tuple[Mapping, Mapping]) -> None:
    """Re-own every entry below ``root``: host -> container -> host (HEAD logic, storage.md 11.2)."""
    seen: dict[tuple[int, int], str] = {}
    for rel, st in _walk_entries(root):
        path = os.path.join(root, rel)
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(st.st_mode):
            first = seen.get(key)
            if first is not None:
                try:
                    cur = os.lstat(path)
                except FileNotFoundError:
                    continue
                if (cur.st_dev, cur.st_ino) != key:
                    os.unlink(path)
                    os.link(os.path.join(root, first), path, follow_symlinks=False)
                continue
            seen[key] = rel
        uid, gid = st.st_uid, st.st_gid
        if to_container_maps[0] or to_container_maps[1]:
            try:
                uid, gid = to_container(to_container_maps[0], uid), to_container(to_container_maps[1], gid)
            except StorageError as exc:
                if (st.st_uid, st.st_gid) != (0, 0):
                    raise StorageError(f'mapping host ID pair {st.st_uid}:{st.st_gid} for "{rel}" to container: {exc}') from None
                uid, gid = st.st_uid, st.st_gid
        if to_host_maps[0] or to_host_maps[1]:
            uid = _to_host_overflow(to_host_maps[0], uid, "uid")
            gid = _to_host_overflow(to_host_maps[1], gid, "gid")
        if (uid, gid) == (st.st_uid, st.st_gid):
            continue
        cap: bytes | None = None
        try:
            cap = os.getxattr(path, "security.capability", follow_symlinks=False)
        except OSError:
            cap = None
        os.chown(path, uid, gid, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode))
        if cap is not None:
            os.setxattr(path, "security.capability", cap, follow_symlinks=False)


class _Copier:
    def __init__(self) -> None:
        self.clone = True
        self.cfr = True
        self.rootless = os.geteuid() != 0

    def copy_file(self, src: str, dst: str, st: os.stat_result) -> None:
        sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, stat.S_IMODE(st.st_mode))
            try:
                if self.clone:
                    try:
                        fcntl.ioctl(dfd, _FICLONE, sfd)
                        return
                    except OSError:
                        self.clone = False
                remaining = st.st_size
                if self.cfr and remaining:
                    try:
                        while remaining > 0:
                            n = os.copy_file_range(sfd, dfd, min(remaining, 1 << 30))
                            if n == 0:
                                break
                            remaining -= n
                    except OSError as exc:
                        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                            raise
                        self.cfr = False
                        os.lseek(sfd, st.st_size - remaining, os.SEEK_SET)
                while True:
                    chunk = os.read(sfd, 1 << 20)
                    if not chunk:
                        break
                    mv = memoryview(chunk)
                    while mv:
                        mv = mv[os.write(dfd, mv):]
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)


_COPY_XATTRS_PREFIX = ("user.",)


def _copy_xattrs(src: str, dst: str, rootless: bool) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for key in names:
        if key == "security.capability" or key.startswith("user.") or (key == "trusted.overlay.opaque" and not rootless):
            try:
                os.setxattr(dst, key, os.getxattr(src, key, follow_symlinks=False), follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                    raise


def copy_tree(src: str, dst: str) -> None:
    """vfs ``DirCopy``: copy ``src`` into the existing or new directory ``dst`` (storage.md 9.1)."""
    copier = _Copier()
    copied: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    entries = [("", os.lstat(src))] + _walk_entries(src)
    for rel, st in entries:
        s = os.path.join(src, rel) if rel else src
        d = os.path.join(dst, rel) if rel else dst
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            try:
                os.mkdir(d, stat.S_IMODE(mode))
            except FileExistsError:
                pass
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            first = copied.get(key)
            if first is not None:
                os.link(first, d)
            else:
                copier.copy_file(s, d, st)
                if st.st_nlink > 1:
                    copied[key] = d
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(d, stat.S_IMODE(mode))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            if copier.rootless and not stat.S_ISSOCK(mode):
                continue
            os.mknod(d, mode, st.st_rdev)
        else:
            continue
        os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)
        _copy_xattrs(s, d, copier.rootless)
        if not stat.S_ISLNK(mode):
            os.chmod(d, stat.S_IMODE(mode))
        if stat.S_ISDIR(mode):
            dirs.append((d, st))
        else:
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    for d, st in reversed(dirs):
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def disk_usage(root: str) -> tuple[int, int]:
    """``(bytes, inodes)`` below and including ``root``; hard-linked inodes counted once."""
    seen: set[tuple[int, int]] = set()
    st = os.lstat(root)
    seen.add((st.st_dev, st.st_ino))
    size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
    for _rel, est in _walk_entries(root):
        key = (est.st_dev, est.st_ino)
        if key in seen:
            continue
        seen.add(key)
        if not stat.S_ISDIR(est.st_mode):
            size += est.st_size
    return size, len(seen)
