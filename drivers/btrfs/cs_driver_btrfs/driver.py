"""The btrfs graph driver: one subvolume per layer, children are snapshots (storage.md 9.3).

Layout: ``<graphroot>/btrfs/subvolumes/<id>`` is a subvolume (root inode 256, mode 0555 for
a base layer) holding the layer's root file system; ``<graphroot>/btrfs/quotas/<id>`` holds a
per-layer size limit as text.  The diff family is the naive one of
:class:`cs_core.driver.GraphDriver`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from cs_core.driver import CreateOpts, DriverOptions, GraphDriver, MountOpts
from cs_core.errors import DriverNotSupported, InvalidOption, StorageError
from cs_core.idmap import root_id
from cs_driver_btrfs import fs, ioctl
from cs_driver_btrfs.sizes import human_size, ram_in_bytes

#: Where btrfs-progs installs its version header (libbtrfs-dev); read for ``status``.
VERSION_HEADER = "/usr/include/btrfs/version.h"


def _os_message(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def storage_error(op: str, path: str, exc: OSError) -> StorageError:
    """A Go ``*PathError``-style error: ``<op> <path>: <errno text>``."""
    err = StorageError(f"{op} {path}: {_os_message(exc)}")
    err.__cause__ = exc
    return err


def probe(options: DriverOptions) -> None:
    """Raise ``DriverNotSupported`` unless the home's parent is on btrfs."""
    parent = os.path.dirname(os.path.abspath(options.home)) or "/"
    while not os.path.exists(parent) and parent != os.path.dirname(parent):
        parent = os.path.dirname(parent)
    try:
        magic = fs.fs_magic(parent)
    except OSError as exc:
        raise storage_error("statfs", parent, exc) from None
    if magic != fs.BTRFS_MAGIC:
        raise DriverNotSupported(
            f'"{options.home}" is not on a btrfs filesystem: '
            "prerequisites for driver not satisfied (wrong filesystem?)"
        )


def parse_options(options: list[str]) -> tuple[int, bool]:
    """Parse the driver options into ``(min_space, user_disk_quota)`` (Go ``parseOptions``)."""
    min_space = 0
    quota = False
    for option in options:
        if "=" not in option:
            raise InvalidOption(f"unable to parse key/value option: {option}")
        key, value = option.split("=", 1)
        key = key.strip().lower()
        value = value.strip()
        if key in ("btrfs.min_space", "min_space"):
            min_space = ram_in_bytes(value)
            quota = True
        elif key in ("btrfs.mountopt", "mountopt"):
            raise InvalidOption("btrfs driver does not support mount options")
        else:
            # containers/storage 1.43 text (HEAD appends the quoted option).
            raise InvalidOption(f"unknown option {key}")
    return min_space, quota


def read_version_header(path: str = VERSION_HEADER) -> list[tuple[str, str]]:
    """``Build Version`` / ``Library Version`` from btrfs-progs' ``version.h`` when present."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return []
    pairs: list[tuple[str, str]] = []
    build = re.search(r'#define\s+BTRFS_BUILD_VERSION\s+"([^"]*)"', text)
    if build:
        pairs.append(("Build Version", build.group(1)))
    parts = [re.search(rf"#define\s+BTRFS_LIB_{n}\s+(\d+)", text) for n in ("MAJOR", "MINOR", "PATCHLEVEL")]
    if all(parts):
        major, minor, patch = (int(m.group(1)) for m in parts if m)
        pairs.append(("Library Version", str(major * 10000 + minor * 100 + patch)))
    return pairs


def mkdir_all(path: str, mode: int = 0o700) -> None:
    """Go ``os.MkdirAll``: every missing component is created with ``mode`` (less the umask)."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        mkdir_all(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


