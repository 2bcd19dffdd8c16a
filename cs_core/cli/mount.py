"""Mount commands: mount, unmount, mounted, copy (``shared/spec/cli.md`` 8.1)."""

from __future__ import annotations

import os
import stat
from typing import Any

import click

from cs_core.cli.base import Invocation, command, json_option
from cs_core.errors import StorageError
from cs_core.idmap import IDMap, to_container, to_host


@command("mount", min_args=1, max_args=None, usage="LayerOrContainerNameOrID [...]", help="Mount a layer or container")
@json_option
@click.option("--opt", "-o", "opt", default="", help="Ignored (mount options)")
@click.option("--label", "-l", "label", default="", help="Mount label")
@click.option("--read-only", "--ro", "-r", "read_only", is_flag=True, help="Mount an image read-only")
@click.pass_obj
def mount(inv: Invocation, args: tuple[str, ...], json: bool, opt: str, label: str, read_only: bool) -> int:
    results: list[dict[str, str]] = []
    status = 0
    for ref in args:
        try:
            if read_only:
                path = inv.store.mount_image(ref, mount_label=label)
            else:
                path = inv.store.mount(ref, mount_label=label)
            results.append({"id": ref, "mountpoint": path, "error": ""})
            if not json:
                inv.print(path)
        except StorageError as exc:
            status = 1
            results.append({"id": ref, "mountpoint": "", "error": str(exc)})
            if not json:
                inv.eprint(f"{exc} while mounting {ref}")
                inv.print("")
    if json:
        inv.print_json(results)
    return status


def _unmount_one(inv: Invocation, ref: str, force: bool) -> bool:
    """Unmount ``ref`` as a layer/container, else as an image; return whether it is still mounted."""
    store = inv.store
    try:
        return bool(store.unmount(ref, force=force))
    except StorageError as first:
        try:
            return bool(store.unmount_image(ref, force=force))
        except StorageError:
            raise first from None


@command("unmount", aliases=("umount",), min_args=1, max_args=None, usage="LayerOrContainerNameOrID [...]", help="Unmount an image, layer or container")
@json_option
@click.option("--force", "-f", "force", is_flag=True, help="Force the umount")
@click.pass_obj
def unmount(inv: Invocation, args: tuple[str, ...], json: bool, force: bool) -> int:
    results: list[dict[str, str]] = []
    status = 0
    for ref in args:
        try:
            still = _unmount_one(inv, ref, force)
            results.append({"id": ref, "error": ""})
            if not still:
                inv.print(f"{ref} mountpoint unmounted")
        except StorageError as exc:
            status = 1
            results.append({"id": ref, "error": str(exc)})
    _report(inv, results, json, "while unmounting")
    return status


def _report(inv: Invocation, results: list[dict[str, str]], json: bool, what: str, suffix: str = "") -> None:
    """After the loop, as Go does: the JSON list, or each failure on stderr."""
    if json:
        inv.print_json(results)
        return
    for result in results:
        if result["error"]:
            inv.eprint(f"{result['error']} {what} {result['id']}{suffix}")


