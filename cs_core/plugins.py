"""Plugin discovery (stevedore) and registration (pluggy).

Each store gets its own :class:`PluginSet`: a pluggy ``PluginManager`` with the hook specs of
:mod:`cs_core.hookspecs`, holding only the plugins the configuration selects.  Entry points are
found with stevedore's ``NamedExtensionManager``, which imports nothing but the named ones.  Once
found, they are kept in a cached index (:mod:`cs_core.plugin_index`) that later processes use
instead, as long as no distribution was installed or removed since: a warm start then imports
neither stevedore nor ``importlib.metadata``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import pluggy

from cs_core import plugin_index
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


class PluginInfo(NamedTuple):
    """An installed entry point, listed without importing it."""

    namespace: str
    name: str
    value: str
    distribution: str


def installed_plugins(namespace: str) -> list[PluginInfo]:
    """Every entry point of ``namespace`` with its distribution (imports nothing)."""
    if namespace in NAMESPACES:
        entries = plugin_index.current(NAMESPACES)[namespace]
    else:
        entries = plugin_index.scan((namespace,))[namespace]
    found = [PluginInfo(namespace, name, value, dist) for name, value, dist, _active in entries]
    return sorted(found, key=lambda p: (p.name, p.distribution))


def _installed_names(namespace: str) -> list[str]:
    index = plugin_index.cached(NAMESPACES)
    if index is not None:
        return sorted({name for name, _value, _dist, active in index[namespace] if active})
    from stevedore import ExtensionManager

    mgr = ExtensionManager.__new__(ExtensionManager)
    mgr.namespace = namespace
    return sorted({ep.name for ep in mgr.list_entry_points()})


def _conflict(namespace: str, name: str) -> PluginError:
    dists = sorted(p.distribution for p in installed_plugins(namespace) if p.name == name)
    return PluginError(
        f"{_KIND[namespace]} {name!r} is claimed by more than one plugin: distributions " + " and ".join(dists)
    )


def _load_failure(namespace: str, name: str, exc: BaseException) -> PluginError:
    dists = ", ".join(p.distribution for p in installed_plugins(namespace) if p.name == name) or "?"
    return PluginError(f"{_KIND[namespace]} {name!r} (distribution {dists}) failed to load: {type(exc).__name__}: {exc}")


def _unknown(namespace: str, name: str) -> PluginError:
    installed = _installed_names(namespace)
    return PluginError(
        f"unknown {_KIND[namespace]} {name!r} (plugin may not be installed); "
        f"installed: {', '.join(installed) if installed else 'none'}"
    )


def _load_named(namespace: str, names: list[str]) -> dict[str, Any]:
    """Import the entry points ``names`` of ``namespace``; return name -> loaded object.

    The cached entry-point index (:mod:`cs_core.plugin_index`) names the modules when it is
    current; otherwise stevedore finds them (and the index is rewritten for the next process).
    """
    index = plugin_index.cached(NAMESPACES)
    if index is None:
        loaded = _load_with_stevedore(namespace, names)
        plugin_index.current(NAMESPACES)
    else:
        loaded = _load_from_index(index[namespace], namespace, names)
    missing = [n for n in names if n not in loaded]
    if missing:
        raise _unknown(namespace, missing[0])
    return loaded


def _load_from_index(entries: list[plugin_index.Entry], namespace: str, names: list[str]) -> dict[str, Any]:
    """Import the named entry points listed in the index (what stevedore would import)."""
    claims: dict[str, list[str]] = {}
    for name, value, _dist, active in entries:
        if active and name in names and value not in claims.setdefault(name, []):
            claims[name].append(value)
    for name in names:
        if len(claims.get(name, ())) > 1:
            raise _conflict(namespace, name)
    loaded: dict[str, Any] = {}
    for name in names:
        if name in loaded or name not in claims:
            continue
        try:
            loaded[name] = plugin_index.load(claims[name][0])
        except (KeyboardInterrupt, AssertionError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported with the distribution, like stevedore's failures
            raise _load_failure(namespace, name, exc) from None
    return loaded


def _load_with_stevedore(namespace: str, names: list[str]) -> dict[str, Any]:
    from stevedore import NamedExtensionManager

    failures: list[tuple[str, BaseException]] = []

    def on_failure(_mgr: Any, ep: Any, exc: BaseException) -> None:
        failures.append((ep.name, exc))

    def on_conflict(_ns: str, name: str, _extensions: list[Any]) -> Any:
        raise _conflict(namespace, name)

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
        raise _load_failure(namespace, name, exc)
    loaded: dict[str, Any] = {}
    for ext in mgr.extensions:
        loaded.setdefault(ext.name, ext.plugin)
    return loaded


def _distribution_of(namespace: str, name: str) -> str:
    dists = [p.distribution for p in installed_plugins(namespace) if p.name == name]
    return dists[0] if dists else "?"


class PluginSet:
    """The plugins of one store, registered with its own pluggy ``PluginManager``."""

    def __init__(self, manager: pluggy.PluginManager, backend: MetadataBackendSpec, resolver_names: list[str]) -> None:
        self.manager = manager
        self.backend = backend
        self.resolver_names = resolver_names
        #: Driver name -> spec, for the drivers loaded so far.
        self.drivers: dict[str, GraphDriverSpec] = {}

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


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, not looking for hooks among ``__dunder__`` attributes.

    Registration inspects every name ``dir(plugin)`` lists (statically, which is slow); for a
    plugin that is an instance, most of those are the ``__dunder__`` methods of ``object``.
    """

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        return None if _dunder(name) else super().parse_hookimpl_opts(plugin, name)

    def parse_hookspec_opts(self, module_or_class: Any, name: str) -> Any:
        return None if _dunder(name) else super().parse_hookspec_opts(module_or_class, name)


def _new_manager() -> pluggy.PluginManager:
    pm = _PluginManager(PROJECT)
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
