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
  sum of header sizes.
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
"""

from __future__ import annotations
