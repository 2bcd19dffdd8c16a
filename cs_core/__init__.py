"""containers-storage for Python: layers, images and containers on disk, Go-compatible.

The public API:

* :func:`open_store` / :class:`Store` — the facade over the layer, image and container stores;
* :class:`StoreOptions` and :func:`load_options` — configuration (``storage.yaml`` /
  ``storage.conf``, flags, environment);
* records :class:`Layer`, :class:`Image`, :class:`Container`;
* :data:`hookimpl` — the marker plugins decorate their hook implementations with
  (the hooks are documented in :mod:`cs_core.hookspecs`);
* errors in :mod:`cs_core.errors`, the driver interface in :mod:`cs_core.driver`, the tar engine
  in :mod:`cs_core.archive`, conformance kits in :mod:`cs_core.testing`.

Plugins may import these modules and nothing else of the core: ``cs_core`` itself,
:mod:`cs_core.hookspecs`, :mod:`cs_core.driver`, :mod:`cs_core.archive`, :mod:`cs_core.errors`,
:mod:`cs_core.records`, :mod:`cs_core.idmap`, :mod:`cs_core.gojson`, :mod:`cs_core.fsutil` and
:mod:`cs_core.testing`.  A test (``tests/test_plugin_boundaries.py``) holds our own plugins to it.

Importing this package imports no plugin: plugins are loaded by :func:`open_store`, and only the
ones the configuration selects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cs_core.hookspecs import MetadataBackendSpec, NameResolverSpec, hookimpl
from cs_core.records import Change, Container, Image, Layer

__version__ = "1.60.0-dev"

if TYPE_CHECKING:
    from cs_core.config import StoreOptions, load_options
    from cs_core.store import Store, open_store

__all__ = [
    "Change",
    "Container",
    "Image",
    "Layer",
    "MetadataBackendSpec",
    "NameResolverSpec",
    "Store",
    "StoreOptions",
    "hookimpl",
    "load_options",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name in ("Store", "open_store"):
        from cs_core import store

        return getattr(store, name)
    if name in ("StoreOptions", "load_options"):
        from cs_core import config

        return getattr(config, name)
    raise AttributeError(name)
