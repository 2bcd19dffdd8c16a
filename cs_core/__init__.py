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

__version__ = "1.60.0-dev"

if TYPE_CHECKING:
    from cs_core.config import StoreOptions, load_options
    from cs_core.hookspecs import MetadataBackendSpec, NameResolverSpec, hookimpl
    from cs_core.records import Change, Container, Image, Layer
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

#: Public name -> the module defining it.  They are imported on first use, so that importing a
#: submodule (the CLI entry point, say) costs nothing more than that submodule.
_HOMES = {
    "Change": "records",
    "Container": "records",
    "Image": "records",
    "Layer": "records",
    "MetadataBackendSpec": "hookspecs",
    "NameResolverSpec": "hookspecs",
    "hookimpl": "hookspecs",
    "Store": "store",
    "open_store": "store",
    "StoreOptions": "config",
    "load_options": "config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(name)
    from importlib import import_module

    value = getattr(import_module(f"cs_core.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
