"""Chroot-equivalent path resolution below a directory (storage.md 10.8).

Every path is resolved as if the directory were ``/``: ``..`` clamps at the root, absolute
names and absolute symlink targets are re-rooted, and symlinks (also ones created a moment
ago) resolve inside.  ``openat2(RESOLVE_IN_ROOT)`` is used when the kernel has it; otherwise a
component-wise walk with ``O_NOFOLLOW`` does the same.  Operations then act on
``(parent_fd, basename)`` pairs with the ``*at`` system calls and never follow the final
component, so nothing outside the root can be written, linked, chmodded or chowned.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import shutil
import stat
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

_O_PATH = getattr(os, "O_PATH", 0o10000000)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # same number on every Linux architecture


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _syscall = _libc.syscall
    _syscall.restype = ctypes.c_long
except (OSError, AttributeError):  # pragma: no cover
    _libc = None

_openat2_works: bool | None = None


def _openat2(dirfd: int, path: str, flags: int) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = _syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), os.fsencode(path),
                  ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def openat2_available() -> bool:
    """Whether ``openat2(RESOLVE_IN_ROOT)`` works on this kernel."""
    global _openat2_works
    if _openat2_works is None:
        if _libc is None:
            _openat2_works = False
        else:
            try:
                rootfd = os.open("/", _O_PATH | os.O_CLOEXEC)
                try:
                    os.close(_openat2(rootfd, ".", _O_PATH))
                finally:
                    os.close(rootfd)
                _openat2_works = True
            except OSError:
                _openat2_works = False
    return _openat2_works


def clean_rel(name: str) -> str:
    """Clean a member name as seen from ``/``: ``"../../x" -> "x"``, ``"/a/./b/" -> "a/b"``, root -> ``""``."""
    cleaned = posixpath.normpath("/" + name)
    return cleaned.lstrip("/")


def os_error_text(op: str, rel: str, exc: OSError) -> str:
    """Go-style ``op /path: message`` text."""
    msg = exc.strerror or str(exc)
    msg = msg[:1].lower() + msg[1:]
    return f"{op} /{rel}: {msg}"


#: Directory descriptors kept by :meth:`SafeRoot.dir_fd` before :meth:`SafeRoot.trim` closes some.
_DIR_CACHE_MAX = 256


class SafeRoot:
    """A directory treated as ``/`` for every path operation.

    :meth:`dir_fd` keeps the ``O_PATH`` descriptors of resolved directories so that a stream
    of members in the same directories resolves each directory once.  A cached descriptor is
    only reused while the resolution it came from cannot have changed: removing a directory
    or a symlink anywhere below the root (:meth:`remove_all`, :meth:`forget_dirs`) drops the
    whole cache, and creating entries never changes how an existing path resolves.
    """

    def __init__(self, path: str, *, use_openat2: bool | None = None) -> None:
        self.path = os.path.abspath(path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._openat2 = openat2_available() if use_openat2 is None else (use_openat2 and openat2_available())
        self._dirs: dict[str, int] = {}
        self._retired: list[int] = []

    def close(self) -> None:
        self.forget_dirs()
        self.trim()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # ---- cached directory descriptors ---------------------------------------------------------
    def dir_fd(self, rel: str) -> int:
        """A cached ``O_PATH`` fd of directory ``rel`` (``""`` = the root); do not close it.

        The descriptor stays open at least until the next :meth:`trim`; callers use it for
        ``*at`` calls on the entries of that directory.
        """
        if not rel:
            return self.fd
        fd = self._dirs.get(rel)
        if fd is None:
            fd = self.open_dir(rel)
            self._dirs[rel] = fd
        return fd

    def split(self, rel: str) -> tuple[int, str]:
        """``(parent_fd, basename)`` of ``rel`` from the cache (see :meth:`dir_fd`); root -> ``(root_fd, ".")``."""
        if not rel:
            return self.fd, "."
        head, _, base = rel.rpartition("/")
        return self.dir_fd(head), base

    def forget_dirs(self) -> None:
        """Drop every cached directory (after the tree changed in a way the cache cannot follow)."""
        if self._dirs:
            self._retired.extend(self._dirs.values())
            self._dirs = {}

    def trim(self) -> None:
        """Close retired descriptors and bound the cache; call when no cached fd is in use."""
        retired = self._retired
        if len(self._dirs) > _DIR_CACHE_MAX:
            dirs = self._dirs
            for key in list(dirs)[: len(dirs) - _DIR_CACHE_MAX // 2]:
                retired.append(dirs.pop(key))
        if retired:
            for fd in retired:
                os.close(fd)
            retired.clear()

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- resolution ---------------------------------------------------------------------------
    def open_dir(self, rel: str) -> int:
        """An ``O_PATH`` fd of directory ``rel`` (symlinks followed inside the root)."""
        if not rel:
            return os.dup(self.fd)
        if self._openat2:
            return _openat2(self.fd, rel, _O_PATH | os.O_DIRECTORY)
        return self._walk(rel)

    def _walk(self, rel: str) -> int:
        parts: deque[str] = deque(p for p in rel.split("/") if p and p != ".")
        stack = [os.dup(self.fd)]
        hops = 0
        try:
            while parts:
                comp = parts.popleft()
                if comp == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                cur = stack[-1]
                st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > 40:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
                    target = os.readlink(comp, dir_fd=cur)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    parts.extendleft(reversed([p for p in target.split("/") if p and p != "."]))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), rel)
                stack.append(os.open(comp, _O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=cur))
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    @contextmanager
    def parent(self, rel: str) -> Iterator[tuple[int, str]]:
        """``(parent_fd, basename)`` of ``rel``; the root itself is ``(root_fd, ".")``."""
        if not rel:
            yield self.fd, "."
            return
        head, base = posixpath.split(rel)
        fd = self.open_dir(head)
        try:
            yield fd, base
        finally:
            os.close(fd)

    def lstat(self, rel: str) -> os.stat_result | None:
        """``lstat`` inside the root; ``None`` when missing (or a parent is not a directory)."""
        try:
            fd, base = self.split(rel)
            return os.stat(base, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    # ---- operations ---------------------------------------------------------------------------
    def mkdir_all(self, rel: str, mode: int, owner: tuple[int, int] | None = None) -> None:
        """``MkdirAll`` inside the root (following symlinks like Go's ``os.MkdirAll``)."""
        parts = [p for p in rel.split("/") if p]
        for i in range(len(parts)):
            prefix = "/".join(parts[: i + 1])
            try:
                self.dir_fd(prefix)
                continue
            except FileNotFoundError:
                pass
            fd, base = self.split(prefix)
            try:
                os.mkdir(base, mode, dir_fd=fd)
            except FileExistsError:
                st = os.stat(base, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), prefix) from None
                continue
            os.chmod(base, mode, dir_fd=fd)
            if owner is not None:
                os.chown(base, owner[0], owner[1], dir_fd=fd, follow_symlinks=False)

    def remove_all(self, rel: str) -> None:
        """``rm -rf`` of ``rel`` (missing is fine); the final component is never followed."""
        if not rel:
            raise OSError(errno.EBUSY, "refusing to remove the root", "/")
        try:
            with self.parent(rel) as (fd, base):
                try:
                    st = os.stat(base, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    return
                if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    self.forget_dirs()
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(base, dir_fd=fd)
                else:
                    os.unlink(base, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            return

    def setxattr(self, rel: str, key: str, value: bytes) -> None:
        """``lsetxattr`` inside the root."""
        with self.parent(rel) as (fd, base):
            os.setxattr(f"/proc/self/fd/{fd}/{base}", key, value, follow_symlinks=False)

    def mknod(self, rel: str, mode: int, device: int = 0) -> None:
        with self.parent(rel) as (fd, base):
            os.mknod(base, mode, device, dir_fd=fd)

    def lchown(self, rel: str, uid: int, gid: int) -> None:
        with self.parent(rel) as (fd, base):
            os.chown(base, uid, gid, dir_fd=fd, follow_symlinks=False)
