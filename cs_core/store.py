"""The Store: the facade over the layer, image and container stores.

It holds the rules (names unique per kind, no deleting a layer in use, incomplete layers cleaned
up, mapped top layers), takes the locks in the documented order (layers, images, containers),
and fires the event hooks after each change.  Record stores hold records; the graph driver holds
bytes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, BinaryIO

from cs_core import __version__
from cs_core.config import StoreOptions, plugin_driver_options
from cs_core.containers import ContainerStore
from cs_core.driver import DriverOptions, GraphDriver, MountOpts
from cs_core.errors import (
    ContainerUnknown,
    DigestUnknown,
    DriverNotSupported,
    DuplicateID,
    FileDoesNotExist,
    ImageUnknown,
    ImageUsedByContainer,
    LayerHasChildren,
    LayerNotMounted,
    LayerUnknown,
    LayerUsedByContainer,
    LayerUsedByImage,
    NotAContainer,
    NotALayer,
    NotAnImage,
    NotLayerImageOrContainer,
    ParentIsContainer,
    ReadOnlyStore,
    SizeUnknown,
    StorageError,
)
from cs_core.fsutil import remove_all
from cs_core.idmap import IDMap, check_no_overlap, to_container
from cs_core.images import ImageStore
from cs_core.layers import LayerStore, wipe_order
from cs_core.locking import get_lockfile
from cs_core.plugins import PluginSet, load_plugins, select_driver
from cs_core.records import LOCATION_VOLATILE, Change, Container, Image, Layer, now
from cs_core.recordstore import dedupe, generate_id

Mapping = tuple[IDMap, ...]


def _debug(msg: str, *args: Any) -> None:
    """Log on the ``cs_core`` logger; until something imports logging, nobody could be listening."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("cs_core").debug(msg, *args)


def _mkdir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)


def open_store(options: StoreOptions) -> Store:
    """Open (creating directories as needed) the store described by ``options``."""
    return Store(options)


