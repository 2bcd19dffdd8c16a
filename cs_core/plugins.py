"""Plugin discovery (stevedore) and registration (pluggy).

Each store gets its own :class:`PluginSet`: a pluggy ``PluginManager`` with the hook specs of
:mod:`cs_core.hookspecs`, holding only the plugins the configuration selects.  Entry points are
found with stevedore's ``NamedExtensionManager``, which imports nothing but the named ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from cs_core.driver import DriverOptions, GraphDriverSpec
from cs_core.errors import DriverNotSupported, NotSupported, PluginError
from cs_core.hookspecs import PROJECT, HookSpecs, MetadataBackendSpec, NameResolverSpec

NS_DRIVERS = "cs_core.graphdrivers"
NS_METADATA = "cs_core.metadata"
NS_RESOLVERS = "cs_core.resolvers"
NS_EXTENSIONS = "cs_core.extensions"
NAMESPACES = (NS_DRIVERS, NS_METADATA, NS_RESOLVERS, NS_EXTENSIONS)

#: Automatic driver selection order when no ``driver_priority`` is configured (Go's, minus the
#: drivers nobody ships here).
DEFAULT_DRIVER_PRIORITY = ("overlay", "btrfs", "vfs")

_KIND = {
    NS_DRIVERS: "graph driver",
    NS_METADATA: "metadata backend",
    NS_RESOLVERS: "name resolver",
    NS_EXTENSIONS: "extension",
}


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """An installed entry point, listed without importing it."""

    namespace: str
    name: str
    value: str
    distribution: str


def installed_plugins(namespace: str) -> list[PluginInfo]:
    """Every entry point of ``namespace`` with its distribution (imports nothing)."""
    from importlib.metadata import distributions

    found: list[PluginInfo] = []
    seen: set[tuple[str, str, str]] = set()
    for dist in distributions():
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != namespace:
                continue
            key = (ep.name, ep.value, dist_name)
            if key in seen:
                continue
            seen.add(key)
            found.append(PluginInfo(namespace, ep.name, ep.value, dist_name))
    return sorted(found, key=lambda p: (p.name, p.distribution))


def _installed_names(namespace: str) -> list[str]:
    from stevedore import ExtensionManager

    mgr = ExtensionManager.__new__(ExtensionManager)
    mgr.namespace = namespace
    return sorted({ep.name for ep in mgr.list_entry_points()})


def _load_named(namespace: str, names: list[str]) -> dict[str, Any]:
    """Import the entry points ``names`` of ``namespace``; return name -> loaded object."""
    from stevedore import NamedExtensionManager

    failures: list[tuple[str, BaseException]] = []

    def on_failure(_mgr: Any, ep: Any, exc: BaseException) -> None:
        failures.append((ep.name, exc))

    def on_conflict(_ns: str, name: str, _extensions: list[Any]) -> Any:
        dists = sorted(p.distribution for p in installed_plugins(namespace) if p.name == name)
        raise PluginError(
            f"{_KIND[namespace]} {name!r} is claimed by more than one plugin: distributions " + " and ".join(dists)
        )

    mgr = NamedExtensionManager(
        namespace,
        conflict_resolver=on_conflict,
        names=names,
        invoke_on_load=False,
        on_load_failure_callback=on_failure,
        name_order=True,
        on_missing_entrypoints_callback=lambda _names: None,
    )
    if failures:
        name, exc = failures[0]
        dists = ", ".join(p.distribution for p in installed_plugins(namespace) if p.name == name) or "?"
        raise PluginError(
            f"{_KIND[namespace]} {name!r} (distribution {dists}) failed to load: {type(exc).__name__}: {exc}"
        )
    loaded: dict[str, Any] = {}
    for ext in mgr.extensions:
        loaded.setdefault(ext.name, ext.plugin)
    missing = [n for n in names if n not in loaded]
    if missing:
        installed = _installed_names(namespace)
        raise PluginError(
            f"unknown {_KIND[namespace]} {missing[0]!r} (plugin may not be installed); "
            f"installed: {', '.join(installed) if installed else 'none'}"
        )
    return loaded


def _distribution_of(namespace: str, name: str) -> str:
    dists = [p.distribution for p in installed_plugins(namespace) if p.name == name]
    return dists[0] if dists else "?"


@dataclass
class PluginSet:
    """The plugins of one store, registered with its own pluggy ``PluginManager``."""

    manager: pluggy.PluginManager
    backend: MetadataBackendSpec
    resolver_names: list[str]
    #: Driver name -> spec, for the drivers loaded so far.
    drivers: dict[str, GraphDriverSpec] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.manager.hook

    def resolve(self, kind: str, reference: str, index: Any) -> str | None:
        """Run the name-resolution chain."""
        result: str | None = self.manager.hook.cs_resolve_name(kind=kind, reference=reference, index=index)
        return result

    def notify(self, event: str, **kwargs: Any) -> None:
        """Broadcast an event hook (``cs_layer_created`` ...)."""
        getattr(self.manager.hook, event)(**kwargs)


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    return pm


def _register(pm: pluggy.PluginManager, namespace: str, name: str, plugin: Any) -> None:
    plugin_name = f"{namespace}:{name}"
    if pm.is_registered(plugin):
        return
    try:
        pm.register(plugin, name=plugin_name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(f"{_KIND[namespace]} {name!r} cannot be registered: {exc}") from None


def _collect_specs(
    pm: pluggy.PluginManager, hook_name: str, namespace: str, spec_name: Callable[[Any], str]
) -> dict[str, tuple[Any, str]]:
    """Call a registration hook implementation by implementation, keeping who gave what.

    Distributions are looked up (which is slow) only to name both sides of a conflict.
    """
    specs: dict[str, tuple[Any, str]] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        result: Iterable[Any] | None = impl.function()
        for spec in result or ():
            key = spec_name(spec)
            if key in specs and specs[key][1] != impl.plugin_name:
                raise PluginError(
                    f"{_KIND[namespace]} {key!r} is claimed by more than one plugin: distributions "
                    f"{_owner(specs[key][1])} and {_owner(impl.plugin_name)}"
                )
            specs[key] = (spec, impl.plugin_name)
    return specs


def _owner(plugin_name: str) -> str:
    """The distribution behind a registered plugin name (``namespace:entry``)."""
    namespace, _, entry = plugin_name.partition(":")
    return _distribution_of(namespace, entry) if namespace in NAMESPACES else plugin_name


def load_plugins(metadata: str, resolvers: list[str], extensions: list[str]) -> PluginSet:
    """Import and register the selected metadata backend, resolvers and extensions."""
    pm = _new_manager()
    backend_obj = _load_named(NS_METADATA, [metadata])[metadata]
    _register(pm, NS_METADATA, metadata, backend_obj)
    for name, obj in _load_named(NS_EXTENSIONS, extensions).items() if extensions else ():
        _register(pm, NS_EXTENSIONS, name, obj)
    resolver_objs = _load_named(NS_RESOLVERS, resolvers)
    # pluggy calls the most recently registered implementation first: register in reverse.
    for name in reversed(resolvers):
        _register(pm, NS_RESOLVERS, name, resolver_objs[name])
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
    backends = _collect_specs(pm, "cs_metadata_backends", NS_METADATA, lambda s: s.name)
    if metadata not in backends:
        raise PluginError(f"metadata plugin {metadata!r} registers no backend named {metadata!r}")
    _collect_specs(pm, "cs_name_resolvers", NS_RESOLVERS, lambda s: s.name)
    return PluginSet(manager=pm, backend=backends[metadata][0], resolver_names=list(resolvers))


def load_driver(plugins: PluginSet, name: str) -> GraphDriverSpec:
    """Import and register the driver plugin ``name``; return its spec."""
    if name in plugins.drivers:
        return plugins.drivers[name]
    try:
        obj = _load_named(NS_DRIVERS, [name])[name]
    except PluginError as exc:
        if "unknown" in str(exc):
            raise DriverNotSupported(f"driver not supported ({exc})") from None
        raise
    _register(plugins.manager, NS_DRIVERS, name, obj)
    specs = _collect_specs(plugins.manager, "cs_graphdrivers", NS_DRIVERS, lambda s: s.name)
    for spec_name, (spec, _owner) in specs.items():
        plugins.drivers.setdefault(spec_name, spec)
        for alias in spec.aliases:
            plugins.drivers.setdefault(alias, spec)
    if name not in plugins.drivers:
        raise PluginError(f"graph driver plugin {name!r} registers no driver named {name!r}")
    return plugins.drivers[name]


def select_driver(plugins: PluginSet, name: str, make_options: Callable[[str], DriverOptions], priority: list[str]) -> tuple[GraphDriverSpec, DriverOptions]:
    """Pick the driver: explicit name, else the one with state under the root, else priority order.

    ``make_options(name)`` builds the :class:`DriverOptions` for a candidate.  Errors read like
    Go's (``failed to GetDriver graph NAME ROOT: driver not supported``).
    """
    if name:
        spec = load_driver(plugins, name)
        opts = make_options(spec.name)
        if spec.probe is not None:
            spec.probe(opts)
        return spec, opts
    order = list(priority) or list(DEFAULT_DRIVER_PRIORITY)
    sample = make_options("")
    root = sample.graph_root
    installed = _installed_names(NS_DRIVERS)
    prior = [
        n for n in order if n in installed and os.path.isdir(os.path.join(root, n)) and (n != "vfs" or priority)
    ]
    if len(prior) > 1:
        raise DriverNotSupported(
            f"{root} contains several valid graphdrivers: {', '.join(prior)}; Please cleanup or explicitly "
            "choose storage driver (-s <DRIVER>)"
        )
    if prior:
        spec = load_driver(plugins, prior[0])
        return spec, make_options(spec.name)
    candidates = [n for n in order if n in installed] + [n for n in installed if n not in order]
    for candidate in candidates:
        try:
            spec = load_driver(plugins, candidate)
            opts = make_options(spec.name)
            if spec.probe is not None:
                spec.probe(opts)
            return spec, opts
        except (NotSupported, PluginError):
            continue
    raise DriverNotSupported("no supported storage backend found")


def add_cli_commands(group: Any, extensions: list[str]) -> None:
    """Load the configured extensions and let them add commands to ``group`` (``cs_add_commands``)."""
    if not extensions:
        return
    pm = _new_manager()
    for name, obj in _load_named(NS_EXTENSIONS, extensions).items():
        _register(pm, NS_EXTENSIONS, name, obj)
    pm.hook.cs_add_commands(cli=group)


__all__ = [
    "add_cli_commands",
    "NAMESPACES",
    "NameResolverSpec",
    "PluginInfo",
    "PluginSet",
    "installed_plugins",
    "load_driver",
    "load_plugins",
    "select_driver",
]
