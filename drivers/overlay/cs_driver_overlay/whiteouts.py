"""The overlay whiteout converter (storage.md 9.2.1): kernel format on disk <-> AUFS in tars.

On disk a deleted path is a character device 0/0 and an opaque directory carries
``trusted.overlay.opaque=y`` (``user.overlay.opaque`` with ``userxattr``); in tar streams they
are ``dir/.wh.NAME`` members and ``dir/.wh..wh..opq`` markers.

It implements :class:`cs_core.archive.whiteouts.WhiteoutConverter`:

* :meth:`OverlayWhiteoutConverter.on_write` (export) rewrites a whiteout device header into a
  ``.wh.`` member, and adds a ``.wh..wh..opq`` member after an opaque directory when a lower
  layer really has that directory.
* :meth:`OverlayWhiteoutConverter.on_read` (import) turns ``.wh.`` members into devices /
  xattrs and returns ``False`` ("do not write this member").
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import tarfile
from typing import TYPE_CHECKING

from cs_driver_overlay.native import is_opaque, is_whiteout, needs_opaque_marker

if TYPE_CHECKING:
    from cs_core.archive import SafeRoot

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE_DIR = ".wh..wh..opq"
_XATTR_PAX = "SCHILY.xattr."


class OverlayWhiteoutConverter:
    """Converts whiteouts between the kernel overlay format and the OCI/AUFS tar format."""

    #: ``on_read`` passes members whose name does not start with ``.wh.`` untouched, so the
    #: extractor may create new plain files directly (see ``cs_core.archive.WhiteoutConverter``).
    PLAIN_NAMES_PASS = True

    def __init__(self, lowers: list[str], *, userxattr: bool = False) -> None:
        #: Diff directories of the lower layers, topmost first (for opaque-marker decisions).
        self.lowers = list(lowers)
        self.opaque_xattr = "user.overlay.opaque" if userxattr else "trusted.overlay.opaque"

    # ---- export --------------------------------------------------------------------------------
    def on_write(
        self, rel_path: str, full_path: str, st: os.stat_result, info: tarfile.TarInfo
    ) -> tuple[tarfile.TarInfo | None, list[tarfile.TarInfo]]:
        """Rewrite whiteout devices as ``.wh.`` members; add ``.wh..wh..opq`` after opaque dirs."""
        if is_whiteout(st):
            parent, base = posixpath.split(info.name.rstrip("/"))
            info.name = posixpath.join(parent, WHITEOUT_PREFIX + base)
            info.mode = 0
            info.type = tarfile.REGTYPE
            info.size = 0
            info.devmajor = 0
            info.devminor = 0
            return info, []
        if not stat.S_ISDIR(st.st_mode) or not is_opaque(full_path, self.opaque_xattr):
            return info, []
        headers = dict(info.pax_headers)
        for key in (self.opaque_xattr, "trusted.overlay.opaque", "user.overlay.opaque"):
            headers.pop(_XATTR_PAX + key, None)
        info.pax_headers = headers
        rel = rel_path.strip("/")
        if rel.startswith("./"):
            rel = rel[2:]
        if not rel or not needs_opaque_marker(self.lowers, rel):
            return info, []
        marker = tarfile.TarInfo(posixpath.join(info.name.rstrip("/"), WHITEOUT_OPAQUE_DIR))
        marker.type = tarfile.REGTYPE
        marker.mode = info.mode & 0o777
        marker.size = 0
        marker.uid, marker.gid = info.uid, info.gid
        marker.uname, marker.gname = info.uname, info.gname
        marker.mtime = 0
        marker.pax_headers = {key: headers[key] for key in ("atime", "ctime") if key in headers}
        return info, [marker]

    # ---- import --------------------------------------------------------------------------------
    def on_read(self, root: SafeRoot, rel_path: str, info: tarfile.TarInfo) -> bool:
        """Turn ``.wh.`` members into devices / the opaque xattr; ``False`` = member consumed."""
        parent, base = posixpath.split(rel_path.strip("/"))
        if base == WHITEOUT_OPAQUE_DIR:
            root.setxattr(parent, self.opaque_xattr, b"y")
            return False
        if base.startswith(WHITEOUT_PREFIX):
            original = posixpath.join(parent, base[len(WHITEOUT_PREFIX) :])
            try:
                root.mknod(original, stat.S_IFCHR, 0)
            except NotADirectoryError:
                return False
            except OSError as exc:
                if exc.errno == errno.ENOTDIR:
                    return False
                raise OSError(exc.errno, f"failed to mknod('{original}', S_IFCHR, 0): {exc.strerror}") from None
            root.lchown(original, info.uid, info.gid)
            return False
        return True