class Store:
    """A containers-storage store: graph root, run root, one driver, three record stores."""

    def __init__(self, options: StoreOptions) -> None:
        self.options = options
        self.graph_root = os.path.abspath(options.graph_root)
        self.run_root = os.path.abspath(options.run_root)
        self.image_store = options.image_store
        self.transient = options.transient_store
        if options.image_store and os.path.abspath(options.image_store) == self.graph_root:
            raise StorageError(
                f"imagestore {options.image_store} must either be not set or be a different than graphroot"
            )
        self.plugins: PluginSet = load_plugins(options.metadata, options.resolvers, options.extensions)
        _mkdir(self.run_root)
        _mkdir(self.graph_root)
        if options.driver:
            _mkdir(os.path.join(self.graph_root, options.driver))

        def make_options(name: str) -> DriverOptions:
            return DriverOptions(
                name=name,
                home=os.path.join(self.graph_root, name),
                run_home=os.path.join(self.run_root, name),
                graph_root=self.graph_root,
                run_root=self.run_root,
                options=plugin_driver_options(options, name) + list(options.driver_options),
                image_store=self.image_store,
                driver_priority=list(options.driver_priority),
            )

        try:
            spec, driver_options = select_driver(self.plugins, options.driver, make_options, options.driver_priority)
        except DriverNotSupported as exc:
            if options.driver:
                # Exactly Go's text (scripts match it); what is installed is in the debug log.
                _debug("graph driver %r: %s", options.driver, exc)
                raise DriverNotSupported(
                    f"failed to GetDriver graph {options.driver} {self.graph_root}: {DriverNotSupported.default_message}"
                ) from None
            raise
        self.driver_name = spec.name
        self.driver_options = list(options.driver_options)
        _mkdir(driver_options.home)
        self.driver: GraphDriver = spec.factory(driver_options)
        d = self.driver_name
        for sub in (f"{d}-images", f"{d}-containers", f"{d}-layers"):
            _mkdir(os.path.join(self.graph_root, sub))
        for sub in (f"{d}-containers", f"{d}-layers", f"{d}-locks"):
            _mkdir(os.path.join(self.run_root, sub))
        self.storage_lock = get_lockfile(os.path.join(self.graph_root, "storage.lock"))
        self.userns_lock = get_lockfile(os.path.join(self.graph_root, "userns.lock"))
        backend = self.plugins.backend
        resolve = self.plugins.resolve
        self.layer_store = LayerStore(
            os.path.join(self.graph_root, f"{d}-layers"),
            os.path.join(self.run_root, f"{d}-layers"),
            self.driver,
            backend,
            resolve,
            volatile_dir=os.path.join(self.run_root, f"{d}-layers") if self.transient else None,
        )
        self.ro_layer_stores: list[LayerStore] = []
        self.ro_image_stores: list[ImageStore] = []
        for extra in self.driver.additional_image_stores():
            for sub in (f"{d}-layers", f"{d}-images"):
                _mkdir(os.path.join(extra, sub))
            self.ro_layer_stores.append(
                LayerStore(os.path.join(extra, f"{d}-layers"), "", self.driver, backend, resolve, read_only=True)
            )
            self.ro_image_stores.append(ImageStore(os.path.join(extra, f"{d}-images"), backend, resolve, read_only=True))
        self.image_store_rw = ImageStore(os.path.join(self.graph_root, f"{d}-images"), backend, resolve)
        self.container_store = ContainerStore(
            os.path.join(self.graph_root, f"{d}-containers"),
            os.path.join(self.run_root, f"{d}-containers"),
            backend,
            resolve,
            transient=self.transient,
        )
        _debug("Root: %s", self.graph_root)
        _debug("Run Root: %s", self.run_root)
        _debug("Driver Name: %s", self.driver_name)
        _debug("Driver Options: %s", self.driver_options)

    # ---- plumbing -------------------------------------------------------------------------
    def _notify(self, event: str, **kwargs: Any) -> None:
        self.plugins.notify(event, store=self, **kwargs)

    @contextmanager
    def _read_all(self) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(self.layer_store.reading())
            for store in self.ro_layer_stores:
                stack.enter_context(store.reading())
            stack.enter_context(self.image_store_rw.reading())
            for istore in self.ro_image_stores:
                stack.enter_context(istore.reading())
            stack.enter_context(self.container_store.reading())
            yield

    @contextmanager
    def _write_all(self) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(self.layer_store.writing())
            for store in self.ro_layer_stores:
                stack.enter_context(store.reading())
            stack.enter_context(self.image_store_rw.writing())
            for istore in self.ro_image_stores:
                stack.enter_context(istore.reading())
            stack.enter_context(self.container_store.writing())
            yield

    def _layer_stores(self) -> list[LayerStore]:
        return [self.layer_store, *self.ro_layer_stores]

    def _image_stores(self) -> list[ImageStore]:
        return [self.image_store_rw, *self.ro_image_stores]

    def _find_layer(self, reference: str) -> Layer | None:
        for store in self._layer_stores():
            layer = store.get(reference)
            if layer is not None:
                return layer
        return None

    def _require_layer(self, reference: str) -> Layer:
        layer = self._find_layer(reference)
        if layer is None:
            raise LayerUnknown()
        return layer

    def _find_image(self, reference: str) -> Image | None:
        image = self.image_store_rw.get(reference)
        if image is not None:
            return image
        for store in self.ro_image_stores:
            image = store.get(reference)
            if image is not None and image.id not in self.image_store_rw.by_id_map:
                return image
        return None

    def _require_image(self, reference: str) -> Image:
        image = self._find_image(reference)
        if image is None:
            raise ImageUnknown(f'locating image with ID "{reference}": {ImageUnknown.default_message}')
        return image

    def _require_container(self, reference: str) -> Container:
        container = self.container_store.get(reference)
        if container is None:
            raise ContainerUnknown()
        return container

    def _store_of_layer(self, layer: Layer) -> LayerStore:
        for store in self._layer_stores():
            if store.by_id_map.get(layer.id) is layer:
                return store
        return self.layer_store

    # ---- layers -----------------------------------------------------------------------------
    def create_layer(
        self,
        parent: str = "",
        *,
        layer_id: str = "",
        names: list[str] | tuple[str, ...] = (),
        mount_label: str = "",
        writeable: bool = True,
        uidmap: Mapping = (),
        gidmap: Mapping = (),
        host_uid_mapping: bool = False,
        host_gid_mapping: bool = False,
        diff: BinaryIO | None = None,
        storage_opt: dict[str, str] | None = None,
        volatile: bool = False,
    ) -> Layer:
        """Create a layer (and apply ``diff`` to it when given, as ``import-layer``)."""
        with self._write_all():
            parent_layer: Layer | None = None
            if parent:
                parent_layer = self._require_layer(parent)
                if parent_layer.id in self.container_store.by_layer_map:
                    raise ParentIsContainer()
            if host_uid_mapping:
                uidmap = ()
            elif not uidmap and parent_layer is not None:
                uidmap = parent_layer.uidmap
            if host_gid_mapping:
                gidmap = ()
            elif not gidmap and parent_layer is not None:
                gidmap = parent_layer.gidmap
            layer = self.layer_store.create(
                layer_id,
                parent_layer,
                list(names),
                mount_label,
                storage_opt or {},
                tuple(uidmap),
                tuple(gidmap),
                writeable,
                volatile=volatile,
                diff=diff,
            )
        self._notify("cs_layer_created", layer=layer)
        return layer

    def layers(self) -> list[Layer]:
        """Every layer of every layer store, in listing order."""
        with self._read_all():
            self.layer_store.refresh_mounts()
            seen: set[str] = set()
            out = []
            for store in self._layer_stores():
                for layer in store.records:
                    if layer.id not in seen:
                        seen.add(layer.id)
                        out.append(layer)
            return out

    def layer(self, reference: str) -> Layer:
        with self._read_all():
            return self._require_layer(reference)

    def layers_by_digest(self, digest: str, compressed: bool = False) -> list[Layer]:
        from cs_core.digests import validate_digest

        try:
            validate_digest(digest)
        except StorageError as exc:
            raise exc.wrap(f'looking for layers matching digest "{digest}"') from None
        with self._read_all():
            found = []
            for store in self._layer_stores():
                found.extend(store.lookup_by_digest(digest, compressed))
        if not found:
            raise LayerUnknown()
        return found

    def _layer_users(self, layer_id: str) -> None:
        for other in self.layer_store.records:
            if other.parent == layer_id:
                raise LayerHasChildren(f"used by layer {other.id}: {LayerHasChildren.default_message}")
        for image in self.image_store_rw.records:
            if image.top_layer == layer_id:
                raise LayerUsedByImage(f"layer {layer_id} used by image {image.id}: {LayerUsedByImage.default_message}")
        for container in self.container_store.records:
            if container.layer_id == layer_id:
                raise LayerUsedByContainer(
                    f"layer {layer_id} used by container {container.id}: {LayerUsedByContainer.default_message}"
                )

    def _delete_layer_unchecked(self, layer: Layer) -> None:
        try:
            self.layer_store.delete(layer)
        except StorageError as exc:
            raise exc.wrap(f"delete layer {layer.id}") from None
        for image in self.image_store_rw.records:
            if layer.id in image.mapped_top_layers:
                image.mapped_top_layers.remove(layer.id)
                self.image_store_rw.save()
        self._notify("cs_layer_deleted", layer_id=layer.id)

    def delete_layer(self, reference: str) -> None:
        """Delete a layer nobody uses (storage.md 5.3: resolved before the checks)."""
        with self._write_all():
            layer = self.layer_store.get(reference)
            if layer is None:
                raise NotALayer()
            self._layer_users(layer.id)
            self._delete_layer_unchecked(layer)

    def apply_diff(self, reference: str, stream: BinaryIO) -> int:
        with self._write_all():
            layer = self.layer_store.get(reference)
            if layer is None:
                if self._find_layer(reference) is not None:
                    raise ReadOnlyStore()
                raise LayerUnknown()
            size = self.layer_store.apply_diff(layer, stream)
        self._notify("cs_layer_diff_applied", layer=layer)
        return size

    def _diff_pair(self, reference: str, parent: str | None) -> tuple[LayerStore, Layer, Layer | None]:
        layer = self._require_layer(reference)
        store = self._store_of_layer(layer)
        base = store.resolve_parent(layer, parent, self._find_layer)
        return store, layer, base

    def diff(self, reference: str, parent: str | None, out: BinaryIO, compression: int | None = None) -> None:
        """Write the diff of a layer to ``out`` (tar-split reproduction where recorded)."""
        with self._write_all():
            store, layer, base = self._diff_pair(reference, parent)
            store.diff(layer, base, out, compression)

    def changes(self, reference: str, parent: str | None = None) -> list[Change]:
        with self._write_all():
            store, layer, base = self._diff_pair(reference, parent)
            return store.changes(layer, base)

    def diff_size(self, reference: str, parent: str | None = None) -> int:
        with self._write_all():
            store, layer, base = self._diff_pair(reference, parent)
            return store.diff_size(layer, base)

    def mount(self, reference: str, *, mount_label: str = "", options: list[str] | tuple[str, ...] = ()) -> str:
        """Mount a layer or a container's layer; return the path."""
        with self._write_all():
            opts = MountOpts(mount_label=mount_label, options=list(options))
            container = self.container_store.get(reference)
            if container is not None:
                reference = container.layer_id
                opts.uidmap, opts.gidmap = container.uidmap, container.gidmap
                opts.options = opts.options or list(container.flags.get("MountOpts") or [])
                opts.volatile = bool(container.flags.get("Volatile"))
                if (opts.uidmap or opts.gidmap) and not self.driver.supports_shifting(opts.uidmap, opts.gidmap):
                    opts.disable_shifting = True
                    opts.uidmap, opts.gidmap = (), ()
            layer = self.layer_store.get(reference)
            if layer is None:
                if any(s.get(reference) is not None for s in self.ro_layer_stores):
                    raise ReadOnlyStore(
                        f"mounting read/only store images is not allowed: {ReadOnlyStore.default_message}"
                    )
                raise LayerUnknown()
            path = self.layer_store.mount(layer, opts)
        self._notify("cs_layer_mounted", layer=layer, path=path)
        return path

    def _mount_target(self, reference: str) -> Layer:
        container = self.container_store.get(reference)
        if container is not None:
            reference = container.layer_id
        layer = self.layer_store.get(reference)
        if layer is None:
            with self.layer_store.mount_state(write=False):
                for candidate in self.layer_store.records:
                    if candidate.mount_point and candidate.mount_point == os.path.normpath(reference):
                        return candidate
            raise LayerUnknown()
        return layer

    def unmount(self, reference: str, force: bool = False) -> bool:
        """Drop one mount of a layer/container (all with ``force``); return whether still mounted."""
        with self._write_all():
            layer = self._mount_target(reference)
            still = self.layer_store.unmount(layer, force)
        self._notify("cs_layer_unmounted", layer=layer, still_mounted=still)
        return still

    def mount_image(self, reference: str, *, mount_label: str = "", options: list[str] | tuple[str, ...] = ()) -> str:
        """Mount an image's host-mapped top layer read-only (``mount -r``)."""
        if "rw" in options:
            raise StorageError('"rw" option not supported')
        with self._write_all():
            image = self._require_image(reference)
            if not image.top_layer:
                raise LayerUnknown()
            top = self._require_layer(image.top_layer)
            layer = self._mapped_top_layer(image, top, (), ()) if (top.uidmap or top.gidmap) else top
            if layer.uidmap or layer.gidmap:
                raise StorageError("cannot create an image with canonical UID/GID mappings in a read-only store")
            store = self._store_of_layer(layer)
            opts = MountOpts(mount_label=mount_label, options=[*options, "ro"])
            if store.read_only:
                return self.driver.get(layer.id, opts)
            path = store.mount(layer, opts)
        self._notify("cs_layer_mounted", layer=layer, path=path)
        return path

    def unmount_image(self, reference: str, force: bool = False) -> bool:
        with self._write_all():
            image = self._require_image(reference)
            candidates = [self.layer_store.get(i) for i in image.mapped_top_layers] + [self.layer_store.get(image.top_layer)]
            for layer in candidates:
                if layer is not None and not layer.uidmap and not layer.gidmap:
                    return self.layer_store.unmount(layer, force)
            raise LayerUnknown()

    def mounted(self, reference: str) -> int:
        with self._read_all():
            layer = self._mount_target(reference)
            return self.layer_store.mounted(layer)

    def layer_parent_owners(self, reference: str) -> tuple[list[int], list[int]]:
        with self._read_all():
            layer = self.layer_store.get(reference)
            if layer is None:
                raise LayerUnknown()
            return self._parent_owners(layer)

    def _parent_owners(self, layer: Layer) -> tuple[list[int], list[int]]:
        if not layer.uidmap and not layer.gidmap:
            return [], []
        mounted = self.layer_store.mounted(layer)
        if not mounted or not layer.mount_point:
            raise LayerNotMounted(f"LayerParentOwner: {LayerNotMounted.default_message}")
        uids: set[int] = set()
        gids: set[int] = set()
        path = os.path.dirname(layer.mount_point)
        while path and path != "/":
            for st in (os.stat(path), os.lstat(path)):
                for hid, mapping, out in ((st.st_uid, layer.uidmap, uids), (st.st_gid, layer.gidmap, gids)):
                    try:
                        to_container(mapping, hid)
                    except StorageError:
                        out.add(hid)
            path = os.path.dirname(path)
        return sorted(uids), sorted(gids)

    def layer_big_data_names(self, reference: str) -> list[str]:
        with self._read_all():
            return list(self._require_layer(reference).big_data_names)

    def layer_big_data(self, reference: str, key: str) -> BinaryIO:
        with self._read_all():
            layer = self._require_layer(reference)
            path = self._store_of_layer(layer).big_data_path(layer, key)
            try:
                return open(path, "rb")
            except FileNotFoundError:
                raise FileDoesNotExist(
                    f'locating item named "{key}" for layer with ID "{layer.id}": {FileDoesNotExist.default_message}'
                ) from None

    def set_layer_big_data(self, reference: str, key: str, stream: BinaryIO) -> None:
        with self._write_all():
            layer = self.layer_store.get(reference)
            if layer is None:
                raise LayerUnknown(
                    f'locating layer with ID "{reference}" to write bigdata: {LayerUnknown.default_message}'
                )
            self.layer_store.set_big_data(layer, key, stream)
        self._notify("cs_metadata_changed", kind="layer", record_id=layer.id)

    def storage_layers(self) -> list[str]:
        return self.driver.list_layers()

    def create_storage_layer(
        self,
        parent: str = "",
        layer_id: str = "",
        mount_label: str = "",
        writeable: bool = True,
        uidmap: Mapping = (),
        gidmap: Mapping = (),
    ) -> str:
        """Create a layer in the driver only, with no record (``create-storage-layer``)."""
        from cs_core.driver import CreateOpts

        with self._write_all():
            if not layer_id:
                layer_id = generate_id(self.driver.exists)
            opts = CreateOpts(mount_label=mount_label, uidmap=tuple(uidmap), gidmap=tuple(gidmap))
            self.driver.create(layer_id, parent, opts, writeable)
            return layer_id

    def gc(self) -> None:
        """Remove data no record accounts for: container/image dirs and driver layers."""
        import re

        hex_id = re.compile(r"^[0-9a-f]{64}$")
        with self._write_all():
            for root, known in (
                (self.container_store.container_dir, self.container_store.by_id_map),
                (self.image_store_rw.image_dir, self.image_store_rw.by_id_map),
            ):
                for entry in os.scandir(root):
                    if entry.is_dir(follow_symlinks=False) and hex_id.match(entry.name) and entry.name not in known:
                        remove_all(entry.path)
            try:
                driver_layers = self.driver.list_layers()
            except StorageError:
                driver_layers = []
            for layer_id in driver_layers:
                if layer_id not in self.layer_store.by_id_map:
                    self.driver.remove(layer_id)
                    remove_all(self.layer_store.tar_split_path(layer_id))
                    remove_all(self.layer_store.data_dir(layer_id))

    # ---- images -----------------------------------------------------------------------------
    def create_image(
        self,
        layer: str = "",
        *,
        image_id: str = "",
        names: list[str] | tuple[str, ...] = (),
        metadata: str = "",
        digest: str = "",
    ) -> Image:
        with self._write_all():
            top = ""
            if layer:
                top = self._require_layer(layer).id
            if not image_id:
                image_id = generate_id(lambda c: c in self.image_store_rw.by_id_map)
            image = Image(id=image_id, names=list(names), top_layer=top, metadata=metadata, digest=digest, created=now())
            self.image_store_rw.create(image)
        self._notify("cs_image_created", image=image)
        return image

    def images(self) -> list[Image]:
        with self._read_all():
            out: list[Image] = []
            for store in self._image_stores():
                out.extend(store.records)
            return out

    def image(self, reference: str) -> Image:
        with self._read_all():
            image = self._find_image(reference)
            if image is None:
                raise ImageUnknown()
            return image

    def images_by_digest(self, digest: str) -> list[Image]:
        from cs_core.digests import validate_digest

        validate_digest(digest)
        with self._read_all():
            out: list[Image] = []
            for store in self._image_stores():
                for image_id in store.by_digest_map.get(digest, []):
                    out.append(store.by_id_map[image_id])
            return out

    def images_by_top_layer(self, layer_id: str) -> list[Image]:
        return [
            image
            for store in self._image_stores()
            for image in store.records
            if image.top_layer == layer_id or layer_id in image.mapped_top_layers
        ]

    def delete_image(self, reference: str, commit: bool = True) -> list[str]:
        """Delete an image and the layers only it used; return those layers' IDs."""
        with self._write_all():
            image = self.image_store_rw.get(reference)
            if image is None:
                raise NotAnImage()
            users = [c for c in self.container_store.records if c.image_id == image.id]
            if users:
                # Go names the last such container it comes across.
                raise ImageUsedByContainer(f"image used by {users[-1].id}: {ImageUsedByContainer.default_message}")
            removable = self._layers_only_used_by(image)
            if commit:
                self.image_store_rw.delete(image)
                for layer_id in removable:
                    layer = self.layer_store.by_id_map.get(layer_id)
                    if layer is not None:
                        self._delete_layer_unchecked(layer)
        if commit:
            self._notify("cs_image_deleted", image_id=image.id)
        return removable

    def _layers_only_used_by(self, image: Image) -> list[str]:
        other_tops: set[str] = set()
        for other in self.image_store_rw.records:
            if other.id != image.id:
                other_tops.add(other.top_layer)
                other_tops.update(other.mapped_top_layers)
        container_layers = set(self.container_store.by_layer_map)
        children: dict[str, list[str]] = {}
        for layer in self.layer_store.records:
            if layer.parent:
                children.setdefault(layer.parent, []).append(layer.id)
        removed: list[str] = []
        for mapped in image.mapped_top_layers:
            if mapped in self.layer_store.by_id_map:
                removed.append(mapped)
        current = image.top_layer
        while current:
            node = self.layer_store.by_id_map.get(current)
            if node is None or current in container_layers or current in other_tops:
                break
            # For the top layer, children of its mapped copies keep it too (storage.md 3.5).
            holders = [current, *image.mapped_top_layers] if current == image.top_layer else [current]
            if any(child not in removed for holder in holders for child in children.get(holder, [])):
                break
            removed.append(current)
            current = node.parent
        return removed

    def _image_item(self, image: Image, key: str) -> str:
        store = self.image_store_rw if image.id in self.image_store_rw.by_id_map else next(
            (s for s in self.ro_image_stores if image.id in s.by_id_map), self.image_store_rw
        )
        return store.big_data_path(image, key)

    def image_big_data_names(self, reference: str) -> list[str]:
        with self._read_all():
            return list(self._require_image(reference).big_data_names)

    def image_big_data(self, reference: str, key: str) -> BinaryIO:
        with self._read_all():
            image = self._require_image(reference)
            try:
                return open(self._image_item(image, key), "rb")
            except FileNotFoundError:
                raise FileDoesNotExist(
                    f'locating item named "{key}" for image with ID "{image.id}" (consider removing the image to '
                    f"resolve the issue): {FileDoesNotExist.default_message}"
                ) from None

    def image_big_data_size(self, reference: str, key: str) -> int:
        with self._read_all():
            image = self._require_image(reference)
            if key in image.big_data_sizes:
                return image.big_data_sizes[key]
            try:
                return os.path.getsize(self._image_item(image, key))
            except OSError:
                raise SizeUnknown() from None

    def image_big_data_digest(self, reference: str, key: str) -> str:
        with self._read_all():
            image = self._require_image(reference)
            if key in image.big_data_digests:
                return image.big_data_digests[key]
            raise DigestUnknown()

    def set_image_big_data(self, reference: str, key: str, data: bytes) -> None:
        with self._write_all():
            image = self.image_store_rw.get(reference)
            if image is None:
                raise ImageUnknown(f'locating image with ID "{reference}": {ImageUnknown.default_message}')
            self.image_store_rw.set_big_data(image, key, data)
        self._notify("cs_metadata_changed", kind="image", record_id=image.id)

    def image_size(self, reference: str) -> int:
        with self._write_all():
            image = self._require_image(reference)
            return self._image_size(image)

    def _image_size(self, image: Image) -> int:
        total = 0
        seen: set[str] = set()
        for top in [image.top_layer, *image.mapped_top_layers]:
            current = top
            while current and current not in seen:
                seen.add(current)
                layer = self._find_layer(current)
                if layer is None:
                    break
                if layer.uncompressed_digest and layer.uncompressed_size != -1:
                    total += layer.uncompressed_size
                else:
                    store = self._store_of_layer(layer)
                    total += store.diff_size(layer, self._find_layer(layer.parent) if layer.parent else None)
                current = layer.parent
        for key in image.big_data_names:
            total += image.big_data_sizes.get(key, 0)
        return total

    def image_directory(self, reference: str) -> str:
        return self._userdata(os.path.join(self.graph_root, f"{self.driver_name}-images"), reference, self._image_id_or_ref)

    def image_run_directory(self, reference: str) -> str:
        return self._userdata(os.path.join(self.run_root, f"{self.driver_name}-images"), reference, self._image_id_or_ref)

    def _image_id_or_ref(self, reference: str) -> str:
        with self._read_all():
            image = self._find_image(reference)
            return image.id if image is not None else reference

    def _userdata(self, root: str, reference: str, resolve: Any) -> str:
        path = os.path.join(root, resolve(reference), "userdata")
        _mkdir(path)
        return path

    # ---- containers -------------------------------------------------------------------------
    def create_container(
        self,
        image: str,
        *,
        container_id: str = "",
        names: list[str] | tuple[str, ...] = (),
        metadata: str = "",
        uidmap: Mapping = (),
        gidmap: Mapping = (),
        host_uid_mapping: bool = False,
        host_gid_mapping: bool = False,
        volatile: bool = False,
        mount_label: str = "",
    ) -> Container:
        with self._write_all():
            image_record: Image | None = None
            parent: Layer | None = None
            if image:
                image_record = self._require_image(image)
                if image_record.top_layer:
                    parent = self._require_layer(image_record.top_layer)
            if host_uid_mapping:
                uidmap = ()
            if host_gid_mapping:
                gidmap = ()
            names = dedupe(list(names))
            if container_id and container_id in self.container_store.by_id_map:
                raise DuplicateID()
            for name in names:
                holder = self.container_store.by_name_map.get(name)
                if holder is not None:
                    raise StorageError(
                        f'the container name "{name}" is already in use by {holder.id}. You have to remove that '
                        "container to be able to reuse that name: that name is already in use"
                    )
            uidmap, gidmap = tuple(uidmap), tuple(gidmap)
            check_no_overlap(uidmap)
            check_no_overlap(gidmap)
            shift = bool(uidmap or gidmap) and self.driver.supports_shifting(uidmap, gidmap)
            if parent is not None:
                # storage.md 4.4 step 5 / 11.3: the top-layer variant with the requested maps.
                parent = self._mapped_top_layer(image_record, parent, uidmap, gidmap, shift)
                if not uidmap and not host_uid_mapping:
                    uidmap = parent.uidmap
                if not gidmap and not host_gid_mapping:
                    gidmap = parent.gidmap
            volatile = volatile or self.transient
            layer = self.layer_store.create(
                "",
                parent,
                [],
                mount_label,
                {},
                () if shift else uidmap,
                () if shift else gidmap,
                True,
                volatile=volatile,
            )
            try:
                if not container_id:
                    container_id = generate_id(lambda c: c in self.container_store.by_id_map)
                flags: dict[str, Any] = {"MountLabel": mount_label, "ProcessLabel": ""}
                if volatile:
                    flags["Volatile"] = True
                container = Container(
                    id=container_id,
                    names=names,
                    image_id=image_record.id if image_record else "",
                    layer_id=layer.id,
                    metadata=metadata,
                    created=now(),
                    uidmap=tuple(uidmap),
                    gidmap=tuple(gidmap),
                    flags=flags,
                    location=LOCATION_VOLATILE if volatile else 1,
                )
                self.container_store.add(container)
                self.container_store.save(container.location)
            except BaseException:
                self.layer_store.delete(layer)
                raise
        self._notify("cs_layer_created", layer=layer)
        self._notify("cs_container_created", container=container)
        return container

    def _mapped_top_layer(
        self, image: Image | None, top: Layer, uidmap: Mapping, gidmap: Mapping, shift: bool = False
    ) -> Layer:
        """The image's top layer, or a copy of it, with the requested maps (storage.md 11.3)."""
        assert image is not None
        for candidate_id in [image.top_layer, *image.mapped_top_layers]:
            candidate = self._find_layer(candidate_id)
            if candidate is None or (candidate.parent and self._find_layer(candidate.parent) is None):
                continue
            if shift and not candidate.uidmap and not candidate.gidmap:
                return candidate
            if (candidate.uidmap, candidate.gidmap) == (uidmap, gidmap):
                return candidate
        if shift:
            uidmap, gidmap = (), ()
        if image.read_only or self._store_of_layer(top).read_only:
            return top
        parent = self._find_layer(top.parent) if top.parent else None
        copy = self.layer_store.create(
            "", parent, [], top.mount_label, {}, uidmap, gidmap, False, template=top
        )
        image.mapped_top_layers.append(copy.id)
        self.image_store_rw.save()
        self._notify("cs_layer_created", layer=copy)
        return copy

    def containers(self) -> list[Container]:
        with self._read_all():
            return list(self.container_store.records)

    def container(self, reference: str) -> Container:
        with self._read_all():
            return self._require_container(reference)

    def delete_container(self, reference: str) -> None:
        with self._write_all():
            container = self.container_store.get(reference)
            if container is None:
                raise NotAContainer()
            self._delete_container(container)
        self._notify("cs_container_deleted", container_id=container.id)

    def _delete_container(self, container: Container) -> None:
        layer = self.layer_store.by_id_map.get(container.layer_id)
        if layer is not None:
            self._delete_layer_unchecked(layer)
        remove_all(self.container_store.data_dir(container.id))
        remove_all(self.container_store.run_data_dir(container.id))
        self.container_store.delete(container)

    def container_big_data_names(self, reference: str) -> list[str]:
        with self._read_all():
            return list(self._require_container(reference).big_data_names)

    def container_big_data(self, reference: str, key: str) -> BinaryIO:
        with self._read_all():
            container = self._require_container(reference)
            path = self.container_store.big_data_path(container, key)
            try:
                return open(path, "rb")
            except FileNotFoundError:
                raise FileDoesNotExist(f"open {path}: no such file or directory") from None

    def container_big_data_size(self, reference: str, key: str) -> int:
        with self._write_all():
            container = self._require_container(reference)
            if key not in container.big_data_sizes:
                self._reset_container_item(container, key, SizeUnknown)
            return container.big_data_sizes[key]

    def container_big_data_digest(self, reference: str, key: str) -> str:
        with self._write_all():
            container = self._require_container(reference)
            if key not in container.big_data_digests:
                self._reset_container_item(container, key, DigestUnknown)
            return container.big_data_digests[key]

    def _reset_container_item(self, container: Container, key: str, error: type[StorageError]) -> None:
        try:
            with open(self.container_store.big_data_path(container, key), "rb") as fh:
                data = fh.read()
        except OSError:
            raise error() from None
        self.container_store.set_big_data(container, key, data)

    def set_container_big_data(self, reference: str, key: str, data: bytes) -> None:
        with self._write_all():
            container = self._require_container(reference)
            self.container_store.set_big_data(container, key, data)
        self._notify("cs_metadata_changed", kind="container", record_id=container.id)

    def container_size(self, reference: str) -> int:
        with self._write_all():
            container = self._require_container(reference)
            layer = self.layer_store.by_id_map.get(container.layer_id)
            total = 0
            if layer is not None:
                total += self.layer_store.diff_size(layer, self._find_layer(layer.parent) if layer.parent else None)
            total += sum(container.big_data_sizes.values())
            for root in (self.container_store.data_dir(container.id), self.container_store.run_data_dir(container.id)):
                for sub in ("userdata",):
                    for dirpath, _dirs, files in os.walk(os.path.join(root, sub)):
                        for name in files:
                            try:
                                total += os.lstat(os.path.join(dirpath, name)).st_size
                            except OSError:
                                pass
            return total

    def container_directory(self, reference: str) -> str:
        with self._read_all():
            container = self._require_container(reference)
        return self._userdata(self.container_store.container_dir, container.id, lambda r: r)

    def container_run_directory(self, reference: str) -> str:
        with self._read_all():
            container = self._require_container(reference)
        return self._userdata(self.container_store.run_dir, container.id, lambda r: r)

    # ---- any kind -----------------------------------------------------------------------------
    def _find_any(self, reference: str) -> tuple[str, Any] | None:
        layer = self._find_layer(reference)
        if layer is not None:
            return "layer", layer
        image = self._find_image(reference)
        if image is not None:
            return "image", image
        container = self.container_store.get(reference)
        if container is not None:
            return "container", container
        return None

    def exists(self, reference: str, kind: str | None = None) -> bool:
        with self._read_all():
            if kind is None:
                return self._find_any(reference) is not None
            if kind == "layer":
                return self._find_layer(reference) is not None
            if kind == "image":
                return self._find_image(reference) is not None
            return self.container_store.get(reference) is not None

    def names(self, reference: str) -> list[str]:
        with self._read_all():
            found = self._find_any(reference)
            if found is None:
                raise LayerUnknown()
            return list(found[1].names)

    def _update_names(self, reference: str, names: list[str] | tuple[str, ...], op: str) -> list[str]:
        names = dedupe(list(names))
        with self._write_all():
            target: Any = None
            store: Any = None
            kind = ""
            for kind, store in (("layer", self.layer_store), ("image", self.image_store_rw)):  # noqa: B007
                target = store.get(reference)
                if target is not None:
                    break
            if target is None:
                for ro in self.ro_image_stores:
                    original = ro.get(reference)
                    if original is not None:
                        target = self._pull_up_image(original)
                        store, kind = self.image_store_rw, "image"
                        break
            if target is None:
                target = self.container_store.get(reference)
                store, kind = self.container_store, "container"
            if target is None:
                raise LayerUnknown()
            if op == "set":
                result = list(names)
            elif op == "add":
                result = dedupe(names + list(target.names))
            else:
                result = [n for n in target.names if n not in names]
            robbed = store.replace_names(target, result)
            if kind == "image":
                history = list(target.names_history)
                for name in result:
                    history = dedupe([name, *history])
                target.names_history = history
            store.save()
        for other in robbed:
            self._notify("cs_names_changed", kind=kind, record_id=other.id, names=list(other.names))
        self._notify("cs_names_changed", kind=kind, record_id=target.id, names=list(result))
        return list(result)

    def _pull_up_image(self, original: Image) -> Image:
        copy: Image = original.copy()
        copy.read_only = False
        self.image_store_rw.add(copy)
        ImageStore.recompute_digests(copy)
        self.image_store_rw.save()
        ro = next(s for s in self.ro_image_stores if original.id in s.by_id_map)
        for key in original.big_data_names:
            try:
                with open(ro.big_data_path(original, key), "rb") as fh:
                    self.image_store_rw.set_big_data(copy, key, fh.read())
            except FileNotFoundError:
                continue
        return copy

    def set_names(self, reference: str, names: list[str] | tuple[str, ...]) -> list[str]:
        return self._update_names(reference, names, "set")

    def add_names(self, reference: str, names: list[str] | tuple[str, ...]) -> list[str]:
        return self._update_names(reference, names, "add")

    def remove_names(self, reference: str, names: list[str] | tuple[str, ...]) -> list[str]:
        return self._update_names(reference, names, "remove")

    def metadata(self, reference: str) -> str:
        with self._read_all():
            found = self._find_any(reference)
            if found is None:
                raise NotLayerImageOrContainer()
            return str(found[1].metadata)

    def set_metadata(self, reference: str, text: str) -> None:
        with self._write_all():
            for kind, store in (("layer", self.layer_store), ("image", self.image_store_rw), ("container", self.container_store)):  # noqa: B007
                record: Any = store.get(reference)
                if record is not None:
                    record.metadata = text
                    store.save(getattr(record, "location", None))
                    break
            else:
                raise NotLayerImageOrContainer()
        self._notify("cs_metadata_changed", kind=kind, record_id=record.id)

    def delete(self, reference: str) -> None:
        """Unchecked delete: container, else primary-store image (record only), else layer."""
        with self._write_all():
            container = self.container_store.get(reference)
            if container is not None:
                if container.layer_id not in self.layer_store.by_id_map:
                    raise NotALayer()
                self._delete_container(container)
                kind, record_id = "container", container.id
            else:
                image = self.image_store_rw.get(reference)
                if image is not None:
                    self.image_store_rw.delete(image)
                    kind, record_id = "image", image.id
                else:
                    layer = self.layer_store.get(reference)
                    if layer is None:
                        raise LayerUnknown()
                    self._delete_layer_unchecked(layer)
                    return
        self._notify(f"cs_{kind}_deleted", **{f"{kind}_id": record_id})

    def wipe(self) -> None:
        """Delete every container, image and read-write layer, then leftover driver layers."""
        with self._write_all():
            for container in list(self.container_store.records):
                self.container_store.delete(container)
            for image in list(self.image_store_rw.records):
                self.image_store_rw.delete(image)
            for layer in wipe_order(list(self.layer_store.records)):
                self.layer_store.delete(layer)
            try:
                leftovers = self.driver.list_layers()
            except StorageError:
                leftovers = []
            for layer_id in leftovers:
                self.driver.remove(layer_id)
        self._notify("cs_store_wiped")

    def shutdown(self, force: bool = False) -> list[str]:
        """Release the driver; fails (after unmounting with ``force``) while layers are mounted."""
        with self.storage_lock, self.layer_store.writing():
            with self.layer_store.mount_state(write=True):
                mounted = [layer for layer in self.layer_store.records if layer.mount_count > 0]
                if force:
                    for layer in mounted:
                        while layer.mount_count > 0:
                            self.layer_store._unmount_locked(layer, force=True)
            if mounted:
                raise LayerUsedByContainer(f"a layer is mounted: {LayerUsedByContainer.default_message}")
            self.storage_lock.record_write()
            self.driver.cleanup()
        return [layer.id for layer in mounted]

    def status(self) -> list[tuple[str, str]]:
        opts = "[" + " ".join(self.driver_options) + "]"
        return [
            ("Root", self.graph_root),
            ("Run Root", self.run_root),
            ("Driver Name", self.driver_name),
            ("Driver Options", opts),
            *self.driver.status(),
        ]

    def version(self) -> list[tuple[str, str]]:
        return [("Version", __version__)]

    def close(self) -> None:
        """Nothing to release beyond the locks, which every call gives back."""

    # ---- check/repair support (cs_core.check) ------------------------------------------------
    def remove_driver_layer(self, layer_id: str) -> None:
        """Remove a driver directory that no layer store records (``check -r``).

        Refuses IDs that a layer store still records, so a record never loses its contents
        this way; the driver's own errors pass through.
        """
        with self._write_all():
            if any(layer_id in store.by_id_map for store in self._layer_stores()):
                raise StorageError(f"layer {layer_id} is known to a layer store")
            self.driver.remove(layer_id)

    def recorded_diff(self, layer_id: str, out: BinaryIO) -> None:
        """Write the uncompressed diff of layer ``layer_id`` (exact ID) against its recorded parent.

        Unlike :meth:`diff`, the parent need not be a known layer: as Go's ``Diff("", id)``, the
        recorded parent ID is used as is, so the tar-split reproduction still applies when the
        parent's record is gone (``check`` verifies digests this way).
        """
        from cs_core.records import COMPRESSION_NONE

        with self._write_all():
            layer = next((s.by_id_map[layer_id] for s in self._layer_stores() if layer_id in s.by_id_map), None)
            if layer is None:
                raise LayerUnknown()
            store = self._store_of_layer(layer)
            parent = self._find_layer(layer.parent) if layer.parent else None
            if layer.parent and (parent is None or parent.id != layer.parent):
                parent = Layer(id=layer.parent)
            store.diff(layer, parent, out, COMPRESSION_NONE)


__all__ = ["Store", "open_store"]
