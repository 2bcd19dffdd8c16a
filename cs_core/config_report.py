"""The store options as Go's ``types.StoreOptions`` marshals them (the ``config`` command).

``shared/spec/cli.md`` ("``config``"): keys in struct order, empty ones omitted except
``RootlessStoragePath`` and ``PullOptions`` (``null`` when unset).  The options come from
:mod:`cs_core.config`; the keys only Go's ``storage.conf`` has (``rootless_storage_path``, the
ID-remapping and auto-userns keys, ``disable-volatile``) are read from the TOML document here.
A ``storage.yaml`` has none of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cs_core import gojson
from cs_core.config import (
    StoreOptions,
    default_options,
    find_yaml_config,
    parse_toml_config,
    parse_yaml_config,
    plugin_driver_options,
)
from cs_core.errors import ConfigError, StorageError
from cs_core.idmap import IDMap, mapping_to_list, parse_triples, read_subid_ranges

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class GoOnlyOptions:
    """``storage.conf`` settings :class:`StoreOptions` does not carry."""

    rootless_storage_path: str = ""
    uidmap: tuple[IDMap, ...] = ()
    gidmap: tuple[IDMap, ...] = ()
    root_auto_ns_user: str = ""
    auto_userns_min_size: int = 0
    auto_userns_max_size: int = 0
    #: ``None`` when the file has no ``pull_options`` table (Go: a nil map).
    pull_options: dict[str, str] | None = None
    disable_volatile: bool = False


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None


def _uint32(path: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise ConfigError(f"{path}: key {key!r}: expected an unsigned 32-bit integer, got {value!r}")
    return value


def _string(path: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: key {key!r}: expected a string, got {type(value).__name__}")
    return value


def _id_maps(path: str, options: dict[str, Any]) -> tuple[tuple[IDMap, ...], tuple[IDMap, ...]]:
    """``remap-uids``/``remap-gids`` triples, replaced by the subordinate IDs of ``remap-user``/``remap-group``."""
    try:
        uids = parse_triples([v for v in [_string(path, "remap-uids", options.get("remap-uids", ""))] if v], "remap-uids")
        gids = parse_triples([v for v in [_string(path, "remap-gids", options.get("remap-gids", ""))] if v], "remap-gids")
        user = _string(path, "remap-user", options.get("remap-user", ""))
        group = _string(path, "remap-group", options.get("remap-group", ""))
        user, group = user or group, group or user
        if user:
            uids = read_subid_ranges("/etc/subuid", user)
            gids = read_subid_ranges("/etc/subgid", group)
    except ConfigError:
        raise
    except StorageError as exc:
        raise ConfigError(str(exc)) from None
    return uids, gids


def go_only_options(path: str) -> GoOnlyOptions:
    """The Go-only settings of the ``storage.conf`` at ``path``."""
    document = _read_toml(path)
    storage = document.get("storage", {})
    if not isinstance(storage, dict):
        raise ConfigError(f"{path}: key 'storage': expected a table")
    options = storage.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{path}: key 'storage.options': expected a table")
    out = GoOnlyOptions()
    out.rootless_storage_path = _string(path, "rootless_storage_path", storage.get("rootless_storage_path", ""))
    out.uidmap, out.gidmap = _id_maps(path, options)
    out.root_auto_ns_user = _string(path, "root-auto-userns-user", options.get("root-auto-userns-user", ""))
    out.auto_userns_min_size = _uint32(path, "auto-userns-min-size", options.get("auto-userns-min-size", 0))
    out.auto_userns_max_size = _uint32(path, "auto-userns-max-size", options.get("auto-userns-max-size", 0))
    pull = options.get("pull_options")
    if isinstance(pull, dict):
        out.pull_options = {str(k): str(v) for k, v in pull.items()}
    out.disable_volatile = bool(options.get("disable-volatile", False))
    return out


def _load_yaml_file(path: str) -> StoreOptions:
    """A ``storage.yaml`` with ``STORAGE_DRIVER``/``STORAGE_OPTS`` applied, as the defaults get them."""
    opts = parse_yaml_config(path)
    if os.environ.get("STORAGE_DRIVER"):
        opts.driver = "overlay" if os.environ["STORAGE_DRIVER"] == "overlay2" else os.environ["STORAGE_DRIVER"]
    if "STORAGE_OPTS" in os.environ:
        opts.driver_options = [o for o in os.environ["STORAGE_OPTS"].split(",") if o]
    return opts


def load_file(path: str) -> tuple[StoreOptions, GoOnlyOptions]:
    """The options of one configuration file: ``*.yaml``/``*.yml`` is ours, anything else TOML."""
    if not os.path.exists(path):
        raise ConfigError(f"stat {path}: no such file or directory")
    if path.endswith(YAML_SUFFIXES):
        return _load_yaml_file(path), GoOnlyOptions()
    return parse_toml_config(path), go_only_options(path)


def load_defaults() -> tuple[StoreOptions, GoOnlyOptions]:
    """The default store options (cli.md 4.1) and the Go-only settings of the ``storage.conf`` used."""
    yaml_path = find_yaml_config()
    opts = default_options()
    if yaml_path or not opts.config_file:
        return opts, GoOnlyOptions()
    return opts, go_only_options(opts.config_file)


def options_json(opts: StoreOptions, extra: GoOnlyOptions) -> dict[str, Any]:
    """The JSON object Go's ``encoding/json`` makes of the equivalent ``types.StoreOptions``."""
    driver_options = list(opts.driver_options)
    if opts.driver:
        driver_options = plugin_driver_options(opts, opts.driver) + driver_options
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value:
            out[key] = value

    put("runroot", opts.run_root)
    put("root", opts.graph_root)
    put("imagestore", opts.image_store)
    out["RootlessStoragePath"] = extra.rootless_storage_path
    put("driver", opts.driver)
    put("driver-priority", list(opts.driver_priority))
    put("driver-options", driver_options)
    put("uidmap", mapping_to_list(extra.uidmap))
    put("gidmap", mapping_to_list(extra.gidmap))
    put("root_auto_ns_user", extra.root_auto_ns_user)
    put("auto_userns_min_size", extra.auto_userns_min_size)
    put("auto_userns_max_size", extra.auto_userns_max_size)
    out["PullOptions"] = None if extra.pull_options is None else gojson.sorted_map(extra.pull_options)
    put("disable-volatile", extra.disable_volatile)
    put("transient_store", opts.transient_store)
    return out


def config_report(config_file: str | None = None) -> dict[str, Any]:
    """What ``config [CONFIGFILE]`` prints: the defaults, or the options of ``config_file``.

    Errors are :class:`ConfigError` prefixed ``default: `` (loading the defaults) or
    ``reload: `` (loading ``config_file``).
    """
    try:
        opts, extra = load_defaults()
    except StorageError as exc:
        raise ConfigError(f"default: {exc}") from None
    if config_file is not None:
        try:
            opts, extra = load_file(config_file)
        except StorageError as exc:
            raise ConfigError(f"reload: {exc}") from None
    return options_json(opts, extra)
