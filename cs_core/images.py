"""The image store: image records, their big data and the digest index (storage.md section 3)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cs_core.errors import ReadOnlyStore, StorageError
from cs_core.fsutil import remove_all
from cs_core.hookspecs import MetadataBackendSpec
from cs_core.locking import get_lockfile
from cs_core.records import LOCATION_STABLE, Image
from cs_core.recordstore import RecordStore, dedupe


def sha256_digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


class ImageStore(RecordStore[Image]):
    """The images of one ``<D>-images`` directory."""

    kind = "image"

    def __init__(
        self,
        image_dir: str,
        backend: MetadataBackendSpec,
        resolve: Callable[[str, str, Any], str | None],
        read_only: bool = False,
    ) -> None:
        files = {LOCATION_STABLE: os.path.join(image_dir, "images" + backend.suffix)}
        lock = get_lockfile(os.path.join(image_dir, "images.lock"), read_only=read_only)
        super().__init__(Image, backend, lock, files, resolve, read_only)
        self.image_dir = image_dir
        self.by_digest_map: dict[str, list[str]] = {}

    def after_load(self) -> None:
        self.by_digest_map = {}
        for image in self.records:
            self.recompute_digests(image)
            self._index(image)

    def _index(self, image: Image) -> None:
        for digest in image.digests:
            self.by_digest_map.setdefault(digest, []).append(image.id)

    def _unindex(self, image: Image) -> None:
        for digest in image.digests:
            ids = self.by_digest_map.get(digest, [])
            if image.id in ids:
                ids.remove(image.id)
                if not ids:
                    del self.by_digest_map[digest]

    @staticmethod
    def recompute_digests(image: Image) -> None:
        """``digests`` = explicit digest, then the digests of ``manifest*`` items (storage.md 3.2)."""
        digests: list[str] = []
        if image.digest:
            digests.append(image.digest)
        for key in image.big_data_names:
            if key.startswith("manifest"):
                digest = image.big_data_digests.get(key, "")
                if digest and digest not in digests:
                    digests.append(digest)
        for key, digest in image.big_data_digests.items():
            if key.startswith("manifest") and digest not in digests:
                digests.append(digest)
        if not image.digest and digests:
            image.digest = digests[0]
        image.digests = digests

    def by_digest(self, reference: str) -> str | None:
        ids = self.by_digest_map.get(reference, [])
        return ids[0] if len(ids) == 1 else None

    def create(self, image: Image) -> Image:
        if self.read_only:
            raise ReadOnlyStore()
        if image.id in self.by_id_map:
            raise StorageError(f'an image with ID "{image.id}" already exists: that ID is already in use')
        image.names = dedupe(image.names)
        for name in image.names:
            holder = self.by_name_map.get(name)
            if holder is not None:
                raise StorageError(
                    f'image name "{name}" is already associated with image "{holder.id}": that name is already in use'
                )
        if image.digest:
            from cs_core.digests import validate_digest

            try:
                validate_digest(image.digest)
            except StorageError as exc:
                raise exc.wrap(f'validating digests for new image: validating image digest "{image.digest}"') from None
        self.recompute_digests(image)
        self.add(image)
        self._index(image)
        self.save()
        return image

    def delete(self, image: Image) -> None:
        self._unindex(image)
        self.remove(image)
        self.save()
        remove_all(self.data_dir(image.id))

    def set_big_data(self, image: Image, key: str, data: bytes) -> None:
        """Write an item, record its size and digest, and refresh the image's digests."""
        changed = self.write_sized_item(image, key, data)
        self._unindex(image)
        self.recompute_digests(image)
        self._index(image)
        if changed:
            self.save()
