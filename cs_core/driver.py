"""The graph-driver interface, and the generic ("naive") diff built on it.

A graph driver keeps the bytes of layers: it creates a layer's directory (from its parent's),
makes it available at a path (``get``) and releases it (``put``), removes it, and moves tar
diffs in and out.  Drivers register through the ``cs_graphdrivers`` hook (see
:mod:`cs_core.hookspecs`) with a :class:`GraphDriverSpec`.

Drivers that have no native way to diff inherit the naive implementations of
:class:`GraphDriver` (``diff``, ``changes``, ``apply_diff``, ``diff_size``,
``update_layer_id_map``), which mount layers with :meth:`GraphDriver.get` and use the core's
archive engine (:mod:`cs_core.archive`).  ``cs_core.testing`` ships the conformance kit every
driver should pass.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from cs_core.errors import DriverNotSupported, InvalidOption, NotSupported
from cs_core.idmap import IDMap
from cs_core.records import Change

Mapping = tuple[IDMap, ...]


@dataclass(slots=True)
class DriverOptions:
    """What the store hands a driver factory."""

    #: The driver's registered name (``vfs``, ``overlay`` ...).
    name: str
    #: ``<graphroot>/<name>``: the driver's own directory.
    home: str
    #: ``<runroot>/<name>``: the driver's runtime directory.
    run_home: str
    graph_root: str
    run_root: str
    #: ``KEY=VALUE`` driver options (``--storage-opt``, ``STORAGE_OPTS``, config), verbatim.
    options: list[str] = field(default_factory=list)
    #: Split image store root, or "".
    image_store: str = ""
    driver_priority: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CreateOpts:
    """Options for creating one layer."""

    mount_label: str = ""
    #: Per-layer driver options (``size`` ...).
    storage_opt: dict[str, str] = field(default_factory=dict)
    uidmap: Mapping = ()
    gidmap: Mapping = ()


@dataclass(slots=True)
class MountOpts:
    """Options for making a layer's root available."""

    mount_label: str = ""
    uidmap: Mapping = ()
    gidmap: Mapping = ()
    #: Mount options; ``ro`` asks for a read-only mount.
    options: list[str] = field(default_factory=list)
    volatile: bool = False
    disable_shifting: bool = False


@dataclass(slots=True)
class ApplyDiffOpts:
    """Options for extracting an uncompressed tar stream into a layer."""

    stream: BinaryIO
    uidmap: Mapping = ()
    gidmap: Mapping = ()
    mount_label: str = ""
    ignore_chown_errors: bool = False
    force_mask: int | None = None


class FileGetter(Protocol):
    """Finds the file holding a tar member's payload (used to reproduce diffs from tar-split)."""

    def __call__(self, name: str) -> str:
        """Return the path of the member called ``name`` (as recorded in the tar)."""
        ...


