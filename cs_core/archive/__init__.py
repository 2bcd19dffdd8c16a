"""The tar engine: safe extraction, whiteouts, diffs, changes, tar-split, compression.

This module is the public face of the engine; the implementation lives in the submodules.
Maps are passed as ``(uidmap, gidmap)`` pairs of :class:`cs_core.idmap.IDMap` tuples; the empty
mapping is the identity.

CONTRACT (used by cs_core.driver, cs_core.layers and driver plugins):

* ``detect_compression(head: bytes) -> int`` — COMPRESSION_* code from the leading bytes.
* ``LayerIngest(raw: BinaryIO)`` — wraps the raw (possibly compressed) input of
  applydiff/import-layer.  ``.tar_stream`` is the uncompressed stream drivers read; reading it
  through records tar-split entries, digests and sizes of both sides, and the UIDs/GIDs of the
  headers.  After the driver consumed the stream, ``.finish() -> IngestResult`` drains any
  remaining bytes (trailer) and returns digests/sizes/compression/uidset/gidset;
  ``.write_tar_split(fileobj)`` writes the gzip'd JSON-lines tar-split.
* ``extract_layer(dest, stream, *, maps, ignore_chown_errors=False, force_mask=None) -> int``
  — UnpackLayer semantics (storage.md 10.5) with chroot-equivalent path resolution; returns the
  sum of header sizes.  GNU sparse members of PAX archives (formats 0.0, 0.1, 1.0) are written
  expanded at their real name with their holes kept (:mod:`cs_core.archive.sparse`); their raw
  payload goes into the tar-split as raw segments, so ``reassemble`` reproduces it exactly.
* ``unpack(dest, stream, *, maps, converter=None, ignore_chown_errors=False,
  force_mask=None) -> None`` — Unpack semantics (overlay native apply).
* ``write_tree_tar(out, root, maps, *, converter=None) -> None`` — TarWithOptions.
* ``changes_dirs(new_dir, new_maps, old_dir | None, old_maps) -> list[Change]``.
* ``changes_size(root, changes) -> int``.
* ``export_changes(out, root, changes, maps) -> None``.
* ``reassemble(tar_split: BinaryIO, getter: Callable[[str], str], out: BinaryIO) -> int`` —
  reproduce the original tar from tar-split data, reading payloads via the getter.
* ``open_compressed_writer(out, compression) -> BinaryIO`` (close() flushes, not closing ``out``).
* ``chown_by_maps(root, to_container, to_host) -> None`` — storage.md 11.2.
* ``copy_tree(src, dst) -> None`` — vfs DirCopy (hard links, xattrs, devices, times).
* ``disk_usage(root) -> (bytes, inodes)``.

Additions (also public):

* ``IngestResult`` — dataclass returned by ``LayerIngest.finish()``: ``compressed_digest``
  (``sha256:…``), ``compressed_size``, ``uncompressed_digest``, ``uncompressed_size``,
  ``compression``, ``uidset``, ``gidset`` (sorted, whiteout members excluded).
  ``LayerIngest`` raises ``ArchiveError("duplicates of file paths not supported")`` while the
  stream is read; junk raises ``UnexpectedEOF`` / ``InvalidTarHeader``.
* ``open_decompressed(raw, compression) -> BinaryIO``; ``COMPRESSION_*`` codes 0..4.
* ``WhiteoutConverter`` (see :mod:`cs_core.archive.whiteouts`) — ``on_write(rel, full, st,
  TarInfo) -> (TarInfo | None, [extra TarInfo])`` for ``write_tree_tar``; ``on_read(root:
  SafeRoot, rel, TarInfo) -> bool`` (False = consumed) for ``unpack``.
* ``SafeRoot(path)`` — chroot-equivalent ``*at`` operations inside a directory
  (``parent``/``lstat``/``mkdir_all``/``remove_all``/``setxattr``/``mknod``/``lchown``).
* ``extract_layer``/``unpack`` accept ``use_openat2: bool | None`` (None = auto) to force the
  component-walk resolver (tests).  When ``stream`` is ``LayerIngest.tar_stream`` the
  extractor joins the ingest parser, so the tar is parsed once.
* :func:`cs_core.archive.progress.with_progress` — optional rich progress bar on a TTY stderr.

Extraction errors are ``ArchiveError`` with Go-like texts (``open /link/x: no such file or
directory``, ``link /a /b: …``, ``unhandled tar header type N``); unmappable IDs raise
``StorageError`` (``container ID N cannot be mapped to a host ID``).  Chown errors ignored
with ``ignore_chown_errors`` and ignored xattrs are logged on logger ``cs_core.archive``.
"""

from __future__ import annotations

from cs_core.archive.changes import changes_dirs, changes_size
from cs_core.archive.compression import (
    COMPRESSION_BZIP2,
    COMPRESSION_GZIP,
    COMPRESSION_NONE,
    COMPRESSION_XZ,
    COMPRESSION_ZSTD,
    detect_compression,
    open_compressed_writer,
    open_decompressed,
)
from cs_core.archive.extract import extract_layer, unpack
from cs_core.archive.fsops import chown_by_maps, copy_tree, disk_usage
from cs_core.archive.ingest import IngestResult, LayerIngest
from cs_core.archive.saferoot import SafeRoot
from cs_core.archive.tarsplit import reassemble
from cs_core.archive.tarwriter import export_changes, write_tree_tar
from cs_core.archive.whiteouts import WhiteoutConverter

__all__ = [
    "COMPRESSION_BZIP2",
    "COMPRESSION_GZIP",
    "COMPRESSION_NONE",
    "COMPRESSION_XZ",
    "COMPRESSION_ZSTD",
    "IngestResult",
    "LayerIngest",
    "SafeRoot",
    "WhiteoutConverter",
    "changes_dirs",
    "changes_size",
    "chown_by_maps",
    "copy_tree",
    "detect_compression",
    "disk_usage",
    "export_changes",
    "extract_layer",
    "open_compressed_writer",
    "open_decompressed",
    "reassemble",
    "unpack",
    "write_tree_tar",
]
