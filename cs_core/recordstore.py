"""A list of records of one kind kept in backend files, guarded by a lock file.

The generic part of the layer, image and container stores: loading and merging the files of
each location, saving atomically with a new last-writer token first, reloading when another
process wrote, the ID/name indexes and the name-resolution chain.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from cs_core.errors import DuplicateName, ReadOnlyStore, StoreMetadataError
from cs_core.fsutil import atomic_write, big_data_file_name
from cs_core.hookspecs import MetadataBackendSpec
from cs_core.locking import LockFile
from cs_core.records import LOCATION_STABLE, LOCATION_VOLATILE

R = TypeVar("R", bound=Any)


def dedupe(names: list[str] | tuple[str, ...]) -> list[str]:
    """Keep the first occurrence of each name, in order."""
    seen: set[str] = set()
    out = []
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def generate_id(taken: Callable[[str], bool]) -> str:
    """A random 64-hex ID whose first 12 characters are not all digits and that is not taken."""
    while True:
        candidate = os.urandom(32).hex()
        if candidate[:12].isdigit() or taken(candidate):
            continue
        return candidate


class RecordStore(Generic[R]):
    """Records of one kind in one store directory."""

    kind = "record"

    def __init__(
        self,
        record_type: type[R],
        backend: MetadataBackendSpec,
        lock: LockFile,
        files: dict[int, str],
        resolve: Callable[[str, str, Any], str | None],
        read_only: bool = False,
        data_root: str = "",
    ) -> None:
        self.record_type = record_type
        #: The directory holding one data directory (big data) per record.
        self.data_root = data_root or os.path.dirname(files[min(files)])
        self.backend = backend
        self.lock = lock
        #: location bit -> file path
        self.files = files
        self._resolve = resolve
        self.read_only = read_only
        self.records: list[R] = []
        self.by_id_map: dict[str, R] = {}
        self.by_name_map: dict[str, R] = {}
        self._token: bytes | None = None
        self._mtimes: dict[str, int] = {}
        self._depth = 0
        self._writing = False

    # ---- locking and loading ------------------------------------------------------------
    def _mtime(self, path: str) -> int:
        try:
            return os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return 0

    def _stale(self) -> bool:
        if self._token is None or self.lock.modified_since(self._token):
            return True
        return any(self._mtime(p) != self._mtimes.get(p, 0) for p in self.files.values())

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock shared (or nested in a held lock); reload if another process wrote."""
        self.lock.rlock()
        self._depth += 1
        try:
            if self._depth == 1 and self._stale():
                self.load()
            yield
        finally:
            self._depth -= 1
            self.lock.unlock()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the lock exclusively; reload if another process wrote."""
        if self.read_only:
            raise ReadOnlyStore(f"not allowed to modify {self.kind}s at {os.path.dirname(self.primary_file)}: {ReadOnlyStore.default_message}")
        self.lock.lock()
        self._depth += 1
        was_writing = self._writing
        self._writing = True
        try:
            if self._depth == 1 and self._stale():
                self.load()
            yield
        finally:
            self._writing = was_writing
            self._depth -= 1
            self.lock.unlock()

    @property
    def primary_file(self) -> str:
        return self.files[min(self.files)]

    def _read_file(self, path: str) -> list[dict[str, Any]]:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return []
        if not data.strip():
            return []
        try:
            return self.backend.decode(data)
        except ValueError as exc:
            raise StoreMetadataError(f'loading "{path}": {exc}') from None

    def load(self) -> None:
        """Read every location's file, merge (first ID wins), fix duplicate names."""
        self._token = self.lock.current_token()
        records: list[R] = []
        by_id: dict[str, R] = {}
        for location in sorted(self.files):
            path = self.files[location]
            self._mtimes[path] = self._mtime(path)
            for data in self._read_file(path):
                if not isinstance(data, dict):
                    raise StoreMetadataError(f'loading "{path}": expected a list of objects')
                record = self.record_type.from_dict(data)
                if not record.id or record.id in by_id:
                    continue
                if hasattr(record, "location"):
                    record.location = location
                if self.read_only and hasattr(record, "read_only"):
                    record.read_only = True
                records.append(record)
                by_id[record.id] = record
        by_name: dict[str, R] = {}
        fixed = False
        for record in records:
            for name in record.names:
                holder = by_name.get(name)
                if holder is not None and holder is not record:
                    if self.read_only:
                        raise StoreMetadataError(
                            f"read-only {self.kind} store assigns the same name to multiple {self.kind}s"
                        )
                    holder.names = [n for n in holder.names if n != name]
                    fixed = True
                by_name[name] = record
        self.records = records
        self.by_id_map = by_id
        self.by_name_map = by_name
        self.after_load()
        if fixed and self._writing:
            self.save()

    def after_load(self) -> None:
        """Hook for subclasses to rebuild extra indexes."""

    def save(self, locations: int | None = None) -> None:
        """Record a write on the lock, then write the files of ``locations`` (default: all)."""
        if self.read_only:
            raise ReadOnlyStore()
        self._token = self.lock.record_write()
        for location, path in self.files.items():
            if locations is not None and not locations & location:
                continue
            subset = [r.to_dict() for r in self.records if getattr(r, "location", LOCATION_STABLE) == location]
            if location != LOCATION_STABLE and not subset and not os.path.exists(path):
                continue
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            atomic_write(path, self.backend.encode(subset), fsync=self.backend.fsync and location != LOCATION_VOLATILE)
            self._mtimes[path] = self._mtime(path)

    # ---- LookupIndex for the resolvers ----------------------------------------------------
    def by_id(self, reference: str) -> str | None:
        return reference if reference in self.by_id_map else None

    def by_name(self, reference: str) -> str | None:
        record = self.by_name_map.get(reference)
        return record.id if record is not None else None

    def by_prefix(self, reference: str) -> str | None:
        if not reference:
            return None
        match = None
        for record_id in self.by_id_map:
            if record_id.startswith(reference) and " " not in record_id:
                if match is not None:
                    return None
                match = record_id
        return match

    def by_digest(self, reference: str) -> str | None:
        return None

    def by_layer(self, reference: str) -> str | None:
        return None

    def get(self, reference: str) -> R | None:
        """Resolve ``reference`` through the resolver chain (caller holds the lock)."""
        if not reference:
            return None
        record_id = self._resolve(self.kind, reference, self)
        return self.by_id_map.get(record_id) if record_id else None

    # ---- big data -------------------------------------------------------------------------
    def data_dir(self, record_id: str) -> str:
        """The directory of a record's big-data files."""
        return os.path.join(self.data_root, record_id)

    def big_data_path(self, record: R, key: str) -> str:
        """The file of one big-data item (storage.md 0.6 naming)."""
        return os.path.join(self.data_dir(record.id), big_data_file_name(key))

    def write_sized_item(self, record: R, key: str, data: bytes) -> bool:
        """Write a big-data item and record its size and SHA-256; return whether the record changed."""
        if self.read_only:
            raise ReadOnlyStore()
        path = self.big_data_path(record, key)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, data)
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        changed = record.big_data_sizes.get(key) != len(data) or record.big_data_digests.get(key) != digest
        record.big_data_sizes[key] = len(data)
        record.big_data_digests[key] = digest
        if key not in record.big_data_names:
            record.big_data_names.append(key)
            changed = True
        return changed

    # ---- mutation helpers (caller holds the write lock and saves) --------------------------
    def check_new_names(self, names: list[str], error: Callable[[str, R], Exception] | None = None) -> None:
        for name in names:
            holder = self.by_name_map.get(name)
            if holder is not None:
                raise error(name, holder) if error else DuplicateName()

    def add(self, record: R) -> None:
        self.records.append(record)
        self.by_id_map[record.id] = record
        for name in record.names:
            self.by_name_map[name] = record

    def remove(self, record: R) -> None:
        self.records = [r for r in self.records if r is not record]
        self.by_id_map.pop(record.id, None)
        for name in record.names:
            if self.by_name_map.get(name) is record:
                del self.by_name_map[name]

    def replace_names(self, record: R, names: list[str]) -> list[R]:
        """Give ``record`` exactly ``names``, stealing them from other records; return the robbed."""
        robbed: list[R] = []
        for name in record.names:
            if self.by_name_map.get(name) is record:
                del self.by_name_map[name]
        for name in names:
            holder = self.by_name_map.get(name)
            if holder is not None and holder is not record:
                holder.names = [n for n in holder.names if n != name]
                robbed.append(holder)
            self.by_name_map[name] = record
        record.names = list(names)
        return robbed
