"""The on-disk layout of an overlay home (storage.md 9.2): short links, ``lower`` files, recovery.

::

    <home>/l/<SHORT>          -> ../<id>/diff       (26 base32 characters)
    <home>/<id>/diff/          the layer's own files (overlay upper dir)
    <home>/<id>/link           SHORT (no newline)
    <home>/<id>/lower          l/<parent SHORT>:<parent's lower>   (child layers only)
    <home>/<id>/empty/         single lowerdir of base layers
    <home>/<id>/work/ merged/  overlay workdir and mount point
"""

from __future__ import annotations

import os

LINK_DIR = "l"
#: Entries of the home that are not layers.
RESERVED = frozenset({LINK_DIR, "staging", "tempdirs", "backingFsBlockDev", ".has-mount-program"})
SHORT_LEN = 26
#: Kernel limit on the number of lowers the driver accepts.
MAX_DEPTH = 500


def new_short_name() -> str:
    """A random 26-character base32 (``A-Z2-7``) short name."""
    import base64
    import secrets

    return base64.b32encode(secrets.token_bytes(SHORT_LEN)).decode("ascii")[:SHORT_LEN]


def read_text(path: str) -> str | None:
    """The content of a small file, ``None`` if it does not exist."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def write_file(path: str, content: str, mode: int) -> None:
    """Write ``content`` atomically-enough for tiny files (create with ``mode`` minus umask)."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, content.encode("utf-8"))
    finally:
        os.close(fd)
    os.rename(tmp, path)


def lower_entries(layer_dir: str) -> list[str]:
    """The ``l/<SHORT>`` entries of a layer's ``lower`` file (nearest first); [] for base layers."""
    text = read_text(os.path.join(layer_dir, "lower"))
    if not text:
        return []
    return [item for item in text.strip().split(":") if item]


def extra_diffs(layer_dir: str) -> list[str]:
    """``diff1``, ``diff2`` ... directories of a layer (UpdateLayerIDMap results), in order."""
    result: list[str] = []
    n = 1
    while os.path.isdir(os.path.join(layer_dir, f"diff{n}")):
        result.append(os.path.join(layer_dir, f"diff{n}"))
        n += 1
    return result


def recreate_links(home: str) -> None:
    """Storage.md 9.2.5: rebuild missing ``l/`` symlinks and ``link`` files (up to 10 passes)."""
    link_dir = os.path.join(home, LINK_DIR)
    os.makedirs(link_dir, mode=0o755, exist_ok=True)
    for _ in range(10):
        changed = False
        for entry in os.scandir(home):
            if entry.name in RESERVED or not entry.is_dir(follow_symlinks=False):
                continue
            short = read_text(os.path.join(entry.path, "link"))
            if not short:
                continue
            short = short.strip()
            target = os.path.join(link_dir, short)
            if not os.path.lexists(target):
                os.symlink(f"../{entry.name}/diff", target)
                changed = True
        for entry in os.scandir(link_dir):
            if not entry.is_symlink():
                continue
            target = os.readlink(entry.path)
            parts = target.split("/")
            if (
                len(parts) != 3
                or parts[0] != ".."
                or parts[2] != "diff"
                or not os.path.isdir(os.path.join(home, parts[1]))
            ):
                os.unlink(entry.path)
                changed = True
                continue
            link_file = os.path.join(home, parts[1], "link")
            if read_text(link_file) != entry.name:
                write_file(link_file, entry.name, 0o644)
                changed = True
        if not changed:
            return


def resolve_lower(homes: list[str], entry: str) -> str | None:
    """The first existing ``<home>/<entry>`` among ``homes`` (the driver home first)."""
    for home in homes:
        candidate = os.path.join(home, entry)
        if os.path.exists(candidate):
            return candidate
    return None
