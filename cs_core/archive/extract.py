"""Extracting tar streams: ``extract_layer`` (UnpackLayer) and ``unpack`` (Unpack), storage.md 10.5.

Both work on a :class:`~cs_core.archive.saferoot.SafeRoot` so the destination behaves like a
chroot (10.8).  Extraction is an event listener of :class:`~cs_core.archive.tarstream.TarParser`;
when the stream is a :class:`~cs_core.archive.ingest.TarStream` the extractor joins its parser,
so the tar is parsed once for tar-split recording and extraction.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

from cs_core.archive.saferoot import SafeRoot, clean_rel, os_error_text
from cs_core.archive.sparse import SparseExpander
from cs_core.archive.tarstream import BaseListener, Member, TarParser
from cs_core.archive.whiteouts import (
    WHITEOUT_LINK_DIR,
    WHITEOUT_META_PREFIX,
    WHITEOUT_OPAQUE_DIR,
    WHITEOUT_PREFIX,
    WhiteoutConverter,
)
from cs_core.errors import ArchiveError, StorageError
from cs_core.idmap import IDMap, root_id, to_host

log = logging.getLogger("cs_core.archive")

Mapping = Sequence[IDMap]
_MAX_NS = (1 << 63) - 1


def in_user_namespace() -> bool:
    """Whether this process runs in a (non-initial) user namespace."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as fh:
            fields = fh.read().split()
    except OSError:
        return False
    return fields[:3] != ["0", "0", "4294967295"]


def _override_type(m: Member) -> str:
    t = m.typeflag
    if t == b"5":
        return "dir"
    if t == b"2":
        return "symlink"
    if t == b"6":
        return "pipe"
    if t == b"3":
        return f"char-{m.info.devmajor}-{m.info.devminor}"
    if t == b"4":
        return f"block-{m.info.devmajor}-{m.info.devminor}"
    return "file"


