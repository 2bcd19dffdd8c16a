"""Overlay mounts: option strings, the page-size limit, mount programs, reference counting.

The kernel copies the mount data into one page, so an option string of 4096 bytes or more
cannot be passed to ``mount(2)``.  :func:`mount_overlay` then mounts from a forked child that
``chdir``s into the driver home and uses relative ``l/<SHORT>`` lowers (Go's
``storage-mountfrom``); if even that is too long it uses the new mount API, where every lower
is one ``fsconfig(lowerdir+)`` call and no length limit applies.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from cs_core.errors import StorageError
from cs_driver_overlay import syscalls

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

_FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "ro": (False, syscalls.MS_RDONLY),
    "rw": (True, syscalls.MS_RDONLY),
    "nosuid": (False, syscalls.MS_NOSUID),
    "suid": (True, syscalls.MS_NOSUID),
    "nodev": (False, syscalls.MS_NODEV),
    "dev": (True, syscalls.MS_NODEV),
    "noexec": (False, syscalls.MS_NOEXEC),
    "exec": (True, syscalls.MS_NOEXEC),
    "sync": (False, syscalls.MS_SYNCHRONOUS),
    "async": (True, syscalls.MS_SYNCHRONOUS),
    "dirsync": (False, syscalls.MS_DIRSYNC),
    "noatime": (False, syscalls.MS_NOATIME),
    "atime": (True, syscalls.MS_NOATIME),
    "nodiratime": (False, syscalls.MS_NODIRATIME),
    "diratime": (True, syscalls.MS_NODIRATIME),
    "relatime": (False, syscalls.MS_RELATIME),
    "norelatime": (True, syscalls.MS_RELATIME),
    "strictatime": (False, syscalls.MS_STRICTATIME),
    "nostrictatime": (True, syscalls.MS_STRICTATIME),
    "defaults": (False, 0),
}

_ATTR_FOR_FLAG = {
    syscalls.MS_RDONLY: syscalls.MOUNT_ATTR_RDONLY,
    syscalls.MS_NOSUID: syscalls.MOUNT_ATTR_NOSUID,
    syscalls.MS_NODEV: syscalls.MOUNT_ATTR_NODEV,
    syscalls.MS_NOEXEC: syscalls.MOUNT_ATTR_NOEXEC,
    syscalls.MS_NOATIME: syscalls.MOUNT_ATTR_NOATIME,
    syscalls.MS_NODIRATIME: syscalls.MOUNT_ATTR_NODIRATIME,
}


def parse_mount_options(options: list[str]) -> tuple[int, list[str]]:
    """Split options into ``mount(2)`` flags and the remaining file-system data items."""
    flags = 0
    data: list[str] = []
    for option in options:
        known = _FLAG_OPTIONS.get(option)
        if known is None:
            data.append(option)
        elif known[0]:
            flags &= ~known[1]
        else:
            flags |= known[1]
    return flags, data


@dataclass(slots=True)
class OverlaySpec:
    """Everything needed to mount one overlay."""

    target: str
    #: Absolute lower paths, topmost first.
    lowers: list[str]
    #: The same lowers relative to ``home`` (``l/<SHORT>`` ...), for the chdir fallback.
    rel_lowers: list[str]
    home: str
    upper: str = ""
    work: str = ""
    options: list[str] = field(default_factory=list)

    def data(self, relative: bool = False) -> tuple[int, str]:
        """``(flags, data)`` for ``mount(2)``; ``relative`` uses home-relative paths."""
        flags, extra = parse_mount_options(self.options)
        lowers = self.rel_lowers if relative else self.lowers
        parts = ["lowerdir=" + ":".join(lowers)]
        if self.upper:
            upper, work = self.upper, self.work
            if relative:
                upper, work = os.path.relpath(upper, self.home), os.path.relpath(work, self.home)
            parts.append(f"upperdir={upper}")
            parts.append(f"workdir={work}")
        return flags, ",".join(parts + extra)


def _mount_in_child(spec: OverlaySpec, flags: int, data: str) -> None:
    """Fork; the child chdirs into the home and mounts with relative paths."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(read_fd)
            os.chdir(spec.home)
            syscalls.mount("overlay", os.path.relpath(spec.target, spec.home), "overlay", flags, data)
        except OSError as exc:
            code = 1
            os.write(write_fd, str(exc.errno or 0).encode())
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        message = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        err = int(message) if message.isdigit() else 0
        raise OSError(err, os.strerror(err) if err else "mount helper failed", spec.target)


