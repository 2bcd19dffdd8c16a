"""Helpers shared by the archive tests: building tars in memory and ingesting them."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable

from cs_core.archive import LayerIngest, extract_layer, reassemble


def make_tar(members: Iterable[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes | None = None, mode: int = 0o644,
          linkname: str = "", uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    return info, ((data or b"") if kind == tarfile.REGTYPE else None)


def apply_and_reassemble(tar_bytes: bytes, dest: str) -> tuple[bytes, object, bytes]:
    """Ingest+extract ``tar_bytes`` into ``dest``; return (reassembled bytes, result, tar-split gz)."""
    ing = LayerIngest(io.BytesIO(tar_bytes))
    extract_layer(dest, ing.tar_stream)
    result = ing.finish()
    ts = io.BytesIO()
    ing.write_tar_split(ts)
    out = io.BytesIO()
    reassemble(io.BytesIO(ts.getvalue()), lambda name: os.path.join(dest, name), out)
    return out.getvalue(), result, ts.getvalue()
