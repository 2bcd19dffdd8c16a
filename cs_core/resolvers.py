"""The default name-resolution steps, registered through ``cs_core.resolvers`` entry points.

They are ordinary plugins: the core lists them in its own ``pyproject.toml`` exactly as a third
party would, and the configured ``resolvers`` list picks and orders them.
"""

from __future__ import annotations

from collections.abc import Iterable

from cs_core.hookspecs import LookupIndex, NameResolverSpec, hookimpl


class _Resolver:
    """One step of the chain; subclasses define :meth:`lookup`."""

    name = ""
    description = ""

    @hookimpl
    def cs_name_resolvers(self) -> Iterable[NameResolverSpec]:
        return [NameResolverSpec(self.name, self.description)]

    @hookimpl
    def cs_resolve_name(self, kind: str, reference: str, index: LookupIndex) -> str | None:
        return self.lookup(kind, reference, index)

    def lookup(self, kind: str, reference: str, index: LookupIndex) -> str | None:
        raise NotImplementedError


class ByID(_Resolver):
    name = "id"
    description = "the exact ID"

    def lookup(self, kind: str, reference: str, index: LookupIndex) -> str | None:
        return index.by_id(reference)


class ByName(_Resolver):
    name = "name"
    description = "an exact name (for containers, then the container's layer ID)"

    def lookup(self, kind: str, reference: str, index: LookupIndex) -> str | None:
        found = index.by_name(reference)
        if found is None and kind == "container":
            found = index.by_layer(reference)
        return found


class ByPrefix(_Resolver):
    name = "prefix"
    description = "a unique ID prefix"

    def lookup(self, kind: str, reference: str, index: LookupIndex) -> str | None:
        return index.by_prefix(reference)


class ByDigest(_Resolver):
    name = "digest"
    description = "an image digest (manifest or explicit) held by exactly one image"

    def lookup(self, kind: str, reference: str, index: LookupIndex) -> str | None:
        if kind != "image" or ":" not in reference:
            return None
        return index.by_digest(reference)


by_id = ByID()
by_name = ByName()
by_prefix = ByPrefix()
by_digest = ByDigest()
