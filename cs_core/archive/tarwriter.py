"""Writing tars like Go's ``archive/tar`` + containers/storage ``TarWithOptions`` (storage.md 10.2, 10.3)."""

from __future__ import annotations

import logging
import os
import posixpath
import stat
import tarfile
import time
from collections.abc import Sequence
from typing import BinaryIO

from cs_core.archive.tarstream import BLOCK
from cs_core.archive.whiteouts import WHITEOUT_PREFIX, WhiteoutConverter
from cs_core.errors import StorageError
from cs_core.idmap import IDMap, to_container
from cs_core.records import Change

log = logging.getLogger("cs_core.archive")
Mapping = Sequence[IDMap]
_XATTR = "SCHILY.xattr."
_TYPE_BITS = {b"0": 0o100000, b"1": 0o100000, b"2": 0o120000, b"3": 0o20000, b"4": 0o60000, b"5": 0o40000, b"6": 0o10000}


def _fits_octal(n: int, width: int) -> bool:
    return 0 <= n < 8 ** (width - 1)


def _octal(n: int, width: int) -> bytes:
    if not _fits_octal(n, width):
        n = 0
    return b"%0*o\x00" % (width - 1, n)


def _field(s: bytes, width: int) -> bytes:
    if len(s) > width:
        cut = s[:width]
        if cut.endswith(b"/"):
            cut = cut.rstrip(b"/")
        s = cut
    return s.ljust(width, b"\x00")


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    length = len(name)
    if length <= 100 or not name.isascii():
        return None
    if length > 156:
        length = 156
    elif name[length - 1 : length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    nlen = len(name) - i - 1
    if i <= 0 or nlen > 100 or nlen == 0 or i > 155:
        return None
    return name[:i], name[i + 1 :]


def pax_record(key: bytes, value: bytes) -> bytes:
    """One ``"%d %s=%s\\n"`` record."""
    size = len(key) + len(value) + 3
    size += len(str(size))
    rec = b"%d %s=%s\n" % (size, key, value)
    if len(rec) != size:
        rec = b"%d %s=%s\n" % (len(rec), key, value)
    return rec


def _block(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes, linkname: bytes,
           uname: bytes, gname: bytes, devmajor: int | None, devminor: int | None, prefix: bytes = b"") -> bytes:
    parts = [
        _field(name, 100), _octal(mode, 8), _octal(uid, 8), _octal(gid, 8), _octal(size, 12), _octal(mtime, 12),
        b"        ", typeflag, _field(linkname, 100), b"ustar\x0000", _field(uname, 32), _field(gname, 32),
        _octal(devmajor, 8) if devmajor is not None else bytes(8),
        _octal(devminor, 8) if devminor is not None else bytes(8),
        _field(prefix, 155), bytes(12),
    ]
    blk = bytearray(b"".join(parts))
    chk = sum(blk)
    blk[148:156] = b"%06o\x00 " % chk
    return bytes(blk)


def encode_header(info: tarfile.TarInfo) -> bytes:
    """Encode ``info`` (USTAR when it fits, else a PAX header + main block) like Go's writer."""
    name = os.fsencode(info.name)
    linkname = os.fsencode(info.linkname)
    uname = info.uname.encode("utf-8", "surrogateescape")
    gname = info.gname.encode("utf-8", "surrogateescape")
    size = int(info.size)
    mtime = int(info.mtime)
    uid, gid = int(info.uid), int(info.gid)
    pax: dict[bytes, bytes] = {}
    ustar_ok = True
    for key, value, width in ((b"path", name, 100), (b"linkpath", linkname, 100), (b"uname", uname, 32), (b"gname", gname, 32)):
        if len(value) > width or not value.isascii():
            pax[key] = value
            if not (key == b"path" and _split_ustar(value) is not None):
                ustar_ok = False
    for key, num, width in ((b"uid", uid, 8), (b"gid", gid, 8), (b"size", size, 12), (b"mtime", mtime, 12)):
        if not _fits_octal(num, width):
            pax[key] = str(num).encode()
            ustar_ok = False
    for pkey, pvalue in (info.pax_headers or {}).items():
        if pkey.startswith(_XATTR):
            pax[pkey.encode("utf-8", "surrogateescape")] = pvalue.encode("utf-8", "surrogateescape")
            ustar_ok = False
    dev = info.type in (b"3", b"4")
    devmajor = int(info.devmajor) if dev else 0
    devminor = int(info.devminor) if dev else 0
    mode = int(info.mode)
    if ustar_ok:
        prefix = b""
        if len(name) > 100:
            split = _split_ustar(name)
            assert split is not None
            prefix, name = split
        return _block(name, mode, uid, gid, size, mtime, info.type, linkname, uname, gname, devmajor, devminor, prefix)
    data = b"".join(pax_record(k, pax[k]) for k in sorted(pax))
    head, tail = posixpath.split(name.decode("utf-8", "surrogateescape"))
    pax_name = posixpath.join(head, "PaxHeaders.0", tail).encode("ascii", "replace")[:100].rstrip(b"/")
    xblk = _block(pax_name, 0, 0, 0, len(data), 0, b"x", b"", b"", b"", None, None)
    out = [xblk, data, bytes(-len(data) % BLOCK)]
    out.append(_block(name, mode, uid, gid, size, mtime, info.type, linkname, uname, gname, devmajor, devminor))
    return b"".join(out)


def read_xattrs(path: str, *, exported_only: bool = True) -> dict[str, bytes]:
    """``security.capability``, ``security.ima`` and ``user.*`` (not ``user.overlay.*``) xattrs."""
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for key in sorted(names):
        if key in ("security.capability", "security.ima") or (key.startswith("user.") and not key.startswith("user.overlay.")):
            try:
                out[key] = os.getxattr(path, key, follow_symlinks=False)
            except OSError:
                continue
    return out


class TarAppender:
    """Writes members from a directory tree to ``out`` (hard links tracked across calls)."""

    def __init__(self, out: BinaryIO, root: str, maps: tuple[Mapping, Mapping], converter: WhiteoutConverter | None = None) -> None:
        self.out = out
        self.root = root
        self.uidmap, self.gidmap = maps
        self.converter = converter
        self.seen: dict[tuple[int, int], str] = {}

    def _write(self, info: tarfile.TarInfo, full: str | None) -> None:
        self.out.write(encode_header(info))
        if info.type in (b"0", b"7") and info.size and full is not None:
            self._copy(full, int(info.size))

    def _copy(self, full: str, size: int) -> None:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            out_fd: int | None = None
            try:
                self.out.flush()
                out_fd = self.out.fileno()
            except (AttributeError, OSError, ValueError):
                out_fd = None
            remaining = size
            offset = 0
            if out_fd is not None:
                try:
                    while remaining:
                        n = os.sendfile(out_fd, fd, offset, remaining)
                        if n <= 0:
                            break
                        offset += n
                        remaining -= n
                except OSError:
                    pass
            while remaining:
                chunk = os.pread(fd, min(remaining, 1 << 20), offset)
                if not chunk:
                    break
                self.out.write(chunk)
                offset += len(chunk)
                remaining -= len(chunk)
            if remaining:  # the file shrank: pad like Go would fail; keep the stream consistent
                self.out.write(bytes(remaining))
        finally:
            os.close(fd)
        self.out.write(bytes(-size % BLOCK))

    def add(self, rel: str) -> None:
        """Add ``rel`` (relative to the root, no leading slash) from the tree."""
        full = os.path.join(self.root, rel)
        st = os.lstat(full)
        mode = st.st_mode
        info = tarfile.TarInfo(rel)
        perm = stat.S_IMODE(mode)
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            info.name = rel + "/"
        elif stat.S_ISREG(mode):
            info.type = tarfile.REGTYPE
            info.size = st.st_size
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(full)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor = os.major(st.st_rdev)
            info.devminor = os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            log.debug("archive: skipping socket %s", full)
            return
        info.mode = perm | _TYPE_BITS[info.type]
        info.mtime = int(st.st_mtime_ns // 1_000_000_000)
        info.uname = info.gname = ""
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.seen.get(key)
            if first is not None:
                info.type = tarfile.LNKTYPE
                info.linkname = first
                info.size = 0
            else:
                self.seen[key] = rel
        uid, gid = st.st_uid, st.st_gid
        if not posixpath.basename(rel).startswith(WHITEOUT_PREFIX):
            try:
                uid = to_container(self.uidmap, uid)
                gid = to_container(self.gidmap, gid)
            except StorageError as exc:
                log.warning("Can't add file %s to tar: %s, skipping", full, exc)
                return
        info.uid, info.gid = uid, gid
        info.pax_headers = {
            _XATTR + k: v.decode("utf-8", "surrogateescape") for k, v in read_xattrs(full).items()
        }
        extra: list[tarfile.TarInfo] = []
        if self.converter is not None:
            replaced, extra = self.converter.on_write(rel, full, st, info)
            if replaced is None:
                return
            info = replaced
        self._write(info, full)
        for member in extra:
            member.size = 0
            self._write(member, None)

    def add_whiteout(self, rel: str) -> None:
        """A deletion marker ``dir/.wh.base`` (regular, size 0, mode 0, owner 0:0, mtime now)."""
        head, base = posixpath.split(rel)
        info = tarfile.TarInfo(posixpath.join(head, WHITEOUT_PREFIX + base))
        info.type = tarfile.REGTYPE
        info.mode = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = int(time.time())
        info.pax_headers = {}
        self._write(info, None)

    def close(self) -> None:
        self.out.write(bytes(2 * BLOCK))
        self.out.flush()


def _walk(root: str, rel: str, out: list[str]) -> None:
    path = os.path.join(root, rel) if rel else root
    names = sorted(os.listdir(path), key=os.fsencode)
    for name in names:
        child = f"{rel}/{name}" if rel else name
        out.append(child)
        if stat.S_ISDIR(os.lstat(os.path.join(root, child)).st_mode):
            _walk(root, child, out)


def write_tree_tar(out: BinaryIO, root: str, maps: tuple[Mapping, Mapping] = ((), ()), *, converter: WhiteoutConverter | None = None) -> None:
    """Tar the whole tree under ``root`` (root entry excluded) to ``out`` (storage.md 10.2)."""
    app = TarAppender(out, root, maps, converter)
    entries: list[str] = []
    _walk(root, "", entries)
    for rel in entries:
        try:
            app.add(rel)
        except FileNotFoundError:
            continue
    app.close()


def export_changes(out: BinaryIO, root: str, changes: Sequence[Change], maps: tuple[Mapping, Mapping] = ((), ())) -> None:
    """Write a tar of ``changes`` (storage.md 10.3): deletions as whiteouts, others from the tree."""
    app = TarAppender(out, root, maps)
    for change in sorted(changes, key=lambda c: os.fsencode(c.path)):
        rel = change.path.lstrip("/")
        if change.kind == Change.DELETE:
            app.add_whiteout(rel)
            continue
        try:
            app.add(rel)
        except OSError as exc:
            log.warning("Can't add file %s to tar: %s", rel, exc)
    app.close()
