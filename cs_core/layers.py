"""The layer store: layer records, their tar-split data, big data and mount counts.

Records live in ``<graphroot>/<D>-layers/layers.<suffix>`` (``volatile-layers`` for volatile
layers); mount counts in ``<runroot>/<D>-layers/mountpoints.<suffix>`` under their own lock, so a
reboot (tmpfs run root) forgets them.  The contents are the graph driver's business; this store
calls it and keeps the records consistent with it (storage.md section 2).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from cs_core import gojson
from cs_core.driver import ApplyDiffOpts, CreateOpts, GraphDriver, MountOpts
from cs_core.errors import (
    DuplicateID,
    DuplicateName,
    LayerUnknown,
    NotFoundError,
    ReadOnlyStore,
    StorageError,
    UnsupportedCompression,
)
from cs_core.fsutil import atomic_write, big_data_file_name, is_mount_point, remove_all
from cs_core.hookspecs import MetadataBackendSpec
from cs_core.idmap import IDMap
from cs_core.locking import LockFile, get_lockfile
from cs_core.records import (
    COMPRESSION_BZIP2,
    COMPRESSION_NONE,
    COMPRESSION_XZ,
    LOCATION_STABLE,
    LOCATION_VOLATILE,
    Change,
    Layer,
    now,
)
from cs_core.recordstore import RecordStore, dedupe, generate_id

Maps = tuple[tuple[IDMap, ...], tuple[IDMap, ...]]


class LayerStore(RecordStore[Layer]):
    """The layers of one layer directory (read-write, or an additional read-only store)."""

    kind = "layer"

    def __init__(
        self,
        layer_dir: str,
        run_dir: str,
        driver: GraphDriver,
        backend: MetadataBackendSpec,
        resolve: Callable[[str, str, Any], str | None],
        read_only: bool = False,
        volatile_dir: str | None = None,
    ) -> None:
        files = {LOCATION_STABLE: os.path.join(layer_dir, "layers" + backend.suffix)}
        if not read_only or os.path.exists(os.path.join(layer_dir, "volatile-layers" + backend.suffix)):
            files[LOCATION_VOLATILE] = os.path.join(volatile_dir or layer_dir, "volatile-layers" + backend.suffix)
        lock = get_lockfile(os.path.join(layer_dir, "layers.lock"), read_only=read_only)
        super().__init__(Layer, backend, lock, files, resolve, read_only)
        self.layer_dir = layer_dir
        self.run_dir = run_dir
        self.driver = driver
        self.mount_lock: LockFile | None = None
        self.mount_file = ""
        if not read_only:
            self.mount_lock = get_lockfile(os.path.join(run_dir, "mountpoints.lock"))
            self.mount_file = os.path.join(run_dir, "mountpoints" + backend.suffix)
        self._mount_token: bytes | None = None
        self.by_compressed: dict[str, list[str]] = {}
        self.by_uncompressed: dict[str, list[str]] = {}
        self._incomplete = False

    # ---- loading --------------------------------------------------------------------------
    def after_load(self) -> None:
        self.by_compressed = {}
        self.by_uncompressed = {}
        for layer in self.records:
            self._index_digests(layer)
        self._incomplete = not self.read_only and any(layer.incomplete for layer in self.records)
        self._mount_token = None

    def _index_digests(self, layer: Layer) -> None:
        if layer.compressed_digest:
            self.by_compressed.setdefault(layer.compressed_digest, []).append(layer.id)
        if layer.uncompressed_digest:
            self.by_uncompressed.setdefault(layer.uncompressed_digest, []).append(layer.id)

    def _unindex_digests(self, layer: Layer) -> None:
        for index, digest in ((self.by_compressed, layer.compressed_digest), (self.by_uncompressed, layer.uncompressed_digest)):
            if digest and layer.id in index.get(digest, []):
                index[digest].remove(layer.id)
                if not index[digest]:
                    del index[digest]

    @contextmanager
    def reading(self) -> Iterator[None]:
        with super().reading():
            if self._incomplete and self._depth == 1:
                # Upgrade to the write lock to delete layers a crash left behind.
                with self.writing():
                    pass
            yield

    @contextmanager
    def writing(self) -> Iterator[None]:
        with super().writing():
            if self._incomplete:
                self._incomplete = False
                self.cleanup_incomplete()
            yield

    def cleanup_incomplete(self) -> None:
        """Delete every layer flagged ``incomplete`` (silently) and save."""
        incomplete = [layer for layer in self.records if layer.incomplete]
        for layer in incomplete:
            self._delete_contents(layer)
            self._unindex_digests(layer)
            self.remove(layer)
        if incomplete:
            self.save()

    # ---- mount state ----------------------------------------------------------------------
    @contextmanager
    def mount_state(self, write: bool) -> Iterator[None]:
        """Hold ``mountpoints.lock`` (exclusively when ``write``) with current mount counts."""
        if self.mount_lock is None:
            yield
            return
        if write:
            self.mount_lock.lock()
        else:
            self.mount_lock.rlock()
        try:
            token = self.mount_lock.current_token()
            if token != self._mount_token:
                self._load_mounts()
                self._mount_token = token
            yield
            if write:
                self._save_mounts()
        finally:
            self.mount_lock.unlock()

    def _load_mounts(self) -> None:
        for layer in self.records:
            layer.mount_point = ""
            layer.mount_count = 0
        try:
            with open(self.mount_file, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return
        if not data.strip():
            return
        try:
            entries = self.backend.decode(data)
        except ValueError:
            return
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("path"):
                continue
            found = self.get(str(entry.get("id", "")))
            if found is not None:
                found.mount_point = os.path.normpath(str(entry["path"]))
                found.mount_count = int(entry.get("count", 0))

    def _save_mounts(self) -> None:
        assert self.mount_lock is not None
        self._mount_token = self.mount_lock.record_write()
        entries = [
            {"id": layer.id, "path": layer.mount_point, "count": layer.mount_count}
            for layer in self.records
            if layer.mount_count > 0 and layer.mount_point
        ]
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        atomic_write(self.mount_file, self.backend.encode(entries))

    def save(self, locations: int | None = None) -> None:
        super().save(locations)
        if self.mount_lock is not None and self.mount_lock.locked_exclusive:
            self._save_mounts()

    # ---- paths ------------------------------------------------------------------------------
    def tar_split_path(self, layer_id: str) -> str:
        return os.path.join(self.layer_dir, f"{layer_id}.tar-split.gz")

    # ---- create / delete --------------------------------------------------------------------
    def create(
        self,
        layer_id: str,
        parent: Layer | None,
        names: list[str],
        mount_label: str,
        storage_opt: dict[str, str],
        uidmap: tuple[IDMap, ...],
        gidmap: tuple[IDMap, ...],
        writeable: bool,
        volatile: bool = False,
        template: Layer | None = None,
        diff: BinaryIO | None = None,
        flags: dict[str, Any] | None = None,
    ) -> Layer:
        """Create a layer (storage.md 2.4); the caller holds the write lock."""
        if self.read_only:
            raise ReadOnlyStore(f'not allowed to create new layers at "{self.layer_dir}": {ReadOnlyStore.default_message}')
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.layer_dir, mode=0o700, exist_ok=True)
        if not layer_id:
            layer_id = generate_id(lambda c: c in self.by_id_map or self.driver.exists(c))
        if layer_id in self.by_id_map:
            raise DuplicateID()
        names = dedupe(names)
        for name in names:
            if name in self.by_name_map:
                raise DuplicateName()
        layer = Layer(
            id=layer_id,
            names=names,
            parent=parent.id if parent is not None else "",
            mount_label=mount_label,
            created=now(),
            flags=dict(flags or {}),
            uidmap=tuple(uidmap),
            gidmap=tuple(gidmap),
            location=LOCATION_VOLATILE if volatile else LOCATION_STABLE,
        )
        tar_split: bytes | None = None
        if template is not None:
            for attr in (
                "metadata",
                "compressed_digest",
                "compressed_size",
                "uncompressed_digest",
                "toc_digest",
                "uncompressed_size",
                "compression",
            ):
                setattr(layer, attr, getattr(template, attr))
            layer.uidset = list(template.uidset)
            layer.gidset = list(template.gidset)
            try:
                with open(self.tar_split_path(template.id), "rb") as fh:
                    tar_split = fh.read()
            except FileNotFoundError:
                tar_split = None
        layer.flags["incomplete"] = True
        self.add(layer)
        self.save(layer.location)
        try:
            opts = CreateOpts(mount_label=mount_label, storage_opt=dict(storage_opt), uidmap=layer.uidmap, gidmap=layer.gidmap)
            old_maps: Maps | None = None
            if template is not None:
                self.driver.create_from_template(
                    layer_id,
                    template.id,
                    (template.uidmap, template.gidmap),
                    layer.parent,
                    (parent.uidmap, parent.gidmap) if parent else ((), ()),
                    opts,
                    writeable,
                )
                old_maps = (template.uidmap, template.gidmap)
            else:
                try:
                    self.driver.create(layer_id, layer.parent, opts, writeable)
                except StorageError as exc:
                    kind = "read-write " if writeable else ""
                    raise exc.wrap(f'creating {kind}layer with ID "{layer_id}"') from None
                if parent is not None:
                    old_maps = (parent.uidmap, parent.gidmap)
            new_maps = (layer.uidmap, layer.gidmap)
            if old_maps is not None and old_maps != new_maps:
                self.driver.update_layer_id_map(layer_id, old_maps, new_maps, mount_label)
            if tar_split is not None:
                atomic_write(self.tar_split_path(layer_id), tar_split)
            if diff is not None:
                self.apply_diff(layer, diff, save=False)
            else:
                self._index_digests(layer)
            del layer.flags["incomplete"]
            self.save(layer.location)
        except BaseException:
            try:
                self.delete(layer)
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
        return layer

    def _delete_contents(self, layer: Layer) -> None:
        try:
            self.driver.remove(layer.id)
        except NotFoundError:
            pass
        except FileNotFoundError:
            pass
        for path in (self.tar_split_path(layer.id), self.data_dir(layer.id)):
            remove_all(path)

    def delete(self, layer: Layer) -> None:
        """Delete a layer completely (storage.md 2.8); the caller holds the write lock."""
        if self.read_only:
            raise ReadOnlyStore()
        with self.mount_state(write=True):
            while layer.mount_count > 0:
                self._unmount_locked(layer, force=False)
        layer.flags["incomplete"] = True
        self.save(layer.location)
        self._delete_contents(layer)
        self._unindex_digests(layer)
        self.remove(layer)
        self.save(layer.location)

    # ---- diffs ------------------------------------------------------------------------------
    def apply_diff(self, layer: Layer, stream: BinaryIO, save: bool = True) -> int:
        """Apply a (possibly compressed) tar stream to ``layer`` and record its digests."""
        if self.read_only:
            raise ReadOnlyStore()
        from cs_core import archive

        ingest = archive.LayerIngest(stream)
        parent = layer.parent
        size = self.driver.apply_diff(
            layer.id,
            parent,
            ApplyDiffOpts(stream=ingest.tar_stream, uidmap=layer.uidmap, gidmap=layer.gidmap, mount_label=layer.mount_label),
        )
        result = ingest.finish()
        tmp_path = self.tar_split_path(layer.id)
        tmp = f"{os.path.dirname(tmp_path)}/.tmp-{os.path.basename(tmp_path)}{os.getpid()}"
        try:
            with open(tmp, "wb") as fh:
                ingest.write_tar_split(fh)
                fh.flush()
                os.fdatasync(fh.fileno())
                os.fchmod(fh.fileno(), 0o600)
            os.rename(tmp, tmp_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._unindex_digests(layer)
        layer.compressed_digest = result.compressed_digest
        layer.compressed_size = result.compressed_size
        layer.uncompressed_digest = result.uncompressed_digest
        layer.uncompressed_size = result.uncompressed_size
        layer.compression = result.compression
        layer.uidset = list(result.uidset)
        layer.gidset = list(result.gidset)
        self._index_digests(layer)
        if save:
            self.save(layer.location)
        return size

    def resolve_parent(self, layer: Layer, other: str | None, lookup: Callable[[str], Layer | None]) -> Layer | None:
        """The ``FROM`` layer for diff/changes: ``other`` if it resolves, else the parent."""
        if other:
            found = lookup(other)
            if found is not None:
                return found
        return lookup(layer.parent) if layer.parent else None

    def diff(self, layer: Layer, parent: Layer | None, out: BinaryIO, compression: int | None) -> None:
        """Write the layer's diff (storage.md 2.14) to ``out``."""
        if compression is None:
            compression = layer.compression
        if compression == COMPRESSION_BZIP2:
            raise UnsupportedCompression("unsupported compression format tar.bz2")
        if compression == COMPRESSION_XZ:
            raise UnsupportedCompression("unsupported compression format tar.xz")
        writer: BinaryIO = out
        closer = None
        if compression != COMPRESSION_NONE:
            from cs_core.archive import open_compressed_writer

            closer = open_compressed_writer(out, compression)
            writer = closer
        try:
            parent_id = parent.id if parent is not None else ""
            tar_split = self.tar_split_path(layer.id)
            if parent_id == layer.parent and os.path.exists(tar_split):
                self._reassemble(layer, tar_split, writer)
            else:
                parent_maps: Maps = (parent.uidmap, parent.gidmap) if parent is not None else ((), ())
                self.driver.diff(layer.id, (layer.uidmap, layer.gidmap), parent_id, parent_maps, layer.mount_label, writer)
        finally:
            if closer is not None:
                closer.close()

    def _reassemble(self, layer: Layer, tar_split: str, out: BinaryIO) -> None:
        getter = self.driver.diff_getter(layer.id)
        mounted = False
        if getter is None:
            root = self.driver.get(layer.id, MountOpts(options=["ro"], mount_label=layer.mount_label))
            mounted = True

            def getter(name: str) -> str:
                return os.path.join(root, name.lstrip("/"))

        try:
            with open(tar_split, "rb") as fh:
                from cs_core.archive import reassemble

                reassemble(fh, getter, out)
        finally:
            if mounted:
                self.driver.put(layer.id)

    def changes(self, layer: Layer, parent: Layer | None) -> list[Change]:
        parent_maps: Maps = (parent.uidmap, parent.gidmap) if parent is not None else ((), ())
        return self.driver.changes(
            layer.id, (layer.uidmap, layer.gidmap), parent.id if parent else "", parent_maps, layer.mount_label
        )

    def diff_size(self, layer: Layer, parent: Layer | None) -> int:
        parent_maps: Maps = (parent.uidmap, parent.gidmap) if parent is not None else ((), ())
        return self.driver.diff_size(
            layer.id, (layer.uidmap, layer.gidmap), parent.id if parent else "", parent_maps, layer.mount_label
        )

    # ---- mounting ---------------------------------------------------------------------------
    def mount(self, layer: Layer, opts: MountOpts) -> str:
        """Mount ``layer`` (counting mounts in ``mountpoints``); return the path."""
        if self.read_only and "ro" not in opts.options:
            raise ReadOnlyStore(f"not allowed to update mount locations for layers at {self.layer_dir}: {ReadOnlyStore.default_message}")
        with self.mount_state(write=True):
            if layer.mount_count > 0 and layer.mount_point and self._still_mounted(layer):
                layer.mount_count += 1
                return layer.mount_point
            if not opts.mount_label:
                opts.mount_label = layer.mount_label
            if (opts.uidmap or opts.gidmap) and not self.driver.supports_shifting(opts.uidmap, opts.gidmap):
                if (tuple(opts.uidmap), tuple(opts.gidmap)) != (layer.uidmap, layer.gidmap):
                    raise StorageError(f"cannot mount layer {layer.id}: shifting not enabled")
            path = self.driver.get(layer.id, opts)
            layer.mount_point = os.path.normpath(path)
            layer.mount_count += 1
            return layer.mount_point

    def _still_mounted(self, layer: Layer) -> bool:
        if self.driver.name in ("vfs", "btrfs") or not os.path.isdir(layer.mount_point):
            return os.path.isdir(layer.mount_point)
        return is_mount_point(layer.mount_point)

    def unmount(self, layer: Layer, force: bool) -> bool:
        """Drop one mount (all with ``force``); return whether it is still mounted."""
        with self.mount_state(write=True):
            return self._unmount_locked(layer, force)

    def _unmount_locked(self, layer: Layer, force: bool) -> bool:
        if force and layer.mount_count > 0:
            layer.mount_count = 1
        if layer.mount_count > 1:
            layer.mount_count -= 1
            return True
        try:
            self.driver.put(layer.id)
        except (NotFoundError, FileNotFoundError):
            pass
        layer.mount_point = ""
        layer.mount_count = max(0, layer.mount_count - 1)
        return False

    def mounted(self, layer: Layer) -> int:
        with self.mount_state(write=False):
            return layer.mount_count

    def refresh_mounts(self) -> None:
        """Make the records' mount counts current (for listings)."""
        with self.mount_state(write=False):
            pass

    # ---- big data, metadata, flags ---------------------------------------------------------
    def set_big_data(self, layer: Layer, key: str, stream: BinaryIO) -> None:
        from cs_core.fsutil import atomic_write_stream

        if self.read_only:
            raise ReadOnlyStore()
        name = big_data_file_name(key)
        os.makedirs(self.data_dir(layer.id), mode=0o700, exist_ok=True)
        atomic_write_stream(os.path.join(self.data_dir(layer.id), name), stream)
        if key not in layer.big_data_names:
            layer.big_data_names.append(key)
            self.save(layer.location)

    def lookup_by_digest(self, digest: str, compressed: bool) -> list[Layer]:
        index = self.by_compressed if compressed else self.by_uncompressed
        return [self.by_id_map[i] for i in index.get(digest, []) if i in self.by_id_map]

    def require(self, reference: str) -> Layer:
        layer = self.get(reference)
        if layer is None:
            raise LayerUnknown()
        return layer


def wipe_order(layers: list[Layer]) -> list[Layer]:
    """Newest first, so children go before their parents."""
    return sorted(layers, key=lambda layer: gojson.parse_time_ns(layer.created), reverse=True)
