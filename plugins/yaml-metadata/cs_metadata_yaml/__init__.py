"""The ``yaml`` metadata backend: the same records as the json backend, in YAML for human eyes.

Files are named ``layers.yaml``, ``images.yaml`` ... ; key order is the records' own.  The Go
tools do not read these files: choose it for stores only this implementation uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from cs_core import MetadataBackendSpec, hookimpl

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def encode(records: list[dict[str, Any]]) -> bytes:
    """A YAML sequence of the records, keys in record order."""
    text: str = yaml.dump(records, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text.encode("utf-8")


def decode(data: bytes) -> list[dict[str, Any]]:
    """The records of a YAML sequence; empty input and ``null`` are no records."""
    try:
        value = yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"yaml: {exc}") from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("yaml: expected a sequence of records")
    return value


@hookimpl
def cs_metadata_backends() -> Iterable[MetadataBackendSpec]:
    return [MetadataBackendSpec(name="yaml", suffix=".yaml", encode=encode, decode=decode)]
