"""Native overlay change detection and sizes, computed from the upper ``diff/`` directory.

Storage.md 10.4 ("overlay changes"), 9.2.2 (``DiffSize``) and 10.6.  ``lowers`` are the diff
directories of the layer's lower layers, topmost first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from cs_core.records import Change

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")

CHANGE_MODIFY = 0
CHANGE_ADD = 1
CHANGE_DELETE = 2


def is_whiteout(st: os.stat_result) -> bool:
    """A kernel overlay whiteout: a character device 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str, xattr: str = "") -> bool:
    """Whether the directory ``path`` carries the overlay opaque flag ``y``."""
    for name in (xattr,) if xattr else OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def lower_lookup(lowers: list[str], rel: str) -> tuple[str, str] | None:
    """Find ``rel`` (relative path, no leading slash) in the lowers, top-down.

    Returns ``("whiteout", lower)`` when the first lower deciding about the path hides it
    (the path or one of its ancestors is a whiteout there), ``("present", lower)`` when the
    first lower having it has a real entry, or ``None`` when no lower has it.
    """
    parts = rel.split("/")
    for lower in lowers:
        hidden = False
        current = lower
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            st = _lstat(current)
            if st is None:
                break
            if is_whiteout(st):
                hidden = True
                break
            if index < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                break
        else:
            return ("present", lower)
        if hidden:
            return ("whiteout", lower)
    return None


def needs_opaque_marker(lowers: list[str], rel: str) -> bool:
    """Whether an opaque directory at ``rel`` must be exported with ``.wh..wh..opq`` (9.2.1)."""
    found = lower_lookup(lowers, rel)
    return found is not None and found[0] == "present"


def walk_depth_first(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Lexical depth-first walk (a directory's children come right after it)."""

    def visit(rel_dir: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            names = sorted(os.listdir(os.path.join(root, rel_dir) if rel_dir else root))
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st = os.lstat(os.path.join(root, rel))
            yield rel, st
            if stat.S_ISDIR(st.st_mode):
                yield from visit(rel)

    return visit("")


def _same_fs_time(a: float, b: float, a_ns: int, b_ns: int) -> bool:
    if a_ns == b_ns:
        return True
    if int(a) != int(b):
        return False
    return a_ns % 1_000_000_000 == 0 or b_ns % 1_000_000_000 == 0


def native_changes(diff_dir: str, lowers: list[str]) -> list[Change]:
    """The changes recorded in an overlay upper directory (storage.md 10.4, overlay)."""
    changes: list[Change] = []
    changed_dirs: set[str] = set()
    for rel, st in walk_depth_first(diff_dir):
        path = "/" + rel
        kind: int
        if is_whiteout(st):
            kind = CHANGE_DELETE
        elif (
            stat.S_ISDIR(st.st_mode)
            and lowers
            and is_opaque(os.path.join(diff_dir, rel))
            and needs_opaque_marker(lowers, rel)
        ):
            kind = CHANGE_DELETE
        else:
            kind = CHANGE_ADD
            found = lower_lookup(lowers, rel)
            if found is not None and found[0] == "present":
                try:
                    lst = os.stat(os.path.join(found[1], rel))
                except OSError:
                    lst = None
                if lst is not None:
                    if (
                        stat.S_ISDIR(st.st_mode)
                        and stat.S_ISDIR(lst.st_mode)
                        and st.st_size == lst.st_size
                        and st.st_mode == lst.st_mode
                        and _same_fs_time(st.st_mtime, lst.st_mtime, st.st_mtime_ns, lst.st_mtime_ns)
                    ):
                        continue
                    kind = CHANGE_MODIFY
        if stat.S_ISDIR(st.st_mode):
            changed_dirs.add(path)
        if kind in (CHANGE_ADD, CHANGE_DELETE):
            tail: list[Change] = []
            parent = os.path.dirname(path)
            while parent != "/":
                if parent not in changed_dirs:
                    tail.insert(0, Change(parent, CHANGE_MODIFY))
                    changed_dirs.add(parent)
                parent = os.path.dirname(parent)
            changes.extend(tail)
        changes.append(Change(path, kind))
    return changes


def tree_usage(root: str) -> tuple[int, int]:
    """``(bytes, inodes)``: lstat sizes of non-directories (each inode once); every inode counted."""
    seen: set[tuple[int, int]] = set()
    size = 0
    inodes = 0
    for _, st in walk_depth_first(root):
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        inodes += 1
        if not stat.S_ISDIR(st.st_mode):
            size += st.st_size
    return size, inodes


def tree_size(root: str) -> int:
    """Total size of ``root`` as overlay native ``DiffSize``/``ApplyDiff`` report it.

    The byte half of :func:`tree_usage` (lstat sizes of non-directories, each inode once), but
    cheaper: ``os.scandir`` tells directories apart by ``d_type``, so only non-directories are
    ``lstat``-ed (directories add no bytes, and cannot share an inode with a non-directory).
    """
    seen: set[tuple[int, int]] = set()
    size = 0
    pending = [root]
    while pending:
        try:
            it = os.scandir(pending.pop())
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                size += st.st_size
    return size