class _Extractor(BaseListener):
    """Applies members to a destination as they are parsed."""

    def __init__(
        self,
        root: SafeRoot,
        maps: tuple[Mapping, Mapping],
        *,
        layer: bool,
        converter: WhiteoutConverter | None = None,
        ignore_chown_errors: bool = False,
        force_mask: int | None = None,
    ) -> None:
        self.root = root
        self.uidmap, self.gidmap = maps
        self.layer = layer
        self.converter = converter
        self.ignore_chown_errors = ignore_chown_errors
        self.force_mask = force_mask
        self.in_userns = in_user_namespace()
        self.size = 0
        self.unpacked: set[str] = set()
        self.dirs: list[tuple[str, int, int]] = []
        self.ignored_xattrs = False
        self._member: Member | None = None
        self._rel = ""
        self._fd = -1
        self._aufs_dir: str | None = None
        self._aufs: dict[str, tuple[Member, str]] = {}
        self._aufs_fd = -1
        self._sparse: SparseExpander | None = None
        self._umask = os.umask(0o022)
        os.umask(self._umask)
        self._root_set = False

    # ---- helpers ------------------------------------------------------------------------------
    def _fail(self, op: str, rel: str, exc: OSError) -> ArchiveError:
        return ArchiveError(os_error_text(op, rel, exc))

    def _ensure_parent(self, cleaned: str, rel: str) -> None:
        if cleaned == "/":
            return
        parent = posixpath.dirname(rel)
        if not parent:
            return
        try:
            # A parent that resolves to a directory exists: nothing to create.
            self.root.dir_fd(parent)
            return
        except OSError:
            pass
        try:
            fd, base = self.root.split(parent)
            os.stat(base, dir_fd=fd, follow_symlinks=False)
            return
        except FileNotFoundError:
            pass
        except NotADirectoryError as exc:
            raise self._fail("mkdir", parent, exc) from None
        try:
            if self.layer:
                self.root.mkdir_all(parent, 0o755)
            else:
                owner = (root_id(self.uidmap), root_id(self.gidmap))
                self.root.mkdir_all(parent, 0o777 & ~self._umask, owner)
        except OSError as exc:
            raise self._fail("mkdir", parent, exc) from None

    def _remove(self, rel: str) -> None:
        try:
            self.root.remove_all(rel)
        except OSError as exc:
            raise self._fail("unlinkat", rel, exc) from None

    def _opaque(self, dir_rel: str) -> None:
        st = self.root.lstat(dir_rel)
        if st is None:
            raise ArchiveError(f"lstat /{dir_rel}: no such file or directory")
        if not stat.S_ISDIR(st.st_mode):
            return
        self.root.forget_dirs()  # entries below are about to be deleted
        fd = self.root.open_dir(dir_rel)
        try:
            self._opaque_walk(fd, dir_rel)
        finally:
            os.close(fd)

    def _opaque_walk(self, fd: int, dir_rel: str) -> None:
        dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        try:
            names = sorted(os.listdir(dfd))
        finally:
            os.close(dfd)
        for name in names:
            rel = f"{dir_rel}/{name}" if dir_rel else name
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if rel not in self.unpacked:
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(name, dir_fd=fd)
                else:
                    os.unlink(name, dir_fd=fd)
            elif stat.S_ISDIR(st.st_mode):
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                try:
                    self._opaque_walk(sub, rel)
                finally:
                    os.close(sub)

    # ---- listener -----------------------------------------------------------------------------
    def on_member(self, member: Member) -> None:
        self.root.trim()
        self.size += member.size
        self._member = None
        info = member.info
        self._sparse = (
            SparseExpander(int(info.size), member.sparse_map) if member.sparse and info.type in _REGULAR else None
        )
        name = info.name
        cleaned = posixpath.normpath(name) if name else "."
        if cleaned.startswith("//"):
            cleaned = "/" + cleaned.lstrip("/")
        if cleaned.startswith(".."):
            rel = clean_rel(name)  # climbs above the start: clamp at the root
        else:
            # Nothing climbs above the start, so cleaning as seen from "/" gives the same path.
            rel = "" if cleaned == "." else cleaned.lstrip("/")
        self._ensure_parent(cleaned, rel)
        base = rel.rpartition("/")[2]
        if self.layer:
            if cleaned.startswith(WHITEOUT_META_PREFIX):
                if cleaned.startswith(WHITEOUT_LINK_DIR) and info.type in (b"0", tarfile_REGA):
                    self._save_aufs(member)
                    return
                if cleaned != WHITEOUT_OPAQUE_DIR:
                    return
            if base.startswith(WHITEOUT_PREFIX):
                parent = posixpath.dirname(rel)
                if base == WHITEOUT_OPAQUE_DIR:
                    self._opaque(parent)
                else:
                    target = posixpath.join(parent, base[len(WHITEOUT_PREFIX) :])
                    self._remove(target)
                return
        mapped = False
        if info.type in _REGULAR and self._plain_member(base):
            # Fast path for the common case of a new regular file: create it exclusively
            # instead of checking first; an existing entry falls back to the general path.
            if self.uidmap:
                info.uid = to_host(self.uidmap, int(info.uid))
            if self.gidmap:
                info.gid = to_host(self.gidmap, int(info.gid))
            mapped = True
            if self._create_new_file(member, rel):
                return
        st = self.root.lstat(rel)
        is_dir_member = info.type == b"5"
        if st is not None:
            if stat.S_ISDIR(st.st_mode) and not self.layer and cleaned == ".":
                return
            if not (stat.S_ISDIR(st.st_mode) and is_dir_member):
                self._remove(rel)
        if self.layer and info.type == b"1" and clean_rel(info.linkname).startswith(WHITEOUT_LINK_DIR):
            saved = self._aufs.get(posixpath.basename(clean_rel(info.linkname)))
            if saved is not None:
                self._link_from_aufs(member, saved, rel)
                return
        if not mapped:
            info.uid = to_host(self.uidmap, int(info.uid))
            info.gid = to_host(self.gidmap, int(info.gid))
        if self.converter is not None and not self.converter.on_read(self.root, rel, info):
            return
        self._create(member, rel)

    def _plain_member(self, base: str) -> bool:
        """Whether a regular-file member may take the ``O_EXCL`` fast path.

        Without a converter it always may.  With one (Unpack only), only when the converter
        declares ``PLAIN_NAMES_PASS`` (its ``on_read`` returns True without side effects for
        members whose basename does not start with ``.wh.``) and ``base`` is such a name.
        """
        conv = self.converter
        if conv is None:
            return True
        return (
            not self.layer
            and getattr(conv, PLAIN_NAMES_PASS, False) is True
            and not base.startswith(WHITEOUT_PREFIX)
        )

    def _create_new_file(self, member: Member, rel: str) -> bool:
        """Create regular file ``rel`` with ``O_EXCL``; False when something already is there."""
        try:
            pfd, base = self.root.split(rel)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise self._fail("open", rel, exc) from None
        mask = self.force_mask
        fmode = (mask if mask is not None else int(member.info.mode)) & 0o7777
        try:
            self._fd = os.open(base, _NEW_FILE_FLAGS, fmode, dir_fd=pfd)
        except FileExistsError:
            return False
        except OSError as exc:
            raise self._fail("open", rel, exc) from None
        self._rel = rel
        self._member = member
        return True

    def _create(self, member: Member, rel: str) -> None:
        info = member.info
        t = info.type
        mode = int(info.mode) & 0o7777
        mask = self.force_mask
        self._rel = rel
        try:
            pfd, base = self.root.split(rel)
            if t == b"5":
                st = None
                try:
                    st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                except FileNotFoundError:
                    pass
                if st is None or not stat.S_ISDIR(st.st_mode):
                    os.mkdir(base, mask if mask is not None else mode, dir_fd=pfd)
            elif t in (b"0", b"7", tarfile_REGA) or (mask is not None and t in (b"3", b"4", b"6")) or t not in _KNOWN:
                if t not in _KNOWN and mask is None:
                    raise ArchiveError(f"unhandled tar header type {t[0] if t else 0}")
                fmode = (mask if mask is not None else mode) & 0o7777
                self._fd = os.open(base, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, fmode, dir_fd=pfd)
            elif t in (b"3", b"4"):
                if self.in_userns:
                    self._member = None
                    return
                kind = stat.S_IFCHR if t == b"3" else stat.S_IFBLK
                os.mknod(base, mode | kind, os.makedev(info.devmajor, info.devminor), dir_fd=pfd)
            elif t == b"6":
                os.mknod(base, mode | stat.S_IFIFO, dir_fd=pfd)
            elif t == b"1":
                target = clean_rel(info.linkname)
                try:
                    tfd, tbase = self.root.split(target)
                    os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
                except OSError as exc:
                    msg = exc.strerror or str(exc)
                    raise ArchiveError(f"link /{target} /{rel}: {msg[:1].lower()}{msg[1:]}") from None
            elif t == b"2":
                os.symlink(info.linkname, base, dir_fd=pfd)
            elif t == b"g":
                return
        except OSError as exc:
            raise self._fail("open", rel, exc) from None
        self._member = member

    def on_payload(self, data: memoryview) -> None:
        fd = self._fd
        if fd < 0:
            return
        try:
            if self._sparse is not None:
                self._sparse.feed(fd, data)
                return
            while data:
                n = os.write(fd, data)
                data = data[n:]
        except OSError as exc:
            raise self._fail("write", self._rel, exc) from None

    def on_member_end(self) -> None:
        fd = self._fd
        member = self._member
        if member is None:
            if fd >= 0:
                self._fd = -1
                os.close(fd)
            return
        self._member = None
        rel = self._rel
        sparse, self._sparse = self._sparse, None
        if sparse is not None and fd >= 0:
            try:
                sparse.finish(fd)
            except OSError as exc:
                raise self._fail("write", rel, exc) from None
        try:
            if fd >= 0 and member.info.type in _REGULAR:
                # The file is still open: finish it through its descriptor.
                self._finish_fd(member, rel, fd)
            else:
                if fd >= 0:
                    self._fd = -1
                    os.close(fd)
                self._finish(member, rel)
        except OSError as exc:
            raise self._fail("chmod", rel, exc) from None
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if member.info.type == b"5":
            self.dirs.append((rel, *self._times(member)))
        self.unpacked.add(rel)

    def _times(self, member: Member) -> tuple[int, int]:
        mtime = member.mtime_ns
        atime = member.atime_ns if member.atime_ns is not None else mtime
        if atime < mtime:
            atime = mtime
        if mtime < 0 or mtime > _MAX_NS:
            mtime = 0
        if atime < 0 or atime > _MAX_NS:
            atime = 0
        return atime, mtime

    def _finish_fd(self, member: Member, rel: str, fd: int) -> None:
        """:meth:`_finish` for a regular file that is still open as ``fd``."""
        info = member.info
        mask = self.force_mask
        if mask is None:
            try:
                os.chown(fd, int(info.uid), int(info.gid))
            except OSError as exc:
                if not self.ignore_chown_errors:
                    raise ArchiveError(os_error_text("lchown", rel, exc)) from None
                log.warning("Chown error detected. Ignoring due to ignoreChownErrors flag: %s", exc)
        for key, value in member.xattrs.items():
            if key == "security.selinux":
                continue
            try:
                os.setxattr(fd, key, value)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) or (exc.errno == errno.EPERM and self.in_userns):
                    self.ignored_xattrs = True
                    continue
                raise ArchiveError(os_error_text("lsetxattr", rel, exc)) from None
        if mask is not None:
            ostat = f"{int(info.uid)}:{int(info.gid)}:{int(info.mode) & 0o7777:04o}:{_override_type(member)}"
            try:
                os.setxattr(fd, "user.containers.override_stat", ostat.encode())
            except OSError as exc:
                raise ArchiveError(os_error_text("lsetxattr", rel, exc)) from None
        os.chmod(fd, (mask if mask is not None else int(info.mode)) & 0o7777)
        os.utime(fd, ns=self._times(member))

    def _finish(self, member: Member, rel: str) -> None:
        info = member.info
        t = info.type
        mask = self.force_mask
        pfd, base = self.root.split(rel)
        if mask is None:
            try:
                os.chown(base, int(info.uid), int(info.gid), dir_fd=pfd, follow_symlinks=False)
            except OSError as exc:
                if not self.ignore_chown_errors:
                    raise ArchiveError(os_error_text("lchown", rel, exc)) from None
                log.warning("Chown error detected. Ignoring due to ignoreChownErrors flag: %s", exc)
        xpath = f"/proc/self/fd/{pfd}/{base}"
        for key, value in member.xattrs.items():
            if key == "security.selinux":
                continue
            try:
                os.setxattr(xpath, key, value, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) or (exc.errno == errno.EPERM and self.in_userns):
                    self.ignored_xattrs = True
                    continue
                raise ArchiveError(os_error_text("lsetxattr", rel, exc)) from None
        if mask is not None and t != b"2":
            ostat = f"{int(info.uid)}:{int(info.gid)}:{int(info.mode) & 0o7777:04o}:{_override_type(member)}"
            try:
                os.setxattr(xpath, "user.containers.override_stat", ostat.encode(), follow_symlinks=False)
            except OSError as exc:
                raise ArchiveError(os_error_text("lsetxattr", rel, exc)) from None
        target_is_link = False
        if t == b"1":
            tst = self.root.lstat(clean_rel(info.linkname))
            target_is_link = tst is not None and stat.S_ISLNK(tst.st_mode)
        if t != b"2" and not target_is_link:
            perm = (mask if mask is not None else int(info.mode)) & 0o7777
            if mask is not None and t == b"5":
                perm = mask & 0o7777
            os.chmod(base, perm, dir_fd=pfd)
        if t != b"5" and not target_is_link:
            os.utime(base, ns=self._times(member), dir_fd=pfd, follow_symlinks=False)

    def finish_dirs(self) -> None:
        """Re-apply directory times, in order of appearance."""
        for rel, atime, mtime in self.dirs:
            try:
                pfd, base = self.root.split(rel)
                os.utime(base, ns=(atime, mtime), dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._fail("chtimes", rel, exc) from None
        if self.ignored_xattrs:
            log.warning("ignored xattrs in archive: underlying filesystem doesn't support them")

    # ---- AUFS hard-link directory ---------------------------------------------------------------
    def _save_aufs(self, member: Member) -> None:
        if self._aufs_dir is None:
            self._aufs_dir = tempfile.mkdtemp(prefix="storage-aufs-")
        path = os.path.join(self._aufs_dir, str(len(self._aufs)))
        self._aufs[posixpath.basename(member.info.name)] = (member, path)
        self._sparse = None
        self._fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self._member = None

    def _link_from_aufs(self, link: Member, saved: tuple[Member, str], rel: str) -> None:
        src_member, path = saved
        info = src_member.info
        info.uid = to_host(self.uidmap, int(info.uid))
        info.gid = to_host(self.gidmap, int(info.gid))
        self._create(src_member, rel)
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                self.on_payload(memoryview(chunk))
        self.on_member_end()

    def cleanup(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._aufs_dir is not None:
            shutil.rmtree(self._aufs_dir, ignore_errors=True)


#: Opt-in attribute of a whiteout converter: ``on_read`` passes non-``.wh.`` names untouched.
PLAIN_NAMES_PASS = "PLAIN_NAMES_PASS"
tarfile_REGA = b"\x00"
_REGULAR = frozenset((b"0", b"7", b"\x00"))
_NEW_FILE_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_KNOWN = frozenset((b"0", b"\x00", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"g"))


def _run(dest: str, stream: BinaryIO, extractor_args: dict[str, object], use_openat2: bool | None) -> _Extractor:
    with SafeRoot(dest, use_openat2=use_openat2) as root:
        ext = _Extractor(root, **extractor_args)  # type: ignore[arg-type]
        try:
            attach = getattr(stream, "attach_listener", None)
            if attach is not None:
                attach(ext)
                try:
                    stream.drain()  # type: ignore[attr-defined]
                finally:
                    stream.detach_listener(ext)  # type: ignore[attr-defined]
            else:
                TarParser([ext]).pump(stream)
            ext.finish_dirs()
        finally:
            ext.cleanup()
        return ext


def extract_layer(
    dest: str,
    stream: BinaryIO,
    *,
    maps: tuple[Mapping, Mapping] = ((), ()),
    ignore_chown_errors: bool = False,
    force_mask: int | None = None,
    use_openat2: bool | None = None,
) -> int:
    """UnpackLayer: apply a layer tar (whiteouts delete) into ``dest``; return the sum of header sizes.

    ``dest`` is treated as ``/`` for every path resolution.  Errors are ``ArchiveError`` (with
    Go-like texts such as ``open /link/x: no such file or directory``), ``UnexpectedEOF`` /
    ``InvalidTarHeader`` for broken streams, or ``StorageError`` for unmappable IDs.
    """
    try:
        ext = _run(dest, stream, {"maps": maps, "layer": True, "ignore_chown_errors": ignore_chown_errors,
                                  "force_mask": force_mask}, use_openat2)
    except StorageError:
        raise
    return ext.size


def unpack(
    dest: str,
    stream: BinaryIO,
    *,
    maps: tuple[Mapping, Mapping] = ((), ()),
    converter: WhiteoutConverter | None = None,
    ignore_chown_errors: bool = False,
    force_mask: int | None = None,
    use_openat2: bool | None = None,
) -> None:
    """Unpack: extract a tar into ``dest`` (no whiteout processing unless ``converter`` does it).

    An existing root is left alone (the ``./`` member is skipped), missing parents are created
    0777&~umask owned by the mapping's root.
    """
    _run(dest, stream, {"maps": maps, "layer": False, "converter": converter,
                        "ignore_chown_errors": ignore_chown_errors, "force_mask": force_mask}, use_openat2)