@contextmanager
def _open_dir(path: str) -> Iterator[int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise storage_error("open", path, exc) from None
    try:
        yield fd
    finally:
        os.close(fd)


def is_subvolume(path: str) -> bool:
    """Whether ``path`` is a directory that is the root of a subvolume (inode 256)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_ino == ioctl.FIRST_FREE_OBJECTID


class BtrfsDriver(GraphDriver):
    """Graph driver keeping each layer in its own btrfs subvolume."""

    name = "btrfs"

    def __init__(self, options: DriverOptions) -> None:
        super().__init__(options)
        probe(options)
        self.subvolumes_dir = os.path.join(self.home, "subvolumes")
        self.quotas_dir = os.path.join(self.home, "quotas")
        mkdir_all(self.subvolumes_dir)
        self.min_space, user_quota = parse_options(options.options)
        try:
            self._own_mount = fs.make_private_mount(self.home)
        except OSError as exc:
            raise storage_error("mount", self.home, exc) from None
        self.quota_enabled = False
        if user_quota:
            self._enable_quota()

    # ---- helpers -----------------------------------------------------------------------------
    def layer_dir(self, layer_id: str) -> str:
        """``<home>/subvolumes/<id>``."""
        return os.path.join(self.subvolumes_dir, layer_id)

    def _update_quota_status(self) -> None:
        if self.quota_enabled:
            return
        with _open_dir(self.home) as fd:
            try:
                self.quota_enabled = ioctl.quota_status_present(fd)
            except OSError as exc:
                raise StorageError(f"failed to search qgroup for {self.home}: {_os_message(exc)}") from None

    def _enable_quota(self) -> None:
        self._update_quota_status()
        if self.quota_enabled:
            return
        with _open_dir(self.home) as fd:
            try:
                ioctl.quota_enable(fd)
            except OSError as exc:
                raise StorageError(f"failed to enable btrfs quota for {self.home}: {_os_message(exc)}") from None
        self.quota_enabled = True

    def _limit(self, path: str, size: int) -> None:
        with _open_dir(path) as fd:
            try:
                ioctl.qgroup_limit(fd, size)
            except OSError as exc:
                raise StorageError(f"failed to limit qgroup for {path}: {_os_message(exc)}") from None

    def _set_storage_size(self, path: str, size: int) -> None:
        if size <= 0:
            raise InvalidOption(f"btrfs: invalid storage size: {human_size(size)}")
        if self.min_space > 0 and size < self.min_space:
            raise InvalidOption(f"btrfs: storage size cannot be less than {human_size(self.min_space)}")
        self._enable_quota()
        self._limit(path, size)

    # ---- lifecycle ---------------------------------------------------------------------------
    def create(self, layer_id: str, parent: str, opts: CreateOpts, read_write: bool) -> None:
        """Create a subvolume (base layer) or a writable snapshot of ``parent``."""
        mkdir_all(self.subvolumes_dir)
        path = self.layer_dir(layer_id)
        with _open_dir(self.subvolumes_dir) as dir_fd:
            if not parent:
                try:
                    ioctl.subvol_create(dir_fd, layer_id)
                except OSError as exc:
                    raise StorageError(f"failed to create btrfs subvolume: {_os_message(exc)}") from None
                os.chmod(path, 0o555)
            else:
                parent_dir = self.layer_dir(parent)
                try:
                    st = os.stat(parent_dir)
                except OSError as exc:
                    raise storage_error("stat", parent_dir, exc) from None
                if not stat.S_ISDIR(st.st_mode):
                    raise StorageError(f"{parent_dir}: not a directory")
                with _open_dir(parent_dir) as src_fd:
                    try:
                        ioctl.snapshot_create(dir_fd, src_fd, layer_id)
                    except OSError as exc:
                        raise StorageError(f"failed to create btrfs snapshot: {_os_message(exc)}") from None
        storage_opt = opts.storage_opt
        if "size" in storage_opt:
            size = 0
            for key, value in storage_opt.items():
                if key.lower() == "size":
                    size = ram_in_bytes(value)
                else:
                    rendered = " ".join(f"{k}:{v}" for k, v in sorted(storage_opt.items()))
                    raise InvalidOption(f"unknown option {key.lower()} (map[{rendered}])")
            self._set_storage_size(path, size)
            mkdir_all(self.quotas_dir)
            quota_file = os.path.join(self.quotas_dir, layer_id)
            with open(quota_file, "w", encoding="ascii") as fh:
                fh.write(str(size))
            os.chmod(quota_file, 0o644)
        uid, gid = root_id(opts.uidmap), root_id(opts.gidmap)
        if uid or gid:
            os.chown(path, uid, gid)

    def remove(self, layer_id: str) -> None:
        """Destroy the layer's subvolume (and nested ones) and its quota group."""
        path = self.layer_dir(layer_id)
        try:
            os.stat(path)
        except OSError as exc:
            raise storage_error("stat", path, exc) from None
        try:
            os.remove(os.path.join(self.quotas_dir, layer_id))
        except FileNotFoundError:
            pass
        self._update_quota_status()
        try:
            self._subvol_delete(self.subvolumes_dir, layer_id)
        except StorageError:
            if self.quota_enabled:
                raise
        if os.path.lexists(path):
            import shutil

            shutil.rmtree(path)
        if self.quota_enabled:
            with _open_dir(self.home) as fd:
                try:
                    ioctl.quota_rescan_wait(fd)
                except OSError as exc:
                    raise StorageError(f"failed to rescan btrfs quota for {self.home}: {_os_message(exc)}") from None

    def _subvol_delete(self, dirpath: str, name: str) -> None:
        full = os.path.join(dirpath, name)
        self._delete_nested(full)
        with _open_dir(dirpath) as dir_fd:
            if self.quota_enabled:
                with _open_dir(full) as fd:
                    qgroup = ioctl.subvolume_id(fd)
                try:
                    ioctl.qgroup_destroy(dir_fd, qgroup)
                except OSError:
                    pass  # Go only logs this
            try:
                ioctl.snapshot_destroy(dir_fd, name)
            except OSError as exc:
                raise StorageError(
                    f"failed to destroy btrfs snapshot {dirpath} for {name}: {_os_message(exc)}"
                ) from None

    def _delete_nested(self, root: str) -> None:
        try:
            entries = list(os.scandir(root))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise storage_error("walking subvolumes: open", root, exc) from None
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if is_subvolume(entry.path):
                self._subvol_delete(root, entry.name)
            else:
                self._delete_nested(entry.path)

    def get(self, layer_id: str, opts: MountOpts) -> str:
        """Return the subvolume path (only the ``ro`` option is accepted; nothing is mounted)."""
        path = self.layer_dir(layer_id)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise storage_error("stat", path, exc) from None
        for option in opts.options:
            if option != "ro":
                raise InvalidOption("btrfs driver does not support mount options")
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"{path}: not a directory")
        try:
            with open(os.path.join(self.quotas_dir, layer_id), encoding="ascii") as fh:
                size = int(fh.read().strip(), 10)
        except (OSError, ValueError):
            size = -1
        if size >= 0 and size >= self.min_space:
            self._enable_quota()
            self._limit(path, size)
        return path

    def put(self, layer_id: str) -> None:
        """Nothing to release: ``get`` mounts nothing."""

    def exists(self, layer_id: str) -> bool:
        """Whether ``<home>/subvolumes/<id>`` exists."""
        return os.path.exists(self.layer_dir(layer_id))

    def list_layers(self) -> list[str]:
        """Directory names under ``<home>/subvolumes``."""
        try:
            return sorted(e.name for e in os.scandir(self.subvolumes_dir) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def status(self) -> list[tuple[str, str]]:
        """``Build Version`` and ``Library Version`` when btrfs-progs' header tells them."""
        return read_version_header()

    def cleanup(self) -> None:
        """Unmount the home's bind mount if this driver made it."""
        if self._own_mount:
            try:
                fs.unmount(self.home)
            except OSError as exc:
                raise storage_error("unmount", self.home, exc) from None
            self._own_mount = False
