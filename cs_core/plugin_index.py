"""An on-disk index of the installed plugin entry points, so that a warm start skips the scan.

Finding entry points means importing ``importlib.metadata`` (and stevedore) and reading every
distribution's metadata, which costs more than the rest of a CLI call.  The index keeps, for each
plugin namespace, every installed entry point as ``(name, "module:attr", distribution, active)``
(``active`` is false for the later copies of a distribution installed twice, which
``importlib.metadata`` and stevedore ignore).  Every claimant of a name is kept, so conflicts
are still found from the index.

The index is a JSON file ``$XDG_CACHE_HOME/cs-core/entry-points-<crc>.json`` (``~/.cache`` when
the variable is unset), one per interpreter and ``sys.path``.  It is valid while the interpreter,
``sys.path`` and the modification times of the ``sys.path`` entries are those it was built with:
installing or removing a distribution adds or removes a directory in its ``site-packages`` (or
a ``.pth`` entry, which changes ``sys.path``); editing an installed ``entry_points.txt`` in place
is not noticed (reinstall the distribution).  A file that is missing, stale or unreadable is a
miss: the caller discovers plugins with stevedore and the index is rebuilt and rewritten
atomically.  An index is not written while a ``sys.path`` entry was modified in the last
seconds (a later change in the same clock tick would leave the time unchanged), nor where the
cache directory cannot be written.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from cs_core.fsutil import cache_dir, settled, write_cache_file

#: ``(name, value, distribution, active)`` of one installed entry point.
Entry = tuple[str, str, str, bool]
#: Namespace -> its entry points, in discovery order.
Index = dict[str, list[Entry]]

_VERSION = 1
#: Key text -> (index, whether it was read from the cache): one look-up per process and key.
_memo: dict[str, tuple[Index, bool]] = {}


def _path_state() -> list[tuple[str, int]]:
    """Each ``sys.path`` entry (absolute) with its modification time in ns (-1 when missing)."""
    state = []
    for entry in sys.path:
        path = os.path.abspath(entry) if isinstance(entry, str) else str(entry)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = -1
        state.append((path, mtime))
    return state


def _cache_file(namespaces: tuple[str, ...], paths: list[str]) -> str:
    from binascii import crc32

    text = "\0".join([sys.executable, sys.prefix, *namespaces, *paths])
    return os.path.join(cache_dir(), f"entry-points-{crc32(text.encode('utf-8', 'surrogateescape')):08x}.json")


def _read(path: str, key: dict[str, Any], namespaces: tuple[str, ...]) -> Index | None:
    """The index stored in ``path`` if it was built for ``key``; ``None`` otherwise."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        stored = data["plugins"]
        index: Index = {}
        for namespace in namespaces:
            entries = []
            for name, value, dist, active in stored[namespace]:
                if not (isinstance(name, str) and isinstance(value, str) and isinstance(dist, str)):
                    return None
                entries.append((name, value, dist, bool(active)))
            index[namespace] = entries
        return index
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _normalise(name: str) -> str:
    """PEP 503 normalisation with underscores, as ``importlib.metadata`` compares distributions."""
    import re

    return re.sub(r"[-_.]+", "_", name).lower()


def scan(namespaces: tuple[str, ...]) -> Index:
    """Build the index from the installed distributions (imports ``importlib.metadata``)."""
    from importlib.metadata import distributions

    index: Index = {namespace: [] for namespace in namespaces}
    seen: set[tuple[str, str, str, str]] = set()
    dists_seen: set[str] = set()
    for dist in distributions():
        dist_name = dist.metadata["Name"] or "?"
        normalised = _normalise(dist_name)
        active = normalised not in dists_seen
        dists_seen.add(normalised)
        for ep in dist.entry_points:
            if ep.group not in index:
                continue
            seen_key = (ep.group, ep.name, ep.value, dist_name)
            if seen_key in seen:
                continue
            seen.add(seen_key)
            index[ep.group].append((ep.name, ep.value, dist_name, active))
    return index


def _key(namespaces: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The cache file for this interpreter and ``sys.path``, and the key its contents must match."""
    state = _path_state()
    key = {
        "version": _VERSION,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "namespaces": list(namespaces),
        "path": [[path, mtime] for path, mtime in state],
    }
    return _cache_file(namespaces, [path for path, _ in state]), key


def _stored(namespaces: tuple[str, ...]) -> tuple[Index | None, bool, str, dict[str, Any]]:
    """``(index, read from the cache, cache file, key)``; the index is ``None`` when not known yet."""
    path, key = _key(namespaces)
    memo_key = repr(key)
    if memo_key in _memo:
        index, from_cache = _memo[memo_key]
        return index, from_cache, path, key
    found = _read(path, key, namespaces)
    if found is not None:
        _memo[memo_key] = (found, True)
    return found, found is not None, path, key


def cached(namespaces: tuple[str, ...]) -> Index | None:
    """The index read from the cache, or ``None`` on a miss (discover with stevedore then)."""
    index, from_cache, _path, _key_ = _stored(namespaces)
    return index if from_cache else None


def current(namespaces: tuple[str, ...]) -> Index:
    """The index: from the cache, else scanned now (and the cache rewritten)."""
    index, _from_cache, path, key = _stored(namespaces)
    if index is not None:
        return index
    index = scan(namespaces)
    _memo[repr(key)] = (index, False)
    if settled(*(mtime for _, mtime in key["path"])):
        write_cache_file(path, json.dumps({"key": key, "plugins": index}, separators=(",", ":")).encode("utf-8"))
    return index


def load(value: str) -> Any:
    """Import the object an entry-point value (``module``, ``module:attr.attr``) names."""
    from importlib import import_module

    target = value.split("[", 1)[0]
    module_name, _, attrs = target.partition(":")
    obj: Any = import_module(module_name.strip())
    for attr in attrs.strip().split("."):
        if attr:
            obj = getattr(obj, attr)
    return obj
