"""The Layer, Image and Container records, one definition shared by every metadata backend.

Each record converts to and from a plain ``dict`` whose key order and omitted-when-empty
("omitempty") rules are those of the Go structs (``shared/spec/storage.md`` sections 2.1, 3.1,
4.1).  Backends serialise those dicts (JSON exactly as Go, YAML for humans); the core never sees
file formats.  ``created`` is kept as the text read from disk so that a record read and written
again is byte-identical.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from cs_core import gojson
from cs_core.idmap import IDMap, mapping_from_list, mapping_to_list

COMPRESSION_NONE, COMPRESSION_BZIP2, COMPRESSION_GZIP, COMPRESSION_XZ, COMPRESSION_ZSTD = range(5)

#: Location bits of a layer or container record (which file it is kept in).
LOCATION_STABLE = 1
LOCATION_IMAGE_STORE = 2
LOCATION_VOLATILE = 4


def now() -> str:
    """The current time as Go's RFC3339Nano UTC text."""
    return gojson.format_time_ns(time.time_ns())


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False or value == [] or value == {} or value == ()


@dataclass(slots=True)
class _Record:
    """Shared conversion logic; subclasses list their fields in Go declaration order."""

    #: JSON key -> attribute name, in Go order.
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: JSON keys written even when empty.
    ALWAYS: ClassVar[frozenset[str]] = frozenset()
    #: JSON keys holding maps (sorted on output).
    MAPS: ClassVar[frozenset[str]] = frozenset()
    #: JSON keys holding ID maps.
    IDMAPS: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """The record as Go would marshal it (ordered keys, empty values omitted)."""
        out: dict[str, Any] = {}
        for key, attr in self.KEYS:
            value = getattr(self, attr)
            if key not in self.ALWAYS and _empty(value):
                continue
            if key in self.IDMAPS:
                value = mapping_to_list(value)
            elif key in self.MAPS:
                value = gojson.sorted_map(value)
            elif isinstance(value, list):
                value = list(value)
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Build a record from a decoded dict; unknown keys are ignored, ``null`` means empty."""
        kwargs: dict[str, Any] = {}
        for key, attr in cls.KEYS:
            if key not in data or data[key] is None:
                continue
            value = data[key]
            if key in cls.IDMAPS:
                value = mapping_from_list(value)
            elif isinstance(value, list):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            kwargs[attr] = value
        return cls(**kwargs)

    def copy(self) -> Any:
        kwargs = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (list, dict)):
                value = type(value)(value)
            kwargs[f.name] = value
        return type(self)(**kwargs)


@dataclass(slots=True)
class Layer(_Record):
    """A layer: a set of file-system changes over at most one parent."""

    id: str = ""
    names: list[str] = field(default_factory=list)
    parent: str = ""
    metadata: str = ""
    mount_label: str = ""
    created: str = gojson.ZERO_TIME
    compressed_digest: str = ""
    compressed_size: int = 0
    uncompressed_digest: str = ""
    toc_digest: str = ""
    uncompressed_size: int = 0
    compression: int = 0
    uidset: list[int] = field(default_factory=list)
    gidset: list[int] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    uidmap: tuple[IDMap, ...] = ()
    gidmap: tuple[IDMap, ...] = ()
    big_data_names: list[str] = field(default_factory=list)
    # in-memory only
    mount_point: str = ""
    mount_count: int = 0
    read_only: bool = False
    location: int = LOCATION_STABLE

    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("id", "id"),
        ("names", "names"),
        ("parent", "parent"),
        ("metadata", "metadata"),
        ("mountlabel", "mount_label"),
        ("created", "created"),
        ("compressed-diff-digest", "compressed_digest"),
        ("compressed-size", "compressed_size"),
        ("diff-digest", "uncompressed_digest"),
        ("toc-digest", "toc_digest"),
        ("diff-size", "uncompressed_size"),
        ("compression", "compression"),
        ("uidset", "uidset"),
        ("gidset", "gidset"),
        ("flags", "flags"),
        ("uidmap", "uidmap"),
        ("gidmap", "gidmap"),
        ("big-data-names", "big_data_names"),
    )
    ALWAYS: ClassVar[frozenset[str]] = frozenset({"id", "created"})
    MAPS: ClassVar[frozenset[str]] = frozenset({"flags"})
    IDMAPS: ClassVar[frozenset[str]] = frozenset({"uidmap", "gidmap"})

    @property
    def incomplete(self) -> bool:
        return self.flags.get("incomplete") is True


@dataclass(slots=True)
class Image(_Record):
    """An image: a top layer plus names, metadata and named big data."""

    id: str = ""
    digest: str = ""
    names: list[str] = field(default_factory=list)
    names_history: list[str] = field(default_factory=list)
    top_layer: str = ""
    mapped_top_layers: list[str] = field(default_factory=list)
    metadata: str = ""
    big_data_names: list[str] = field(default_factory=list)
    big_data_sizes: dict[str, int] = field(default_factory=dict)
    big_data_digests: dict[str, str] = field(default_factory=dict)
    created: str = gojson.ZERO_TIME
    flags: dict[str, Any] = field(default_factory=dict)
    # in-memory only
    digests: list[str] = field(default_factory=list)
    read_only: bool = False

    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("id", "id"),
        ("digest", "digest"),
        ("names", "names"),
        ("names-history", "names_history"),
        ("layer", "top_layer"),
        ("mapped-layers", "mapped_top_layers"),
        ("metadata", "metadata"),
        ("big-data-names", "big_data_names"),
        ("big-data-sizes", "big_data_sizes"),
        ("big-data-digests", "big_data_digests"),
        ("created", "created"),
        ("flags", "flags"),
    )
    ALWAYS: ClassVar[frozenset[str]] = frozenset({"id", "created"})
    MAPS: ClassVar[frozenset[str]] = frozenset({"big-data-sizes", "big-data-digests", "flags"})


@dataclass(slots=True)
class Container(_Record):
    """A container: a read-write layer over an image's top layer, plus names and big data."""

    id: str = ""
    names: list[str] = field(default_factory=list)
    image_id: str = ""
    layer_id: str = ""
    metadata: str = ""
    big_data_names: list[str] = field(default_factory=list)
    big_data_sizes: dict[str, int] = field(default_factory=dict)
    big_data_digests: dict[str, str] = field(default_factory=dict)
    created: str = gojson.ZERO_TIME
    uidmap: tuple[IDMap, ...] = ()
    gidmap: tuple[IDMap, ...] = ()
    flags: dict[str, Any] = field(default_factory=dict)
    # in-memory only
    location: int = LOCATION_STABLE

    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("id", "id"),
        ("names", "names"),
        ("image", "image_id"),
        ("layer", "layer_id"),
        ("metadata", "metadata"),
        ("big-data-names", "big_data_names"),
        ("big-data-sizes", "big_data_sizes"),
        ("big-data-digests", "big_data_digests"),
        ("created", "created"),
        ("uidmap", "uidmap"),
        ("gidmap", "gidmap"),
        ("flags", "flags"),
    )
    ALWAYS: ClassVar[frozenset[str]] = frozenset({"id", "image", "layer", "created"})
    MAPS: ClassVar[frozenset[str]] = frozenset({"big-data-sizes", "big-data-digests", "flags"})
    IDMAPS: ClassVar[frozenset[str]] = frozenset({"uidmap", "gidmap"})


@dataclass(slots=True)
class MountPoint:
    """One entry of ``mountpoints.json``."""

    id: str
    path: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "count": self.count}


@dataclass(slots=True)
class Change:
    """One file-system change: Kind 0 Modify, 1 Add, 2 Delete."""

    path: str
    kind: int

    MODIFY: ClassVar[int] = 0
    ADD: ClassVar[int] = 1
    DELETE: ClassVar[int] = 2

    def to_dict(self) -> dict[str, Any]:
        return {"Path": self.path, "Kind": self.kind}

    @property
    def kind_name(self) -> str:
        return ("Modify", "Add", "Delete")[self.kind]