def parse_driver_options(driver: str, options: list[str], prefixes: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Split ``KEY=VALUE`` options, lower-case the key and strip ``<driver>.`` / ``.`` prefixes.

    Raises ``InvalidOption`` with ``unable to parse key/value option: X`` for a string without
    ``=``.
    """
    result: list[tuple[str, str]] = []
    accepted = tuple(f"{p}." for p in (driver, *prefixes))
    for option in options:
        if "=" not in option:
            raise InvalidOption(f"unable to parse key/value option: {option}")
        key, value = option.split("=", 1)
        key = key.strip().lower()
        value = value.strip()
        for prefix in accepted:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        else:
            if key.startswith("."):
                key = key[1:]
        result.append((key, value))
    return result


def parse_bool(value: str) -> bool:
    """Go ``strconv.ParseBool``."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidOption(f'strconv.ParseBool: parsing "{value}": invalid syntax')


class GraphDriver(ABC):
    """A graph driver instance bound to one store's home directory.

    Subclasses implement the abstract methods; the diff family has naive defaults.
    """

    #: Registered name.
    name: str = ""

    def __init__(self, options: DriverOptions) -> None:
        self.options = options
        self.home = options.home
        self.run_home = options.run_home

    # ---- layer lifecycle -------------------------------------------------------------------
    @abstractmethod
    def create(self, layer_id: str, parent: str, opts: CreateOpts, read_write: bool) -> None:
        """Create ``layer_id`` whose contents start as ``parent``'s ("" = empty base layer).

        ``read_write`` is true for container layers (``CreateReadWrite``).
        """

    def create_from_template(
        self,
        layer_id: str,
        template: str,
        template_maps: tuple[Mapping, Mapping],
        parent: str,
        parent_maps: tuple[Mapping, Mapping],
        opts: CreateOpts,
        read_write: bool,
    ) -> None:
        """Create a layer whose contents equal ``template``'s merged contents."""
        self.create(layer_id, template, opts, read_write)

    @abstractmethod
    def remove(self, layer_id: str) -> None:
        """Delete the layer's data now."""

    @abstractmethod
    def get(self, layer_id: str, opts: MountOpts) -> str:
        """Make the layer's root available (mount it) and return its absolute path."""

    @abstractmethod
    def put(self, layer_id: str) -> None:
        """Release one reference taken by :meth:`get`; unmount when none remain."""

    @abstractmethod
    def exists(self, layer_id: str) -> bool:
        """Whether the driver holds data for ``layer_id``."""

    def list_layers(self) -> list[str]:
        """IDs of every layer kept in the driver's home; may raise ``NotSupported``."""
        raise DriverNotSupported()

    def status(self) -> list[tuple[str, str]]:
        """Diagnostic ``(key, value)`` pairs printed by ``status`` after the four basic lines."""
        return []

    def metadata(self, layer_id: str) -> dict[str, str] | None:
        """Driver-specific information about a layer (overlay: ``UpperDir`` ...)."""
        return None

    def cleanup(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release driver resources at shutdown (e.g. unmount the home bind mount)."""

    def additional_image_stores(self) -> list[str]:
        """Paths of additional read-only image stores configured for this driver."""
        return []

    def supports_shifting(self, uidmap: Mapping, gidmap: Mapping) -> bool:
        """Whether one on-disk layer can be presented with arbitrary ID mappings at mount time."""
        return False

    def read_write_disk_usage(self, layer_id: str) -> tuple[int, int]:
        """``(bytes, inodes)`` used by the writable part of the layer."""
        from cs_core.archive import disk_usage

        path = self.get(layer_id, MountOpts(options=["ro"]))
        try:
            return disk_usage(path)
        finally:
            self.put(layer_id)

    def diff_getter(self, layer_id: str) -> FileGetter | None:
        """A getter for tar-split reassembly, or ``None`` to have the store mount the layer."""
        return None

    def dedup_dirs(self, layer_ids: list[str]) -> list[str]:
        """Directories whose files ``dedup`` may share between the given layers (default: none).

        Only layers kept in the driver's own home count; the result lists existing directories
        in the order of ``layer_ids`` (vfs: the layer directories, overlay: the ``diff``
        directories, btrfs: none, as subvolume snapshots already share their data).
        """
        return []

    # ---- naive diff family -------------------------------------------------------------------
    def _mount_ro(self, layer_id: str, maps: tuple[Mapping, Mapping]) -> str:
        return self.get(layer_id, MountOpts(options=["ro"], uidmap=maps[0], gidmap=maps[1], disable_shifting=True))

    def diff(
        self,
        layer_id: str,
        maps: tuple[Mapping, Mapping],
        parent: str,
        parent_maps: tuple[Mapping, Mapping],
        mount_label: str,
        out: BinaryIO,
    ) -> None:
        """Write the uncompressed tar of the layer's changes relative to ``parent`` to ``out``."""
        from cs_core import archive

        layer_dir = self._mount_ro(layer_id, maps)
        try:
            if not parent:
                archive.write_tree_tar(out, layer_dir, maps)
                return
            parent_dir = self._mount_ro(parent, parent_maps)
            try:
                changes = archive.changes_dirs(layer_dir, maps, parent_dir, parent_maps)
                archive.export_changes(out, layer_dir, changes, maps)
            finally:
                self.put(parent)
        finally:
            self.put(layer_id)

    def changes(
        self,
        layer_id: str,
        maps: tuple[Mapping, Mapping],
        parent: str,
        parent_maps: tuple[Mapping, Mapping],
        mount_label: str,
    ) -> list[Change]:
        """The changes of the layer relative to ``parent`` ("" = relative to an empty tree)."""
        from cs_core import archive

        layer_dir = self._mount_ro(layer_id, maps)
        try:
            if not parent:
                return archive.changes_dirs(layer_dir, maps, None, ((), ()))
            parent_dir = self._mount_ro(parent, parent_maps)
            try:
                return archive.changes_dirs(layer_dir, maps, parent_dir, parent_maps)
            finally:
                self.put(parent)
        finally:
            self.put(layer_id)

    def diff_size(
        self,
        layer_id: str,
        maps: tuple[Mapping, Mapping],
        parent: str,
        parent_maps: tuple[Mapping, Mapping],
        mount_label: str,
    ) -> int:
        """Bytes of the non-directory entries added or modified relative to ``parent``."""
        from cs_core import archive

        layer_dir = self._mount_ro(layer_id, maps)
        try:
            if not parent:
                changes = archive.changes_dirs(layer_dir, maps, None, ((), ()))
            else:
                parent_dir = self._mount_ro(parent, parent_maps)
                try:
                    changes = archive.changes_dirs(layer_dir, maps, parent_dir, parent_maps)
                finally:
                    self.put(parent)
            return archive.changes_size(layer_dir, changes)
        finally:
            self.put(layer_id)

    def apply_diff(self, layer_id: str, parent: str, opts: ApplyDiffOpts) -> int:
        """Extract an uncompressed tar into the layer (whiteouts delete); return the payload size."""
        from cs_core import archive

        path = self.get(layer_id, MountOpts(mount_label=opts.mount_label))
        try:
            return archive.extract_layer(
                path,
                opts.stream,
                maps=(opts.uidmap, opts.gidmap),
                ignore_chown_errors=opts.ignore_chown_errors,
                force_mask=opts.force_mask,
            )
        finally:
            self.put(layer_id)

    def update_layer_id_map(
        self,
        layer_id: str,
        to_container: tuple[Mapping, Mapping],
        to_host: tuple[Mapping, Mapping],
        mount_label: str,
    ) -> None:
        """Re-own every file of the layer: host -> container via ``to_container``, -> host via ``to_host``."""
        from cs_core import archive

        path = self.get(layer_id, MountOpts(mount_label=mount_label))
        try:
            archive.chown_by_maps(path, to_container, to_host)
        finally:
            self.put(layer_id)


#: ``factory(options) -> GraphDriver``.
DriverFactory = Callable[[DriverOptions], GraphDriver]
#: ``probe(options)`` raises ``DriverNotSupported`` (or ``NotSupported``) where the driver cannot run.
DriverProbe = Callable[[DriverOptions], None]


@dataclass(frozen=True, slots=True)
class GraphDriverSpec:
    """What a driver plugin registers through ``cs_graphdrivers``."""

    name: str
    factory: DriverFactory
    #: Raise ``DriverNotSupported`` where the driver cannot work (automatic selection moves on).
    probe: DriverProbe | None = None
    #: Lower runs first in automatic selection when no ``driver_priority`` is configured.
    priority: int = 100
    #: Free-form capability names (``native-diff``, ``shifting``, ``quota`` ...).
    capabilities: frozenset[str] = frozenset()
    #: Other names that select this driver (``overlay2`` for overlay).
    aliases: tuple[str, ...] = ()


def ensure_dir(path: str, mode: int = 0o700) -> None:
    """``mkdir -p`` with ``mode`` for the directories created."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


__all__ = [
    "ApplyDiffOpts",
    "CreateOpts",
    "DriverFactory",
    "DriverOptions",
    "DriverProbe",
    "FileGetter",
    "GraphDriver",
    "GraphDriverSpec",
    "Mapping",
    "MountOpts",
    "NotSupported",
    "ensure_dir",
    "parse_bool",
    "parse_driver_options",
]
