"""ID-mapped bind mounts (``mount_setattr(MOUNT_ATTR_IDMAP)``), used to shift lowers at mount time.

A layer stored with host IDs is presented with a container's ID mappings by bind-mounting the
directories that hold its lowers through an ID-mapped mount: a file owned by ``c`` on disk
appears owned by the host ID that the mapping gives to ``c``.  The mapping comes from a user
namespace, so a short-lived child process enters a new one, the parent writes its
``uid_map``/``gid_map`` and keeps a descriptor of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cs_core.fsutil import libc
from cs_core.idmap import IDMap
from cs_driver_overlay import syscalls

_CLONE_NEWUSER = 0x10000000


def _map_lines(mapping: Sequence[IDMap]) -> bytes:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mapping).encode()


def user_namespace(uidmap: Sequence[IDMap], gidmap: Sequence[IDMap]) -> int:
    """A descriptor of a new user namespace with these mappings (the caller closes it)."""
    unshare = libc().unshare
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: enter a new user namespace, then wait until the parent is done
        try:
            os.close(ready_r)
            os.close(done_w)
            os.write(ready_w, b"1" if unshare(_CLONE_NEWUSER) == 0 else b"0")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(1, "cannot create a user namespace", "unshare")
        with open(f"/proc/{pid}/uid_map", "wb") as fh:
            fh.write(_map_lines(uidmap))
        with open(f"/proc/{pid}/gid_map", "wb") as fh:
            fh.write(_map_lines(gidmap))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def idmapped_bind(source: str, target: str, userns_fd: int) -> None:
    """Bind-mount ``source`` on ``target`` through an ID-mapped mount using ``userns_fd``."""
    tree = syscalls.open_tree_clone(source)
    try:
        syscalls.set_idmap(tree, userns_fd)
        syscalls.move_mount(tree, target)
    finally:
        os.close(tree)


def detach(target: str) -> None:
    """Lazily unmount an ID-mapped bind mount (an overlay mounted on top keeps using it)."""
    syscalls.umount(target, syscalls.MNT_DETACH)


def probe_idmapped_lower(home: str) -> str | None:
    """Whether an ID-mapped bind mount can be an overlay lower on this kernel and file system.

    Returns ``None`` when it works, else the reason (cached by the driver as
    ``idmapped-lower-dir-true``/``-false``).  Only root can make ID-mapped mounts.
    """
    if os.geteuid() != 0:
        return "ID-mapped mounts need root"
    base = os.path.join(home, "idmapped-check-" + os.urandom(5).hex())
    mounted: list[str] = []
    try:
        for name in ("lower", "mapped", "upper", "work", "merged"):
            os.makedirs(os.path.join(base, name), 0o700)
        with open(os.path.join(base, "lower", "f"), "wb"):
            pass
        probe_map = [IDMap(0, 1, 1)]
        userns = user_namespace(probe_map, probe_map)
        try:
            idmapped_bind(os.path.join(base, "lower"), os.path.join(base, "mapped"), userns)
        finally:
            os.close(userns)
        mounted.append(os.path.join(base, "mapped"))
        if os.stat(os.path.join(base, "mapped", "f")).st_uid != 1:
            return "ID-mapped mount did not map the owner"
        data = f"lowerdir={base}/mapped,upperdir={base}/upper,workdir={base}/work"
        syscalls.mount("overlay", os.path.join(base, "merged"), "overlay", 0, data)
        mounted.append(os.path.join(base, "merged"))
        return None
    except OSError as exc:
        return f"ID-mapped lowers are not supported: {exc.strerror or exc}"
    finally:
        for target in reversed(mounted):
            try:
                detach(target)
            except OSError:
                pass
        import shutil

        shutil.rmtree(base, ignore_errors=True)
