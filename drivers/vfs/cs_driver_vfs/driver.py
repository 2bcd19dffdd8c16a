"""The vfs driver implementation."""

from __future__ import annotations

import os

from cs_core.driver import (
    ApplyDiffOpts,
    CreateOpts,
    DriverOptions,
    FileGetter,
    GraphDriver,
    Mapping,
    MountOpts,
    ensure_dir,
    parse_bool,
    parse_driver_options,
)
from cs_core.errors import InvalidOption, LayerUnknown, StorageError
from cs_core.idmap import root_id


class VfsDriver(GraphDriver):
    """Layers are plain directories under ``<home>/dir``; "mounting" returns the directory."""

    name = "vfs"

    def __init__(self, options: DriverOptions) -> None:
        super().__init__(options)
        self.ignore_chown_errors = False
        self.image_stores: list[str] = []
        parsed = parse_driver_options("vfs", options.options)
        for option, (key, value) in zip(options.options, parsed):
            if key == "imagestore" or key == "additionalimagestore":
                self.image_stores.extend(p for p in value.split(",") if p)
            elif key == "ignore_chown_errors":
                self.ignore_chown_errors = parse_bool(value)
            else:
                # Go names the key as given (lower-cased, prefix kept): "vfs.bogus"; only
                # "vfs.mountopt" gets its own text.
                given = option.split("=", 1)[0].strip().lower()
                if given == "vfs.mountopt":
                    raise InvalidOption("vfs driver does not support mount options")
                raise InvalidOption(f"vfs driver does not support {given} options")
        self.dir_root = os.path.join(self.home, "dir")
        ensure_dir(self.dir_root)

    # ---- paths ---------------------------------------------------------------------------
    def _own_path(self, layer_id: str) -> str:
        return os.path.join(self.dir_root, layer_id)

    def dir(self, layer_id: str) -> str:
        """The layer's directory: in the home, else in an additional image store."""
        own = self._own_path(layer_id)
        if os.path.isdir(own):
            return own
        for store in self.image_stores:
            candidate = os.path.join(store, "vfs", "dir", layer_id)
            if os.path.isdir(candidate):
                return candidate
        return own

    # ---- lifecycle -------------------------------------------------------------------------
    def create(self, layer_id: str, parent: str, opts: CreateOpts, read_write: bool) -> None:
        if opts.storage_opt:
            raise InvalidOption("--storage-opt is not supported for vfs")
        path = self._own_path(layer_id)
        ensure_dir(self.dir_root)
        try:
            if parent:
                parent_dir = self.dir(parent)
                st = os.stat(parent_dir)
                os.mkdir(path, 0o700)
                from cs_core.archive import copy_tree

                copy_tree(parent_dir, path)
                os.chown(path, st.st_uid, st.st_gid)
                os.chmod(path, st.st_mode & 0o7777)
            else:
                os.mkdir(path, 0o555)
                os.chown(path, root_id(opts.uidmap), root_id(opts.gidmap))
                os.chmod(path, 0o555)
        except BaseException:
            if os.path.lexists(path):
                from cs_core.fsutil import remove_all

                remove_all(path)
            raise

    def remove(self, layer_id: str) -> None:
        from cs_core.fsutil import remove_all

        path = self._own_path(layer_id)
        if os.path.isdir(path):
            _make_writable(path)
        remove_all(path)

    def get(self, layer_id: str, opts: MountOpts) -> str:
        if any(o != "ro" for o in opts.options if o):
            raise InvalidOption("vfs driver does not support mount options")
        path = self.dir(layer_id)
        if not os.path.isdir(path):
            raise LayerUnknown(f"stat {path}: no such file or directory")
        return path

    def put(self, layer_id: str) -> None:
        """Nothing is mounted, so nothing to release."""

    def exists(self, layer_id: str) -> bool:
        return os.path.isdir(self.dir(layer_id))

    def list_layers(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.dir_root) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def additional_image_stores(self) -> list[str]:
        return list(self.image_stores)

    def diff_getter(self, layer_id: str) -> FileGetter | None:
        root = self.dir(layer_id)

        def getter(name: str) -> str:
            return os.path.join(root, name.lstrip("/"))

        return getter

    def apply_diff(self, layer_id: str, parent: str, opts: ApplyDiffOpts) -> int:
        if self.ignore_chown_errors:
            opts.ignore_chown_errors = True
        return super().apply_diff(layer_id, parent, opts)

    def update_layer_id_map(
        self,
        layer_id: str,
        to_container: tuple[Mapping, Mapping],
        to_host: tuple[Mapping, Mapping],
        mount_label: str,
    ) -> None:
        super().update_layer_id_map(layer_id, to_container, to_host, mount_label)
        path = self._own_path(layer_id)
        try:
            os.chown(path, root_id(to_host[0]), root_id(to_host[1]))
        except OSError as exc:
            raise StorageError(f"chown {path}: {exc.strerror}") from None

    def dedup_dirs(self, layer_ids: list[str]) -> list[str]:
        """The layer directories of the given layers kept in the home (``dedup``)."""
        return [path for path in map(self._own_path, layer_ids) if os.path.isdir(path)]


def _make_writable(path: str) -> None:
    """Give the owner write permission on directories so removal cannot fail on 0555 trees."""
    for dirpath, dirnames, _files in os.walk(path):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            try:
                if not os.path.islink(full):
                    os.chmod(full, os.lstat(full).st_mode & 0o7777 | 0o700)
            except OSError:
                pass
    try:
        os.chmod(path, os.lstat(path).st_mode & 0o7777 | 0o700)
    except OSError:
        pass
