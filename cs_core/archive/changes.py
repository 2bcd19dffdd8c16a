"""Naive change detection between two trees (storage.md 10.4) and the size of a change set."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from cs_core.errors import StorageError
from cs_core.idmap import IDMap, to_container
from cs_core.records import Change

Mapping = Sequence[IDMap]


@dataclass(slots=True)
class _Node:
    st: os.stat_result
    capability: bytes | None
    xattrs: dict[str, bytes]
    target: str
    children: dict[str, _Node] = field(default_factory=dict)


def _info(path: str) -> _Node:
    st = os.lstat(path)
    cap: bytes | None = None
    xattrs: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    for key in names:
        try:
            if key == "security.capability":
                cap = os.getxattr(path, key, follow_symlinks=False)
            elif key.startswith("user."):
                xattrs[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
    return _Node(st, cap, xattrs, target)


def _collect(new_path: str, new: _Node, old_path: str | None, old: _Node | None) -> None:
    """Fill children of both nodes, skipping entries that share an inode on both sides."""
    new_names = set(os.listdir(new_path)) if stat.S_ISDIR(new.st.st_mode) else set()
    old_names: set[str] = set()
    if old is not None and old_path is not None and stat.S_ISDIR(old.st.st_mode):
        old_names = set(os.listdir(old_path))
    for name in sorted(new_names | old_names, key=os.fsencode):
        n_child = o_child = None
        if name in new_names:
            n_child = _info(os.path.join(new_path, name))
        if name in old_names:
            assert old_path is not None
            o_child = _info(os.path.join(old_path, name))
        if n_child is not None and o_child is not None and (n_child.st.st_ino, n_child.st.st_dev) == (o_child.st.st_ino, o_child.st.st_dev):
            continue
        if n_child is not None:
            new.children[name] = n_child
        if o_child is not None and old is not None:
            old.children[name] = o_child
        if n_child is not None and stat.S_ISDIR(n_child.st.st_mode):
            o_dir = o_child is not None and old_path is not None and stat.S_ISDIR(o_child.st.st_mode)
            _collect(
                os.path.join(new_path, name),
                n_child,
                os.path.join(old_path, name) if (o_dir and old_path is not None) else None,
                o_child if o_dir else None,
            )


def _same_time(a: int, b: int) -> bool:
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return sa == sb and (na == nb or na == 0 or nb == 0)


def _owner(st: os.stat_result, maps: tuple[Mapping, Mapping]) -> tuple[int, int]:
    try:
        return to_container(maps[0], st.st_uid), to_container(maps[1], st.st_gid)
    except StorageError:
        return st.st_uid, st.st_gid


def _stat_different(old: os.stat_result, old_maps: tuple[Mapping, Mapping], new: os.stat_result, new_maps: tuple[Mapping, Mapping]) -> bool:
    if old.st_mode != new.st_mode or _owner(old, old_maps) != _owner(new, new_maps) or old.st_rdev != new.st_rdev:
        return True
    if not _same_time(old.st_mtime_ns, new.st_mtime_ns):
        return True
    return (old.st_mode & stat.S_IFDIR) != stat.S_IFDIR and old.st_size != new.st_size


def _add_changes(path: str, info: _Node, old: _Node | None, maps: tuple[tuple[Mapping, Mapping], tuple[Mapping, Mapping]],
                 changes: list[Change], added: set[str]) -> None:
    at_entry = len(changes)
    if old is None:
        changes.append(Change(path, Change.ADD))
        added.add(path)
    is_dir = stat.S_ISDIR(info.st.st_mode)
    old_children = dict(old.children) if (old is not None and is_dir) else {}
    for name, child in sorted(info.children.items(), key=lambda kv: os.fsencode(kv[0])):
        child_path = (path.rstrip("/") + "/" + name)
        o_child = old_children.pop(name, None)
        if o_child is not None:
            if (_stat_different(o_child.st, maps[1], child.st, maps[0]) or o_child.capability != child.capability
                    or o_child.target != child.target or o_child.xattrs != child.xattrs):
                changes.append(Change(child_path, Change.MODIFY))
                added.add(child_path)
        _add_changes(child_path, child, o_child, maps, changes, added)
    for name in sorted(old_children, key=os.fsencode):
        changes.append(Change(path.rstrip("/") + "/" + name, Change.DELETE))
    if len(changes) > at_entry and is_dir and path not in added and path != "/":
        changes.insert(at_entry, Change(path, Change.MODIFY))


def changes_dirs(new_dir: str, new_maps: tuple[Mapping, Mapping], old_dir: str | None,
                 old_maps: tuple[Mapping, Mapping] = ((), ())) -> list[Change]:
    """Changes of ``new_dir`` relative to ``old_dir`` (``None`` = an empty tree)."""
    new_root = _info(new_dir)
    old_root = _info(old_dir) if old_dir else _Node(new_root.st, None, {}, "")
    _collect(new_dir, new_root, old_dir, old_root)
    changes: list[Change] = []
    _add_changes("/", new_root, old_root, (new_maps, old_maps), changes, set())
    return changes


def changes_size(root: str, changes: Sequence[Change]) -> int:
    """Sum of ``lstat`` sizes of non-directory Add/Modify paths (each inode once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for change in changes:
        if change.kind == Change.DELETE:
            continue
        try:
            st = os.lstat(os.path.join(root, change.path.lstrip("/")))
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.st_size
    return total
