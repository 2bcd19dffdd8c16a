"""The snapshotdir driver: one plain directory per layer, copied from its parent."""

from __future__ import annotations

import os

from cs_core.driver import (
    CreateOpts,
    DriverOptions,
    FileGetter,
    GraphDriver,
    MountOpts,
    ensure_dir,
    parse_driver_options,
)
from cs_core.errors import InvalidOption, LayerUnknown
from cs_core.fsutil import remove_all
from cs_core.idmap import root_id


class SnapshotDirDriver(GraphDriver):
    """Layers live in ``<home>/layers/<id>``; "mounting" hands out the directory."""

    name = "snapshotdir"

    def __init__(self, options: DriverOptions) -> None:
        super().__init__(options)
        for key, _value in parse_driver_options(self.name, options.options):
            raise InvalidOption(f"{self.name}: unknown option {key}")
        self.layers = os.path.join(self.home, "layers")
        ensure_dir(self.layers)

    def _path(self, layer_id: str) -> str:
        return os.path.join(self.layers, layer_id)

    def create(self, layer_id: str, parent: str, opts: CreateOpts, read_write: bool) -> None:
        path = self._path(layer_id)
        if parent:
            from cs_core.archive import copy_tree

            source = self._path(parent)
            st = os.stat(source)
            os.mkdir(path, 0o700)
            copy_tree(source, path)
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, st.st_mode & 0o7777)
        else:
            os.mkdir(path, 0o755)
            os.chown(path, root_id(opts.uidmap), root_id(opts.gidmap))

    def remove(self, layer_id: str) -> None:
        remove_all(self._path(layer_id))

    def get(self, layer_id: str, opts: MountOpts) -> str:
        path = self._path(layer_id)
        if not os.path.isdir(path):
            raise LayerUnknown(f"stat {path}: no such file or directory")
        return path

    def put(self, layer_id: str) -> None:
        """Nothing was mounted."""

    def exists(self, layer_id: str) -> bool:
        return os.path.isdir(self._path(layer_id))

    def list_layers(self) -> list[str]:
        return sorted(os.listdir(self.layers))

    def diff_getter(self, layer_id: str) -> FileGetter | None:
        root = self._path(layer_id)
        return lambda name: os.path.join(root, name.lstrip("/"))
