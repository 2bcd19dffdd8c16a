"""The ``json`` metadata backend: the files and formats of Go's containers/storage.

Record lists are written exactly as Go's ``encoding/json`` writes them (compact, struct key
order, sorted maps, Go string escaping, no trailing newline), so one store is shared with
podman, skopeo, buildah and the Go ``containers-storage`` CLI.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cs_core import MetadataBackendSpec, hookimpl
from cs_core.gojson import dumpb, loads


def encode(records: list[dict[str, Any]]) -> bytes:
    """A JSON array of the records, as Go writes it."""
    return dumpb(records)


def decode(data: bytes) -> list[dict[str, Any]]:
    """The records of a JSON array; ``null`` and empty input are no records."""
    if not data.strip():
        return []
    value = loads(data)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("json: cannot unmarshal object into a list of records")
    return value


@hookimpl
def cs_metadata_backends() -> Iterable[MetadataBackendSpec]:
    return [MetadataBackendSpec(name="json", suffix=".json", encode=encode, decode=decode)]
