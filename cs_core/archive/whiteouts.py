"""Whiteout conventions (storage.md 10.1) and the converter protocol for driver plugins.

A *whiteout converter* translates between the OCI/AUFS tar representation of deletions
(``dir/.wh.NAME`` members, ``dir/.wh..wh..opq`` opaque markers) and a driver's on-disk
representation (e.g. overlay's 0/0 character devices and ``trusted.overlay.opaque``).

* :meth:`WhiteoutConverter.on_write` is called by :func:`cs_core.archive.write_tree_tar` for
  every entry of the tree, after the stdlib :class:`tarfile.TarInfo` header was built (owner
  already mapped to container IDs, ``pax_headers`` holding ``SCHILY.xattr.*`` records).  It
  returns the header to write instead (``None`` skips the entry) and a list of extra
  header-only members (size 0) written right after it — e.g. ``dir/.wh..wh..opq``.
* :meth:`WhiteoutConverter.on_read` is called by :func:`cs_core.archive.unpack` for each
  member after the destination was prepared (parents created, an existing non-directory
  removed) and owners mapped to host IDs.  ``root`` is a :class:`~cs_core.archive.saferoot.SafeRoot`
  whose helpers (``setxattr``, ``mknod``, ``lchown``, ``parent``, ``lstat``) resolve paths
  inside the destination only.  Return ``False`` when the member was consumed (it is then not
  extracted), ``True`` to extract it normally.  ``rel_path`` is the cleaned path relative to
  the destination root (``""`` for the root).
"""

from __future__ import annotations

import os
import tarfile
from typing import Protocol

from cs_core.archive.saferoot import SafeRoot

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE_DIR = ".wh..wh..opq"
WHITEOUT_LINK_DIR = ".wh..wh.plnk"


class WhiteoutConverter(Protocol):
    """Converts whiteouts between tar (AUFS/OCI) form and a driver's on-disk form.

    Optional class attribute ``PLAIN_NAMES_PASS = True``: the converter promises that
    ``on_read`` returns ``True`` without side effects for every member whose base name does not
    start with ``.wh.``; ``unpack`` then creates such new regular files with one
    ``O_CREAT|O_EXCL`` open instead of checking for an existing entry first.
    """

    def on_write(
        self, rel_path: str, full_path: str, st: os.stat_result, info: tarfile.TarInfo
    ) -> tuple[tarfile.TarInfo | None, list[tarfile.TarInfo]]:
        """Return (replacement header or ``None`` to skip, extra members emitted after it)."""
        ...

    def on_read(self, root: SafeRoot, rel_path: str, info: tarfile.TarInfo) -> bool:
        """Handle a member; ``False`` = consumed (do not extract)."""
        ...


def is_whiteout_name(name: str) -> bool:
    """Whether the basename of ``name`` starts with ``.wh.``."""
    return os.path.basename(name.rstrip("/")).startswith(WHITEOUT_PREFIX)
