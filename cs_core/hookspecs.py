"""Every hook of containers-storage, documented: the contract for plugin authors.

A plugin is a module (or object) of functions decorated with :data:`cs_core.hookimpl`, named by
an entry point in one of the core's namespaces:

=========================  ==================================================================
namespace                  what the entry-point name means
=========================  ==================================================================
``cs_core.graphdrivers``   a graph driver name users write as ``driver:`` (``vfs``, ``overlay``)
``cs_core.metadata``       a metadata backend name (``metadata: json``)
``cs_core.resolvers``      a name-resolution step (``resolvers: [id, name, prefix, digest]``)
``cs_core.extensions``     anything else, enabled by ``extensions: [...]``
=========================  ==================================================================

Only the selected entry points are imported.  Each store builds its own pluggy
``PluginManager`` (there is no global one) and registers the selected modules with it.

Hooks fall into three groups:

* **registration** hooks return typed spec records (:class:`~cs_core.driver.GraphDriverSpec`,
  :class:`MetadataBackendSpec`, :class:`NameResolverSpec`); the core collects them and checks
  that no two plugins claim one name;
* **resolution**: :func:`cs_resolve_name` is a ``firstresult`` chain, called in the order of
  the configured ``resolvers`` list;
* **events** (``cs_layer_created`` ...) are broadcast to every plugin after the change has
  been saved; their return values are ignored and they must not modify the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from cs_core.driver import GraphDriverSpec
    from cs_core.records import Container, Image, Layer
    from cs_core.store import Store

PROJECT = "cs_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True, slots=True)
class MetadataBackendSpec:
    """A way of keeping record lists on disk.

    The core owns paths, locking and atomic writes; a backend only turns a list of record dicts
    (as produced by ``Record.to_dict``, key order significant) into bytes and back.
    """

    name: str
    #: File name suffix including the dot: ``.json`` gives ``layers.json``.
    suffix: str
    #: ``encode(records) -> bytes``.
    encode: Callable[[list[dict[str, Any]]], bytes]
    #: ``decode(data) -> records``; empty input and ``null`` mean no records; raise ``ValueError``
    #: on malformed input.
    decode: Callable[[bytes], list[dict[str, Any]]]
    #: Whether files written are fsynced before the rename (volatile files never are).
    fsync: bool = True


class LookupIndex(Protocol):
    """What a resolver may ask of one record store (one kind, one store)."""

    kind: str

    def by_id(self, reference: str) -> str | None:
        """The ID if ``reference`` is exactly an ID."""

    def by_name(self, reference: str) -> str | None:
        """The ID of the record holding the name ``reference``."""

    def by_prefix(self, reference: str) -> str | None:
        """The ID that ``reference`` is a unique prefix of (``None`` when ambiguous or empty)."""

    def by_digest(self, reference: str) -> str | None:
        """The ID of the only record with digest ``reference`` (images)."""

    def by_layer(self, reference: str) -> str | None:
        """The ID of the container whose read-write layer is ``reference`` (containers)."""


@dataclass(frozen=True, slots=True)
class NameResolverSpec:
    """A named step of the name-resolution chain (listing only; resolution goes through the hook)."""

    name: str
    description: str = ""


class HookSpecs:
    """The hook specifications (registered with every store's plugin manager)."""

    # ---- registration -------------------------------------------------------------------
    @hookspec
    def cs_graphdrivers(self) -> Iterable[GraphDriverSpec]:
        """Return the graph drivers this plugin provides.

        Each :class:`~cs_core.driver.GraphDriverSpec` names the driver, gives its factory,
        an optional probe (raising ``DriverNotSupported`` where it cannot run), its priority
        in automatic selection and its capabilities.
        """
        return ()

    @hookspec
    def cs_metadata_backends(self) -> Iterable[MetadataBackendSpec]:
        """Return the metadata backends this plugin provides."""
        return ()

    @hookspec
    def cs_name_resolvers(self) -> Iterable[NameResolverSpec]:
        """Return the name-resolution steps this plugin provides (for listing and checks)."""
        return ()

    # ---- resolution ---------------------------------------------------------------------
    @hookspec(firstresult=True)
    def cs_resolve_name(self, kind: str, reference: str, index: LookupIndex) -> str | None:
        """Resolve ``reference`` to an ID of ``kind`` (``layer``, ``image``, ``container``).

        Called along the configured ``resolvers`` chain; the first non-``None`` answer wins.
        Return ``None`` to let the next step try.
        """

    # ---- events -------------------------------------------------------------------------
    @hookspec
    def cs_layer_created(self, store: Store, layer: Layer) -> None:
        """A layer was created (and its diff, if any, applied)."""

    @hookspec
    def cs_layer_deleted(self, store: Store, layer_id: str) -> None:
        """A layer was deleted."""

    @hookspec
    def cs_layer_diff_applied(self, store: Store, layer: Layer) -> None:
        """A diff was applied to an existing layer (``applydiff``)."""

    @hookspec
    def cs_layer_mounted(self, store: Store, layer: Layer, path: str) -> None:
        """A layer's mount count went up; ``path`` is where it is mounted."""

    @hookspec
    def cs_layer_unmounted(self, store: Store, layer: Layer, still_mounted: bool) -> None:
        """A layer's mount count went down."""

    @hookspec
    def cs_image_created(self, store: Store, image: Image) -> None:
        """An image was created."""

    @hookspec
    def cs_image_deleted(self, store: Store, image_id: str) -> None:
        """An image was deleted."""

    @hookspec
    def cs_container_created(self, store: Store, container: Container) -> None:
        """A container was created."""

    @hookspec
    def cs_container_deleted(self, store: Store, container_id: str) -> None:
        """A container was deleted."""

    @hookspec
    def cs_names_changed(self, store: Store, kind: str, record_id: str, names: list[str]) -> None:
        """The names of a record of ``kind`` changed (set/add/remove, or taken by another)."""

    @hookspec
    def cs_metadata_changed(self, store: Store, kind: str, record_id: str) -> None:
        """The metadata string or big data of a record of ``kind`` changed."""

    @hookspec
    def cs_store_wiped(self, store: Store) -> None:
        """Everything was deleted (``wipe``)."""

    # ---- extension points -------------------------------------------------------------
    @hookspec
    def cs_add_commands(self, cli: click.Group) -> None:
        """Add click commands to the CLI (extensions only) with ``cli.add_command(...)``.

        ``cli`` is a ``click.Group``; add commands declared like the built-ins (with
        :func:`cs_core.cli.base.command`, parsed with Go's flag rules) or any plain click command.
        """

    @hookspec
    def cs_check(self, store: Store, report: dict[str, Any]) -> None:
        """Add findings to a ``check`` report (maps of ID -> list of error texts)."""
