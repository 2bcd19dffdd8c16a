"""Kernel feature probes of the overlay driver, cached in the run home (storage.md 9.2, Init 5).

Each probe result is a file ``<run_home>/<feature>-true`` (empty) or ``<feature>-false`` (holding
the reason), e.g. ``overlay-true``, ``native-diff()-true``, ``metacopy(nodev)-false``.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable

from cs_driver_overlay import syscalls

OPAQUE_XATTR = "trusted.overlay.opaque"
REDIRECT_XATTR = "trusted.overlay.redirect"
METACOPY_XATTR = "trusted.overlay.metacopy"


def cached(run_home: str, feature: str, probe: Callable[[], str | None]) -> tuple[bool, str]:
    """Run ``probe`` (returning ``None`` for success or a failure reason) unless cached."""
    true_file = os.path.join(run_home, f"{feature}-true")
    false_file = os.path.join(run_home, f"{feature}-false")
    if os.path.exists(true_file):
        return True, ""
    try:
        with open(false_file, encoding="utf-8") as fh:
            return False, fh.read()
    except FileNotFoundError:
        pass
    reason = probe()
    try:
        fd = os.open(true_file if reason is None else false_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if reason:
                os.write(fd, reason.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError:
        pass
    return reason is None, reason or ""


class _Dirent(ctypes.Structure):
    _fields_ = [
        ("d_ino", ctypes.c_uint64),
        ("d_off", ctypes.c_int64),
        ("d_reclen", ctypes.c_uint16),
        ("d_type", ctypes.c_uint8),
        ("d_name", ctypes.c_char * 256),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.opendir.restype = ctypes.c_void_p
_libc.opendir.argtypes = [ctypes.c_char_p]
_libc.readdir.restype = ctypes.POINTER(_Dirent)
_libc.readdir.argtypes = [ctypes.c_void_p]
_libc.closedir.argtypes = [ctypes.c_void_p]
_DT_UNKNOWN = 0


def _scratch_dir(parent: str, prefix: str) -> str:
    """A new private directory ``<parent>/<prefix><random>`` (``mkdtemp``)."""
    while True:
        path = os.path.join(parent, prefix + os.urandom(5).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _discard(path: str, entries: tuple[str, ...] = ()) -> None:
    """Delete a scratch directory: its known ``entries`` then itself, else the whole tree."""
    try:
        for name in entries:
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def supports_dtype(path: str) -> bool:
    """Whether ``readdir`` on the file system of ``path`` reports entry types (d_type)."""
    probe_dir = _scratch_dir(path, "d_type-check")
    try:
        with open(os.path.join(probe_dir, "f"), "w", encoding="ascii"):
            pass
        handle = _libc.opendir(os.fsencode(probe_dir))
        if not handle:
            return False
        try:
            while True:
                entry = _libc.readdir(handle)
                if not entry:
                    return False
                if entry.contents.d_name == b"f":
                    return bool(entry.contents.d_type != _DT_UNKNOWN)
        finally:
            _libc.closedir(handle)
    finally:
        _discard(probe_dir, ("f",))


def _mkdirs(base: str, *names: str) -> None:
    for name in names:
        os.makedirs(os.path.join(base, name), mode=0o755, exist_ok=True)


def _probe_mount(base: str, data: str, body: Callable[[str], str | None]) -> str | None:
    merged = os.path.join(base, "merged")
    try:
        syscalls.mount("overlay", merged, "overlay", 0, data)
    except OSError as exc:
        return f"mount overlay, mount_data={data!r}: {exc.strerror}"
    try:
        return body(merged)
    finally:
        try:
            syscalls.umount(merged, syscalls.MNT_DETACH)
        except OSError:
            pass


def _with_data(data: str, mount_opts: str) -> str:
    return f"{data},{mount_opts}" if mount_opts else data


def probe_overlay(home: str) -> str | None:
    """d_type support plus a mount with two lowers and a kernel whiteout in the upper."""
    if not supports_dtype(home):
        return "kernel overlay requires d_type support of the backing file system"
    base = _scratch_dir(home, "compat")
    try:
        _mkdirs(base, "lower1", "lower2", "upper", "work", "merged")
        os.mknod(os.path.join(base, "upper", "whiteout"), 0o600 | 0o020000, os.makedev(0, 0))
        data = f"lowerdir={base}/lower2:{base}/lower1,upperdir={base}/upper,workdir={base}/work"
        return _probe_mount(base, data, lambda merged: None)
    except OSError as exc:
        return str(exc)
    finally:
        _discard(base)


def probe_native_diff(home: str, mount_opts: str) -> str | None:
    """Native diff is unusable if an opaque flag is copied up or redirect_dir is active."""
    base = _scratch_dir(home, "opaque-bug-check")
    try:
        _mkdirs(base, "l1/d", "l1/d1", "l2/d", "l3", "work", "merged")
        os.setxattr(os.path.join(base, "l2", "d"), OPAQUE_XATTR, b"y")
        data = _with_data(f"lowerdir={base}/l2:{base}/l1,upperdir={base}/l3,workdir={base}/work", mount_opts)

        def body(merged: str) -> str | None:
            with open(os.path.join(merged, "d", "f"), "w", encoding="ascii"):
                pass
            try:
                if os.getxattr(os.path.join(base, "l3", "d"), OPAQUE_XATTR) == b"y":
                    return "opaque flag erroneously copied up, consider update to kernel 4.8 or later to fix"
            except OSError as exc:
                if exc.errno not in (errno.ENODATA, errno.ENOTSUP):
                    return str(exc)
            try:
                os.rename(os.path.join(merged, "d1"), os.path.join(merged, "d2"))
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    return None
                return f"rename dir in overlay: {exc.strerror}"
            try:
                os.getxattr(os.path.join(base, "l3", "d2"), REDIRECT_XATTR)
                return "kernel has CONFIG_OVERLAY_FS_REDIRECT_DIR enabled"
            except OSError:
                return None

        return _probe_mount(base, data, body)
    except OSError as exc:
        return str(exc)
    finally:
        _discard(base)


def probe_metacopy(home: str, mount_opts: str) -> str | None:
    """Whether a chmod through the mount creates a metacopy-only copy-up."""
    base = _scratch_dir(home, "metacopy-check")
    try:
        _mkdirs(base, "l1", "l2", "work", "merged")
        with open(os.path.join(base, "l1", "f"), "w", encoding="ascii"):
            pass
        data = _with_data(f"lowerdir={base}/l1,upperdir={base}/l2,workdir={base}/work", mount_opts)

        def body(merged: str) -> str | None:
            os.chmod(os.path.join(merged, "f"), 0o600)
            try:
                os.getxattr(os.path.join(base, "l2", "f"), METACOPY_XATTR)
                return None
            except OSError:
                return "metacopy not used"

        return _probe_mount(base, data, body)
    except OSError as exc:
        return str(exc)
    finally:
        _discard(base)


def probe_volatile(home: str) -> str | None:
    """Whether the kernel accepts the ``volatile`` mount option."""
    base = _scratch_dir(home, "volatile-check")
    try:
        _mkdirs(base, "l1", "l2", "work", "merged")
        data = f"lowerdir={base}/l1,upperdir={base}/l2,workdir={base}/work,volatile"
        return _probe_mount(base, data, lambda merged: None)
    finally:
        _discard(base)
