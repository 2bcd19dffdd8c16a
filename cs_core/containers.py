"""The container store: container records and their big data (storage.md section 4)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cs_core.fsutil import remove_all
from cs_core.hookspecs import MetadataBackendSpec
from cs_core.locking import get_lockfile
from cs_core.records import LOCATION_STABLE, LOCATION_VOLATILE, Container
from cs_core.recordstore import RecordStore


class ContainerStore(RecordStore[Container]):
    """The containers of one ``<D>-containers`` directory."""

    kind = "container"

    def __init__(
        self,
        container_dir: str,
        run_dir: str,
        backend: MetadataBackendSpec,
        resolve: Callable[[str, str, Any], str | None],
        transient: bool = False,
    ) -> None:
        volatile_dir = run_dir if transient else container_dir
        files = {
            LOCATION_STABLE: os.path.join(container_dir, "containers" + backend.suffix),
            LOCATION_VOLATILE: os.path.join(volatile_dir, "volatile-containers" + backend.suffix),
        }
        lock = get_lockfile(os.path.join(run_dir if transient else container_dir, "containers.lock"))
        super().__init__(Container, backend, lock, files, resolve)
        self.container_dir = container_dir
        self.run_dir = run_dir
        self.by_layer_map: dict[str, str] = {}

    def after_load(self) -> None:
        self.by_layer_map = {c.layer_id: c.id for c in self.records if c.layer_id}

    def add(self, record: Container) -> None:
        super().add(record)
        if record.layer_id:
            self.by_layer_map[record.layer_id] = record.id

    def remove(self, record: Container) -> None:
        super().remove(record)
        self.by_layer_map.pop(record.layer_id, None)

    def by_layer(self, reference: str) -> str | None:
        return self.by_layer_map.get(reference)

    def run_data_dir(self, container_id: str) -> str:
        return os.path.join(self.run_dir, container_id)

    def delete(self, container: Container) -> None:
        self.remove(container)
        self.save(container.location)
        remove_all(self.data_dir(container.id))

    def set_big_data(self, container: Container, key: str, data: bytes) -> None:
        """Write an item and record its size and digest."""
        if self.write_sized_item(container, key, data):
            self.save(container.location)