@command("mounted", min_args=1, max_args=None, usage="LayerOrContainerNameOrID [...]", help="Check if a file system is mounted")
@json_option
@click.pass_obj
def mounted(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    results: list[dict[str, str]] = []
    status = 0
    for ref in args:
        try:
            count = inv.store.mounted(ref)
            results.append({"id": ref, "error": ""})
            if count > 0:
                inv.print(f"{ref} mounted")
        except StorageError as exc:
            status = 1
            results.append({"id": ref, "error": str(exc)})
    _report(inv, results, json, "checking if", " is mounted")
    return status


# -- copy ---------------------------------------------------------------------------------------


def parse_chown(text: str) -> tuple[int, int]:
    """``UID[:GID]`` (``UID`` alone means ``UID:UID``)."""
    uid_text, _, gid_text = text.partition(":")
    if not gid_text:
        gid_text = uid_text
    try:
        uid = int(uid_text, 10)
        if not 0 <= uid <= 0xFFFFFFFF:
            raise ValueError
    except ValueError:
        raise StorageError(f'bad UID: strconv.ParseUint: parsing "{uid_text}": invalid syntax') from None
    try:
        gid = int(gid_text, 10)
        if not 0 <= gid <= 0xFFFFFFFF:
            raise ValueError
    except ValueError:
        raise StorageError(f'bad GID: strconv.ParseUint: parsing "{gid_text}": invalid syntax') from None
    return uid, gid


class _Side:
    """A copy endpoint: a host path, or a path inside a (mounted) layer with its ID maps."""

    def __init__(self, path: str, uidmap: tuple[IDMap, ...] = (), gidmap: tuple[IDMap, ...] = ()) -> None:
        self.path = path
        self.uidmap = uidmap
        self.gidmap = gidmap


def _owner(src: _Side, dst: _Side, st: os.stat_result, chown: tuple[int, int] | None) -> tuple[int, int]:
    if chown is not None:
        cuid, cgid = chown
    else:
        cuid, cgid = to_container(src.uidmap, st.st_uid), to_container(src.gidmap, st.st_gid)
    return to_host(dst.uidmap, cuid), to_host(dst.gidmap, cgid)


def _copy_entry(src_path: str, dst_path: str, src: _Side, dst: _Side, chown: tuple[int, int] | None, links: dict[tuple[int, int], str]) -> None:
    st = os.lstat(src_path)
    key = (st.st_dev, st.st_ino)
    if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and key in links:
        if os.path.lexists(dst_path):
            os.unlink(dst_path)
        os.link(links[key], dst_path)
        return
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        if not os.path.isdir(dst_path):
            os.mkdir(dst_path, 0o700)
        for name in sorted(os.listdir(src_path)):
            _copy_entry(os.path.join(src_path, name), os.path.join(dst_path, name), src, dst, chown, links)
    else:
        if os.path.lexists(dst_path):
            os.unlink(dst_path)
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(src_path), dst_path)
        elif stat.S_ISREG(mode):
            with open(src_path, "rb") as fin, open(dst_path, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
        else:
            os.mknod(dst_path, mode, st.st_rdev)
        if st.st_nlink > 1:
            links[key] = dst_path
    uid, gid = _owner(src, dst, st, chown)
    os.lchown(dst_path, uid, gid)
    if not stat.S_ISLNK(mode):
        os.chmod(dst_path, stat.S_IMODE(mode))
    os.utime(dst_path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy(src: _Side, dst: _Side, chown: tuple[int, int] | None) -> None:
    links: dict[tuple[int, int], str] = {}
    st = os.lstat(src.path)
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(dst.path, exist_ok=True)
        for name in sorted(os.listdir(src.path)):
            _copy_entry(os.path.join(src.path, name), os.path.join(dst.path, name), src, dst, chown, links)
        return
    parent = os.path.dirname(dst.path.rstrip("/")) or "/"
    os.makedirs(parent, exist_ok=True)
    _copy_entry(src.path, dst.path.rstrip("/") or dst.path, src, dst, chown, links)


@command("copy", min_args=2, max_args=None, usage="[layerNameOrID:]/path [...] [layerNameOrID:]/path", help="Copy files or directories into a layer, possibly from another layer")
@json_option
@click.option("--chown", "-o", "chown", default="", help="Set owner on new files (UID[:GID])")
@click.pass_obj
def copy(inv: Invocation, args: tuple[str, ...], json: bool, chown: str) -> int:
    store = inv.store
    owner = parse_chown(chown) if chown else None
    mounted_layers: list[str] = []
    sides: dict[str, tuple[str, tuple[IDMap, ...], tuple[IDMap, ...]]] = {}

    def resolve(spec: str) -> _Side:
        layer_ref, sep, path = spec.partition(":")
        if not sep:
            return _Side(spec)
        if layer_ref not in sides:
            try:
                layer = store.layer(layer_ref)
                root = store.mount(layer.id)
            except StorageError as exc:
                raise StorageError(f'error finding layer "{layer_ref}": {exc}') from exc
            mounted_layers.append(layer.id)
            sides[layer_ref] = (root, tuple(layer.uidmap), tuple(layer.gidmap))
        root, uidmap, gidmap = sides[layer_ref]
        return _Side(os.path.join(root, path.lstrip("/")), uidmap, gidmap)

    try:
        target = resolve(args[-1])
        for spec in args[:-1]:
            source = resolve(spec)
            try:
                _copy(source, target, owner)
            except (OSError, StorageError) as exc:
                text = f"{exc.strerror}".lower() if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise StorageError(f'error copying "{source.path}" to "{target.path}": {text}') from exc
    finally:
        for layer_id in mounted_layers:
            try:
                store.unmount(layer_id)
            except StorageError as exc:
                inv.eprint(str(exc))
    return 0


COMMANDS: list[Any] = [mount, unmount, mounted, copy]