def _mount_new_api(spec: OverlaySpec, flags: int, extra: list[str]) -> None:
    """Mount through fsopen/fsconfig/fsmount/move_mount (``lowerdir+`` per lower)."""
    fs_fd = syscalls.fsopen("overlay")
    try:
        syscalls.fsconfig_string(fs_fd, "source", "overlay")
        for lower in spec.lowers:
            syscalls.fsconfig_string(fs_fd, "lowerdir+", lower)
        if spec.upper:
            syscalls.fsconfig_string(fs_fd, "upperdir", spec.upper)
            syscalls.fsconfig_string(fs_fd, "workdir", spec.work)
        for item in extra:
            key, sep, value = item.partition("=")
            syscalls.fsconfig_string(fs_fd, key, value if sep else None)
        syscalls.fsconfig_create(fs_fd)
        attrs = 0
        for flag, attr in _ATTR_FOR_FLAG.items():
            if flags & flag:
                attrs |= attr
        mnt_fd = syscalls.fsmount(fs_fd, attrs)
        try:
            syscalls.move_mount(mnt_fd, spec.target)
        finally:
            os.close(mnt_fd)
    finally:
        os.close(fs_fd)


def mount_overlay(spec: OverlaySpec) -> None:
    """Mount ``spec`` with the kernel overlay, working around the page-size data limit."""
    flags, data = spec.data()
    try:
        if len(data) < PAGE_SIZE:
            syscalls.mount("overlay", spec.target, "overlay", flags, data)
            return
        rel_flags, rel_data = spec.data(relative=True)
        if len(rel_data) < PAGE_SIZE:
            _mount_in_child(spec, rel_flags, rel_data)
            return
        try:
            _mount_new_api(spec, flags, parse_mount_options(spec.options)[1])
            return
        except OSError as exc:
            raise StorageError(
                f"cannot mount layer, mount data {data!r} too large {len(data)} >= page size {PAGE_SIZE}: {exc.strerror}"
            ) from None
    except OSError as exc:
        raise StorageError(f'creating overlay mount to {spec.target}, mount_data="{data}": {exc.strerror}') from None


def mount_with_program(program: str, spec: OverlaySpec, extra_options: list[str]) -> None:
    """Run ``<program> -o <data> <target>`` in the home (fuse-overlayfs)."""
    import subprocess

    _, data = spec.data()
    options = ",".join([data, *extra_options]) if extra_options else data
    flags, _ = parse_mount_options(spec.options)
    if flags & syscalls.MS_RDONLY and "ro" not in options.split(","):
        options += ",ro"
    proc = subprocess.run(
        [program, "-o", options, spec.target], cwd=spec.home, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise StorageError(
            f"using mount program {program}: {(proc.stdout + proc.stderr).strip()}: exit status {proc.returncode}"
        )


def unmount_fuse(target: str) -> None:
    """``fusermount3 -u``, then ``fusermount -u``, then a detaching ``umount2``."""
    import subprocess

    for helper in ("fusermount3", "fusermount"):
        try:
            proc = subprocess.run([helper, "-u", target], capture_output=True, check=False)
        except FileNotFoundError:
            continue
        if proc.returncode == 0:
            return
    try:
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.sync()
        finally:
            os.close(fd)
    except OSError:
        pass
    unmount(target)


def unmount(target: str) -> None:
    """Detach-unmount ``target``; "not mounted" (EINVAL) and a missing path are tolerated."""
    try:
        syscalls.umount(target, syscalls.MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (22, 2):  # EINVAL, ENOENT
            raise StorageError(f"unmounting {target}: {exc.strerror}") from None


class RefCounter:
    """In-process mount reference counts keyed by mount path (storage.md 8.4)."""

    def __init__(self, magics: frozenset[int]) -> None:
        self._magics = magics
        self._counts: dict[str, int] = {}
        self._checked: set[str] = set()
        self._lock = threading.Lock()

    def _check(self, path: str) -> None:
        if path in self._checked:
            return
        self._checked.add(path)
        try:
            if syscalls.statfs_type(path) in self._magics and syscalls.is_mount_point(path):
                self._counts[path] = self._counts.get(path, 0) + 1
        except OSError:
            pass

    def increment(self, path: str) -> int:
        """Add a reference; returns the new count (1 means "mount now")."""
        with self._lock:
            self._check(path)
            self._counts[path] = self._counts.get(path, 0) + 1
            return self._counts[path]

    def decrement(self, path: str) -> int:
        """Drop a reference; returns the new count (0 means "unmount now")."""
        with self._lock:
            self._check(path)
            count = max(self._counts.get(path, 0) - 1, 0)
            self._counts[path] = count
            return count

    def forget(self, path: str) -> None:
        """Reset the state of ``path`` (after a failed mount or a removal)."""
        with self._lock:
            self._counts.pop(path, None)
            self._checked.discard(path)
