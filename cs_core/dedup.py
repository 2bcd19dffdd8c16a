"""Deduplication of identical files across layer directories (``shared/spec/storage.md`` 5.6).

The store collects the layers reachable from its images (:func:`reachable_layers`), the driver
says which directories hold their files (:meth:`GraphDriver.dedup_dirs`), and
:func:`dedup_dirs` walks them: every regular non-empty file is visited once per inode, grouped
by a hash of the chosen method, and each file whose hash was seen before is shared with the
first earlier file of its group the kernel agrees is identical, through the ``FIDEDUPERANGE``
ioctl (the kernel compares the bytes itself, so a hash collision only costs a failed attempt).
The result is the number of bytes the kernel reports as deduplicated.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from cs_core.errors import NotSupported, StorageError

if TYPE_CHECKING:
    from cs_core.store import Store

#: Accepted ``--hash-method`` values; ``crc`` is the default.
HASH_METHODS = ("crc", "size", "sha256")

#: ``_IOWR(0x94, 54, struct file_dedupe_range)`` from ``<linux/fs.h>``.
FIDEDUPERANGE = 0xC0189436
#: ``struct file_dedupe_range``: src_offset, src_length, dest_count, reserved1, reserved2.
_RANGE = struct.Struct("=QQHHI")
#: ``struct file_dedupe_range_info``: dest_fd, dest_offset, bytes_deduped, status, reserved.
_INFO = struct.Struct("=qQQiI")
#: ``FILE_DEDUPE_RANGE_SAME``: the ranges were identical and are now shared.
_SAME = 0
_CHUNK = 1 << 20
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTTY)


class ReflinksNotSupported(NotSupported):
    """The filesystem cannot share file ranges (ext4, tmpfs ...)."""

    default_message = "reflinks are not supported on this platform"


def validate_hash_method(name: str) -> str:
    """Return ``name`` if it is a known hash method, else raise ``invalid hash method: NAME``."""
    if name not in HASH_METHODS:
        raise StorageError(f"invalid hash method: {name}")
    return name


def _read_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _crc_function() -> Callable[[bytes, int | None], int]:
    """CRC-64/ECMA as Go's ``crc64.MakeTable(crc64.ECMA)`` (CRC-64/XZ); zlib's CRC-32 without fastcrc."""
    try:
        from fastcrc import crc64

        xz = crc64.xz

        def update(data: bytes, crc: int | None) -> int:
            return int(xz(data, initial=crc) if crc is not None else xz(data))

        return update
    except ImportError:  # pragma: no cover - fastcrc is a dependency; only grouping depends on it
        import zlib

        def update32(data: bytes, crc: int | None) -> int:
            return zlib.crc32(data, crc or 0)

        return update32


def file_hash(method: str, path: str, size: int) -> str:
    """The grouping key of a file: its size, or a digest of its contents."""
    if method == "size":
        return str(size)
    if method == "sha256":
        import hashlib

        digest = hashlib.sha256()
        for chunk in _read_chunks(path):
            digest.update(chunk)
        return digest.hexdigest()
    if method == "crc":
        update = _crc_function()
        crc: int | None = None
        for chunk in _read_chunks(path):
            crc = update(chunk, crc)
        return f"{crc or 0:016x}"
    raise StorageError(f"invalid hash method: {method}")


def dedupe_range(src_fd: int, dst_fd: int, offset: int, length: int) -> tuple[int, int]:
    """One ``FIDEDUPERANGE`` call: share ``length`` bytes at ``offset`` of ``src_fd`` into ``dst_fd``.

    Returns ``(status, bytes_deduped)`` where status is 0 (identical, now shared), 1 (the ranges
    differ) or a negative errno.  Raises :class:`ReflinksNotSupported` where the filesystem
    cannot do it, ``OSError`` for other failures of the call itself.
    """
    import fcntl

    buf = bytearray(_RANGE.pack(offset, length, 1, 0, 0) + _INFO.pack(dst_fd, offset, 0, 0, 0))
    try:
        fcntl.ioctl(src_fd, FIDEDUPERANGE, buf, True)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            raise ReflinksNotSupported() from None
        raise
    _, _, deduped, status, _ = _INFO.unpack_from(buf, _RANGE.size)
    if status in (-errno.EOPNOTSUPP, -errno.ENOTSUP):
        raise ReflinksNotSupported()
    return status, deduped


def dedupe_file(src: str, dst: str, size: int) -> int:
    """Share the contents of ``dst`` with the identical ``src``; the bytes deduplicated (0 if they differ)."""
    try:
        src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise StorageError(f"failed to open source file: open {src}: {exc.strerror}") from None
    try:
        try:
            dst_fd = os.open(dst, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(f"failed to open destination file: open {dst}: {exc.strerror}") from None
        try:
            total = 0
            while total < size:
                try:
                    status, deduped = dedupe_range(src_fd, dst_fd, total, size - total)
                except ReflinksNotSupported:
                    raise
                except OSError as exc:
                    raise StorageError(f'failed to clone file "{src}": {exc.strerror}') from None
                if status != _SAME or deduped == 0:
                    break
                total += deduped
            return total
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _regular_files(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files below ``root`` with their lstat: each directory's files by name, then its subdirectories."""
    pending: list[str] = [root]
    while pending:
        directory = pending.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"open {directory}: {exc.strerror}") from None
        subdirs: list[str] = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                yield entry.path, entry.stat(follow_symlinks=False)
        pending.extend(reversed(subdirs))


