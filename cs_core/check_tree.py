"""Check 2's content walk (``shared/spec/cli.md`` 7.13): the tree a chain of diffs implies, the
tree a mounted layer shows, and the differences between the two.

:class:`HeaderRecorder` keeps the headers of a regenerated diff while it is parsed;
:func:`expected_tree` replays the headers of a layer chain (base first); :func:`mounted_tree`
reads a directory; :func:`compare_trees` lists the differences as Go's check does
(``+/path``, ``-/path``, ``/path(attr:old￫new,...)``).  The root directory itself is not
compared: only what is below it.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cs_core.archive.tarstream import BaseListener, Member
from cs_core.archive.whiteouts import WHITEOUT_OPAQUE_DIR as WHITEOUT_OPAQUE
from cs_core.archive.whiteouts import WHITEOUT_PREFIX
from cs_core.errors import StorageError
from cs_core.idmap import IDMap, to_container

ARROW = "\uffeb"
_TYPE_REG = "0"
_TYPE_LINK = "1"
_TYPE_DIR = "5"
#: Members that never become files (PAX/GNU extension headers).
_META_TYPES = frozenset("gxLK")


@dataclass(frozen=True, slots=True)
class Header:
    """What check 2 needs of one tar member."""

    name: str
    typeflag: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str


class HeaderRecorder(BaseListener):
    """A tar listener that records every member's :class:`Header`, in stream order."""

    def __init__(self) -> None:
        self.headers: list[Header] = []

    def on_member(self, member: Member) -> None:
        info = member.info
        typeflag = info.type.decode("latin-1") or _TYPE_REG
        if typeflag == "\0":
            typeflag = _TYPE_DIR if info.name.endswith("/") else _TYPE_REG
        self.headers.append(
            Header(
                name=info.name,
                typeflag=typeflag,
                mode=int(info.mode),
                uid=int(info.uid),
                gid=int(info.gid),
                size=int(info.size),
                mtime=member.mtime_ns // 1_000_000_000,
                linkname=info.linkname,
            )
        )


@dataclass(slots=True)
class Entry:
    """One node of a tree: its attributes and, for a directory, its children."""

    typeflag: str
    uid: int = 0
    gid: int = 0
    size: int = 0
    mode: int = 0
    mtime: int = 0
    #: A directory only implied by a deeper path (no header of its own): attributes unknown.
    implicit: bool = False
    children: dict[str, Entry] | None = None

    @property
    def is_dir(self) -> bool:
        return self.children is not None


def _new_dir(implicit: bool = True) -> Entry:
    return Entry(_TYPE_DIR, mode=0o755, implicit=implicit, children={})


def _components(name: str) -> list[str]:
    clean = posixpath.normpath("/" + name)
    return [part for part in clean.split("/") if part]


@dataclass
class Tree:
    """A directory tree built from headers or read from disk."""

    root: Entry = field(default_factory=lambda: _new_dir(implicit=False))

    def _parent(self, parts: Sequence[str], create: bool) -> Entry | None:
        node = self.root
        for part in parts:
            assert node.children is not None
            child = node.children.get(part)
            if child is None or not child.is_dir:
                if not create:
                    return None
                child = _new_dir()
                node.children[part] = child
            node = child
        return node

    def lookup(self, name: str) -> Entry | None:
        """The entry at ``name`` (relative to the root), or None."""
        parts = _components(name)
        if not parts:
            return self.root
        parent = self._parent(parts[:-1], create=False)
        return parent.children.get(parts[-1]) if parent is not None and parent.children is not None else None

    def put(self, name: str, entry: Entry) -> None:
        """Set ``name`` to ``entry``; a directory keeps the children it already had."""
        parts = _components(name)
        if not parts:
            return
        parent = self._parent(parts[:-1], create=True)
        assert parent is not None and parent.children is not None
        old = parent.children.get(parts[-1])
        if entry.is_dir and old is not None and old.children is not None:
            entry.children = old.children
        parent.children[parts[-1]] = entry

    def remove(self, name: str) -> None:
        """Remove ``name`` (and everything below it) if present."""
        parts = _components(name)
        if not parts:
            return
        parent = self._parent(parts[:-1], create=False)
        if parent is not None and parent.children is not None:
            parent.children.pop(parts[-1], None)

    def reset(self, name: str) -> None:
        """Empty the directory ``name`` (creating it if needed), keeping its own attributes."""
        node = self.lookup(name)
        if node is None or node.children is None:
            self.put(name, _new_dir())
        else:
            node.children = {}


def _replay_order(header: Header) -> int:
    base = posixpath.basename(header.name.rstrip("/"))
    if base == WHITEOUT_OPAQUE:
        return 0
    if base.startswith(WHITEOUT_PREFIX):
        return 1
    if header.typeflag == _TYPE_LINK:
        return 3
    return 2


def replay(tree: Tree, headers: Iterable[Header]) -> None:
    """Apply one layer's diff headers to ``tree``: opaque whiteouts first, then whiteouts, then
    entries, then hard links (which copy their target's attributes)."""
    for header in sorted(headers, key=_replay_order):
        if header.typeflag in _META_TYPES:
            continue
        directory, base = posixpath.split(header.name.rstrip("/"))
        if base == WHITEOUT_OPAQUE:
            tree.reset(directory)
        elif base.startswith(WHITEOUT_PREFIX):
            tree.remove(posixpath.join(directory, base[len(WHITEOUT_PREFIX) :]))
        elif header.typeflag == _TYPE_LINK:
            target = tree.lookup(header.linkname)
            if target is not None and not target.is_dir and _components(header.linkname):
                tree.put(header.name, Entry(target.typeflag, target.uid, target.gid, target.size, target.mode, target.mtime))
        else:
            size = header.size if header.typeflag == _TYPE_REG else 0
            entry = Entry(header.typeflag, header.uid, header.gid, size, header.mode & 0o7777, header.mtime)
            if header.typeflag == _TYPE_DIR:
                entry.children = {}
            tree.put(header.name, entry)


