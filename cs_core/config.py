"""Configuration: ``storage.yaml`` (ours), ``storage.conf`` (what distros ship), flags, environment.

Precedence, highest first: command-line flags, ``STORAGE_DRIVER`` / ``STORAGE_OPTS``, the
configuration file, built-in defaults.  The YAML file is found through
``CONTAINERS_STORAGE_CONFIG``, then ``$XDG_CONFIG_HOME/containers/storage.yaml`` (or
``~/.config/containers/storage.yaml``), ``/etc/containers/storage.yaml`` and
``/usr/share/containers/storage.yaml``.  Where no YAML file exists, the TOML ``storage.conf``
is read from the places Go's containers/storage reads it (``CONTAINERS_STORAGE_CONF``,
``/etc/containers/storage.conf``, ``/usr/share/containers/storage.conf``).

Like the Go CLI, the roots, driver and driver options of the file are used only when none of
``--graph``, ``--run``, ``--storage-driver``, ``--storage-opt`` was given; the keys that only we
have (``metadata``, ``resolvers``, ``extensions``, ``options``) always apply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cs_core import gojson
from cs_core.errors import ConfigError
from cs_core.fsutil import cache_dir, settled, write_cache_file

DEFAULT_GRAPH_ROOT = "/var/lib/containers/storage"
DEFAULT_RUN_ROOT = "/run/containers/storage"
DEFAULT_RESOLVERS = ["id", "name", "prefix", "digest"]
DEFAULT_METADATA = "json"
YAML_KEYS = {
    "driver",
    "driver_priority",
    "metadata",
    "resolvers",
    "graphroot",
    "runroot",
    "imagestore",
    "transient_store",
    "options",
    "extensions",
}


@dataclass(slots=True)
class StoreOptions:
    """Everything needed to open a store."""

    graph_root: str = DEFAULT_GRAPH_ROOT
    run_root: str = DEFAULT_RUN_ROOT
    #: Driver name, or "" for automatic selection.
    driver: str = ""
    driver_priority: list[str] = field(default_factory=list)
    #: ``KEY=VALUE`` driver options (``--storage-opt``).
    driver_options: list[str] = field(default_factory=list)
    metadata: str = DEFAULT_METADATA
    resolvers: list[str] = field(default_factory=lambda: list(DEFAULT_RESOLVERS))
    extensions: list[str] = field(default_factory=list)
    #: Per-plugin option maps from the YAML ``options:`` key, keyed by plugin name.
    plugin_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    image_store: str = ""
    transient_store: bool = False
    pull_options: dict[str, str] = field(default_factory=dict)
    #: The file the options came from ("" when none).
    config_file: str = ""


def _user_config_home() -> str:
    return os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")


def find_yaml_config() -> str | None:
    """The ``storage.yaml`` to use, or ``None``; an explicit missing path is an error."""
    explicit = os.environ.get("CONTAINERS_STORAGE_CONFIG")
    if explicit:
        if not os.path.exists(explicit):
            raise ConfigError(f"stat {explicit}: no such file or directory")
        return explicit
    for candidate in (
        os.path.join(_user_config_home(), "containers", "storage.yaml"),
        "/etc/containers/storage.yaml",
        "/usr/share/containers/storage.yaml",
    ):
        if os.path.exists(candidate):
            return candidate
    return None


def find_toml_config() -> str | None:
    """The ``storage.conf`` Go would read, or ``None``; a missing ``$CONTAINERS_STORAGE_CONF`` is an error."""
    explicit = os.environ.get("CONTAINERS_STORAGE_CONF")
    if explicit:
        if not os.path.exists(explicit):
            raise ConfigError(f"stat {explicit}: no such file or directory")
        return explicit
    candidates = []
    if os.geteuid() != 0:
        candidates.append(os.path.join(_user_config_home(), "containers", "storage.conf"))
    candidates += ["/etc/containers/storage.conf", "/usr/share/containers/storage.conf"]
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    return None


def _expect(path: str, key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(f"{path}: key {key!r}: expected {what}, got {type(value).__name__}")
    return value


def _string_list(path: str, key: str, value: Any) -> list[str]:
    _expect(path, key, value, list, "a list of strings")
    for item in value:
        _expect(path, key, item, str, "a list of strings")
    return list(value)


def parse_yaml_config(path: str) -> StoreOptions:
    """Read a ``storage.yaml``; errors name the file and the key."""
    import yaml

    try:
        with open(path, "rb") as fh:
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if data is None:
        data = {}
    _expect(path, "(top level)", data, dict, "a mapping")
    unknown = sorted(set(map(str, data)) - YAML_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(YAML_KEYS))})")
    opts = StoreOptions(config_file=path)
    if "driver" in data and data["driver"] is not None:
        opts.driver = _normalise_driver(_expect(path, "driver", data["driver"], str, "a string"))
    if "driver_priority" in data:
        opts.driver_priority = _string_list(path, "driver_priority", data["driver_priority"])
    if "metadata" in data:
        opts.metadata = _expect(path, "metadata", data["metadata"], str, "a string")
    if "resolvers" in data:
        opts.resolvers = _string_list(path, "resolvers", data["resolvers"])
        if not opts.resolvers:
            raise ConfigError(f"{path}: key 'resolvers': must name at least one resolver")
    if "extensions" in data:
        opts.extensions = _string_list(path, "extensions", data["extensions"])
    for key, attr in (("graphroot", "graph_root"), ("runroot", "run_root"), ("imagestore", "image_store")):
        if key in data and data[key] is not None:
            setattr(opts, attr, _expand(_expect(path, key, data[key], str, "a string")))
    if "transient_store" in data:
        opts.transient_store = _expect(path, "transient_store", data["transient_store"], bool, "true or false")
    if "options" in data and data["options"] is not None:
        plugin_options = _expect(path, "options", data["options"], dict, "a mapping of plugin name to options")
        for plugin, values in plugin_options.items():
            if values is None:
                values = {}
            _expect(path, f"options.{plugin}", values, dict, "a mapping")
            opts.plugin_options[str(plugin)] = dict(values)
    return opts


def _normalise_driver(name: str) -> str:
    return "overlay" if name == "overlay2" else name


def _expand(path: str) -> str:
    if not path:
        return path
    path = path.replace("$UID", str(os.geteuid()))
    return os.path.expandvars(os.path.expanduser(path))


_GENERIC_TOML_OPTIONS = ("size", "mount_program", "skip_mount_home", "ignore_chown_errors", "mountopt")
_DRIVER_TABLE_KEYS = {
    "overlay": (
        "ignore_chown_errors",
        "mount_program",
        "mountopt",
        "size",
        "inodes",
        "skip_mount_home",
        "force_mask",
        "use_composefs",
    ),
    "vfs": ("ignore_chown_errors",),
    "btrfs": ("min_space", "size"),
}


def _toml_cache(path: str) -> tuple[str, list[Any]] | None:
    """The cache file for the parsed ``path`` and the key it must hold; ``None`` if ``path`` is too new."""
    from binascii import crc32

    try:
        st = os.stat(path)
    except OSError:
        return None
    if not settled(st.st_mtime_ns, st.st_ctime_ns):
        return None
    real = os.path.realpath(path)
    key = [real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return os.path.join(cache_dir(), f"storage-conf-{crc32(os.fsencode(real)):08x}.json"), key


def _load_toml(path: str) -> dict[str, Any]:
    """``tomllib.load`` of ``path``, kept in the cache directory while the file is unchanged.

    Importing tomllib (regular expressions, datetime) costs more than all the rest of reading the
    configuration, on every start of the CLI.  The parsed document is stored as JSON, keyed by
    the file's device, inode, size and times; documents JSON cannot hold (TOML dates) are not.
    """
    cache = _toml_cache(path)
    if cache is not None:
        try:
            with open(cache[0], "rb") as fh:
                stored = gojson.loads(fh.read())
            if stored["key"] == cache[1] and isinstance(stored["document"], dict):
                return stored["document"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if cache is not None:
        try:
            text = gojson.dumps({"key": cache[1], "document": data})
        except (TypeError, ValueError):
            return data
        write_cache_file(cache[0], text.encode("utf-8"))
    return data


def parse_toml_config(path: str) -> StoreOptions:
    """Read a Go-style ``storage.conf`` (storage.md section 7.3)."""
    data = _load_toml(path)
    storage = data.get("storage", {})
    _expect(path, "storage", storage, dict, "a table")
    opts = StoreOptions(config_file=path)
    env_driver = os.environ.get("STORAGE_DRIVER")
    driver = env_driver if env_driver else storage.get("driver", "")
    opts.driver = _normalise_driver(_expect(path, "storage.driver", driver, str, "a string"))
    if "driver_priority" in storage:
        opts.driver_priority = _string_list(path, "storage.driver_priority", storage["driver_priority"])
    for key, attr in (("graphroot", "graph_root"), ("runroot", "run_root"), ("imagestore", "image_store")):
        value = storage.get(key)
        if value:
            setattr(opts, attr, _expand(_expect(path, f"storage.{key}", value, str, "a string")))
    if "transient_store" in storage:
        opts.transient_store = bool(storage["transient_store"])
    options = storage.get("options", {})
    _expect(path, "storage.options", options, dict, "a table")
    driver_opts: list[str] = []
    name = opts.driver
    if name:
        for store_path in options.get("additionalimagestores", []) or []:
            driver_opts.append(f"{name}.imagestore={store_path}")
        for store_path in options.get("additionallayerstores", []) or []:
            driver_opts.append(f"{name}.additionallayerstore={store_path}")
        for key in _GENERIC_TOML_OPTIONS:
            if options.get(key) not in (None, ""):
                driver_opts.append(f"{name}.{key}={options[key]}")
        if options.get("force_mask"):
            driver_opts.append(f"{name}.force_mask={int(options['force_mask']):o}")
        table = options.get(name, {})
        if isinstance(table, dict):
            if name == "btrfs" and table.get("min_space"):
                driver_opts.append(f"btrfs.min_space={table['min_space']}")
            else:
                for key in _DRIVER_TABLE_KEYS.get(name, ()):
                    if table.get(key) not in (None, ""):
                        driver_opts.append(f"{name}.{key}={table[key]}")
    pull = options.get("pull_options", {})
    if isinstance(pull, dict):
        opts.pull_options = {str(k): str(v) for k, v in pull.items()}
    if "STORAGE_OPTS" in os.environ:
        env_opts = os.environ["STORAGE_OPTS"]
        driver_opts = [o for o in env_opts.split(",") if o] if env_opts else []
    opts.driver_options = driver_opts
    return opts


def default_options() -> StoreOptions:
    """The defaults: the YAML file if one exists, else ``storage.conf``, else built-ins."""
    yaml_path = find_yaml_config()
    if yaml_path:
        opts = parse_yaml_config(yaml_path)
        if os.environ.get("STORAGE_DRIVER"):
            opts.driver = _normalise_driver(os.environ["STORAGE_DRIVER"])
        if "STORAGE_OPTS" in os.environ:
            env_opts = os.environ["STORAGE_OPTS"]
            opts.driver_options = [o for o in env_opts.split(",") if o] if env_opts else []
        return opts
    toml_path = find_toml_config()
    if toml_path:
        return parse_toml_config(toml_path)
    opts = StoreOptions()
    if os.environ.get("STORAGE_DRIVER"):
        opts.driver = _normalise_driver(os.environ["STORAGE_DRIVER"])
    if os.environ.get("STORAGE_OPTS"):
        opts.driver_options = [o for o in os.environ["STORAGE_OPTS"].split(",") if o]
    return opts


def plugin_driver_options(opts: StoreOptions, driver: str) -> list[str]:
    """Driver options from the YAML ``options.<driver>`` map, as ``driver.key=value`` strings."""
    values = opts.plugin_options.get(driver, {})
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        out.append(f"{driver}.{key}={value}")
    return out


def load_options(
    graph_root: str | None = None,
    run_root: str | None = None,
    driver: str | None = None,
    storage_opts: list[str] | None = None,
    image_store: str | None = None,
    transient_store: bool | None = None,
) -> StoreOptions:
    """Combine flags with the configuration the way the Go CLI does (cli.md section 4.1).

    When none of ``graph_root``, ``run_root``, ``driver``, ``storage_opts`` is given the
    configuration is used wholesale (and ``image_store``/``transient_store`` are ignored, as
    upstream does); otherwise only what was given counts, missing roots coming from the
    configuration.
    """
    defaults = default_options()
    if graph_root is None and run_root is None and driver is None and storage_opts is None:
        return defaults
    opts = StoreOptions(
        graph_root=os.path.abspath(graph_root) if graph_root else defaults.graph_root,
        run_root=os.path.abspath(run_root) if run_root else defaults.run_root,
        driver=_normalise_driver(driver) if driver else "",
        driver_priority=list(defaults.driver_priority),
        driver_options=list(storage_opts or []),
        metadata=defaults.metadata,
        resolvers=list(defaults.resolvers),
        extensions=list(defaults.extensions),
        plugin_options=dict(defaults.plugin_options),
        image_store=image_store or "",
        transient_store=bool(transient_store),
        pull_options=dict(defaults.pull_options),
        config_file=defaults.config_file,
    )
    return opts