def dedup_dirs(dirs: Iterable[str], hash_method: str) -> int:
    """Deduplicate identical files across ``dirs``; return the bytes deduplicated.

    Raises :class:`ReflinksNotSupported` as soon as the filesystem refuses the ioctl.
    """
    validate_hash_method(hash_method)
    visited: set[tuple[int, int]] = set()
    groups: dict[str, list[str]] = {}
    total = 0
    for root in dirs:
        for path, st in _regular_files(root):
            if st.st_size == 0:
                continue
            inode = (st.st_dev, st.st_ino)
            if inode in visited:
                continue
            visited.add(inode)
            try:
                key = file_hash(hash_method, path, st.st_size)
            except OSError as exc:
                raise StorageError(f"open {path}: {exc.strerror}") from None
            earlier = groups.setdefault(key, [])
            for src in earlier:
                deduped = dedupe_file(src, path, st.st_size)
                if deduped:
                    total += deduped
                    break
            else:
                earlier.append(path)
    return total


def image_top_layers(store: Store) -> list[str]:
    """The top and mapped top layers of every image of every image store of ``store``."""
    tops: list[str] = []
    for image in store.images():
        if image.top_layer:
            tops.append(image.top_layer)
        tops.extend(image.mapped_top_layers)
    return tops


def reachable_layers(tops: Iterable[str], parent_of: Callable[[str], str | None]) -> list[str]:
    """``tops`` and their ancestors, each once; ``parent_of`` gives a layer's parent, ``None`` if unknown.

    A layer ``parent_of`` does not know (e.g. one in a read-only store) ends that chain.
    """
    found: dict[str, None] = {}
    for top in tops:
        current: str | None = top
        while current and current not in found:
            parent = parent_of(current)
            if parent is None:
                break
            found[current] = None
            current = parent
    return list(found)


def dedup_store(store: Store, hash_method: str) -> int:
    """Deduplicate the read-write layers of ``store`` reachable from its images; 0 without reflinks."""
    validate_hash_method(hash_method)
    tops = image_top_layers(store)
    with store.layer_store.writing():
        records = store.layer_store.by_id_map

        def parent_of(layer_id: str) -> str | None:
            layer = records.get(layer_id)
            return None if layer is None else layer.parent

        layers = reachable_layers(tops, parent_of)
        try:
            return dedup_dirs(store.driver.dedup_dirs(layers), hash_method)
        except ReflinksNotSupported:
            return 0