def expected_tree(chain: Iterable[Sequence[Header]]) -> Tree:
    """The tree implied by the diffs of a layer chain, base layer first."""
    tree = Tree()
    for headers in chain:
        replay(tree, headers)
    return tree


def _typeflag_of(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return _TYPE_REG
    if stat.S_ISDIR(mode):
        return _TYPE_DIR
    if stat.S_ISLNK(mode):
        return "2"
    if stat.S_ISCHR(mode):
        return "3"
    if stat.S_ISBLK(mode):
        return "4"
    if stat.S_ISFIFO(mode):
        return "6"
    return None


def _read_dir(path: str, node: Entry) -> None:
    assert node.children is not None
    with os.scandir(path) as entries:
        for dirent in entries:
            st = dirent.stat(follow_symlinks=False)
            typeflag = _typeflag_of(st.st_mode)
            if typeflag is None:  # sockets cannot be in a diff (Go's tar cannot encode them)
                continue
            size = st.st_size if typeflag == _TYPE_REG else 0
            entry = Entry(typeflag, st.st_uid, st.st_gid, size, stat.S_IMODE(st.st_mode), st.st_mtime_ns // 1_000_000_000)
            if typeflag == _TYPE_DIR:
                entry.children = {}
                _read_dir(dirent.path, entry)
            node.children[dirent.name] = entry


def mounted_tree(path: str) -> Tree:
    """The tree below ``path`` as the file system shows it (symlinks not followed)."""
    tree = Tree()
    _read_dir(path, tree.root)
    return tree


@dataclass(frozen=True)
class Ignore:
    """Attributes a store's options say not to compare."""

    ownership: bool = False
    permissions: bool = False
    timestamps: bool = False


def _mode_string(mode: int) -> str:
    """Go's ``os.FileMode(mode).String()`` for permission bits: ``-rwxr-xr-x``."""
    return "-" + "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))


def _attributes(want: Entry, have: Entry, uidmap: Sequence[IDMap], gidmap: Sequence[IDMap], ignore: Ignore) -> str:
    diffs: list[str] = []
    if want.typeflag != have.typeflag and not ignore.permissions:
        diffs.append(f"filetype:{ord(want.typeflag)}{ARROW}{ord(have.typeflag)}")
    if want.implicit:
        return ",".join(diffs)
    try:
        uid, gid = to_container(uidmap, have.uid), to_container(gidmap, have.gid)
    except StorageError as exc:
        return str(exc)
    if want.uid != uid and not ignore.ownership:
        diffs.append(f"uid:{want.uid}{ARROW}{uid}")
    if want.gid != gid and not ignore.ownership:
        diffs.append(f"gid:{want.gid}{ARROW}{gid}")
    if want.size != have.size:
        diffs.append(f"size:{want.size}{ARROW}{have.size}")
    if (want.mode & 0o777) != (have.mode & 0o777) and not ignore.permissions:
        diffs.append(f"mode:{_mode_string(want.mode)}{ARROW}{_mode_string(have.mode)}")
    if want.mtime != have.mtime and not ignore.timestamps:
        diffs.append(f"mtime:{want.mtime:#x}{ARROW}{have.mtime:#x}")
    return ",".join(diffs)


def _all_paths(prefix: str, node: Entry) -> list[str]:
    paths: list[str] = []
    for name, child in (node.children or {}).items():
        path = f"{prefix}/{name}"
        paths.append(path)
        if child.is_dir:
            paths.extend(_all_paths(path, child))
    return paths


def _compare(
    prefix: str, want: Entry, have: Entry, uidmap: Sequence[IDMap], gidmap: Sequence[IDMap], ignore: Ignore, out: list[tuple[str, int, str]]
) -> None:
    wanted = want.children or {}
    found = have.children or {}
    for name in sorted(set(wanted) | set(found)):
        path = f"{prefix}/{name}"
        a, b = wanted.get(name), found.get(name)
        if a is not None and (b is None or a.is_dir != b.is_dir):
            out.append((path, 0, f"-{path}"))
            out.extend((p, 0, f"-{p}") for p in _all_paths(path, a))
        if b is not None and (a is None or a.is_dir != b.is_dir):
            out.append((path, 1, f"+{path}"))
            out.extend((p, 1, f"+{p}") for p in _all_paths(path, b))
        if a is None or b is None or a.is_dir != b.is_dir:
            continue
        attributes = _attributes(a, b, uidmap, gidmap, ignore)
        if attributes:
            out.append((path, 2, f"{path}({attributes})"))
        if a.is_dir:
            _compare(path, a, b, uidmap, gidmap, ignore, out)


def compare_trees(
    want: Tree, have: Tree, uidmap: Sequence[IDMap] = (), gidmap: Sequence[IDMap] = (), ignore: Ignore = Ignore()
) -> list[str]:
    """Differences between the expected and the mounted tree, sorted by path (``-`` before ``+``).

    ``have``'s IDs are host IDs, mapped back through ``uidmap``/``gidmap`` before comparing.
    """
    out: list[tuple[str, int, str]] = []
    _compare("", want.root, have.root, uidmap, gidmap, ignore, out)
    out.sort(key=lambda item: (item[0].split("/"), item[1]))
    return [text for _path, _rank, text in out]


__all__ = [
    "Header",
    "HeaderRecorder",
    "Ignore",
    "Tree",
    "compare_trees",
    "expected_tree",
    "mounted_tree",
    "replay",
]
