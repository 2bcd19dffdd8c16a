"""Layer commands: create-layer, create-storage-layer, import-layer, layers, storage-layers,
layer, layer-parent-owners (``shared/spec/cli.md`` 8.1)."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import click

from cs_core.cli.base import (
    Invocation,
    command,
    diff_input,
    file_option,
    idmap_options,
    json_option,
    name_option,
    resolve_idmaps,
)
from cs_core.cli.parser import go_list
from cs_core.errors import NotFoundError
from cs_core.records import Layer


def _layer_common(func: Any) -> Any:
    func = click.option("--readonly", "-r", "readonly", is_flag=True, help="Mark as read-only")(func)
    func = click.option("--label", "-l", "label", default="", help="Mount label")(func)
    func = click.option("--id", "-i", "id", default="", help="Layer ID")(func)
    return idmap_options(json_option(func))


def _print_created(inv: Invocation, layer: Layer, as_json: bool) -> None:
    if as_json:
        inv.print_json(layer.to_dict())
        return
    inv.print(layer.id)
    for name in layer.names:
        inv.print(f"\t{name}")


def _create(inv: Invocation, args: tuple[str, ...], opts: dict[str, Any], diff: BinaryIO | None) -> int:
    uids, gids = resolve_idmaps(
        opts["hostuidmap"], opts["hostgidmap"], opts["uidmap"], opts["gidmap"], opts["subuidmap"], opts["subgidmap"]
    )
    layer = inv.store.create_layer(
        args[0] if args else "",
        layer_id=opts["id"],
        names=tuple(opts.get("name") or ()),
        mount_label=opts["label"],
        writeable=not opts["readonly"],
        uidmap=uids,
        gidmap=gids,
        host_uid_mapping=opts["hostuidmap"],
        host_gid_mapping=opts["hostgidmap"],
        diff=diff,
    )
    _print_created(inv, layer, opts["json"])
    return 0


@command("create-layer", aliases=("createlayer",), max_args=1, usage="[parentLayerNameOrID]", help="Create a new layer")
@_layer_common
@name_option
@click.pass_obj
def create_layer(inv: Invocation, args: tuple[str, ...], **opts: Any) -> int:
    return _create(inv, args, opts, None)


@command("import-layer", aliases=("importlayer",), max_args=1, usage="[parentLayerNameOrID]", help="Import a new layer")
@_layer_common
@name_option
@file_option("Read layer diff from the specified file")
@click.pass_obj
def import_layer(inv: Invocation, args: tuple[str, ...], **opts: Any) -> int:
    with diff_input(opts["file"], "importing layer") as stream:
        return _create(inv, args, opts, stream)


@command(
    "create-storage-layer",
    max_args=1,
    usage="[parentLayerNameOrID]",
    help="Create a new layer only in the storage driver",
)
@_layer_common
@click.pass_obj
def create_storage_layer(inv: Invocation, args: tuple[str, ...], **opts: Any) -> int:
    uidmap, gidmap = resolve_idmaps(
        opts["hostuidmap"], opts["hostgidmap"], opts["uidmap"], opts["gidmap"], opts["subuidmap"], opts["subgidmap"]
    )
    layer_id = inv.store.create_storage_layer(
        args[0] if args else "",
        opts["id"],
        mount_label=opts["label"],
        writeable=not opts["readonly"],
        uidmap=uidmap,
        gidmap=gidmap,
    )
    if opts["json"]:
        inv.print_json(layer_id)
    else:
        inv.print(layer_id)
    return 0


@command("layers", help="List layers")
@json_option
@click.option("--tree", "-t", "tree", is_flag=True, help="Use a tree")
@click.option("--quick", "-q", "quick", is_flag=True, help="Only print the IDs")
@click.pass_obj
def layers(inv: Invocation, args: tuple[str, ...], json: bool, tree: bool, quick: bool) -> int:
    store = inv.store
    all_layers = store.layers()
    if json:
        inv.print_json([layer.to_dict() for layer in all_layers] if all_layers else None)
        return 0
    if quick:
        for layer in all_layers:
            inv.print(layer.id)
        return 0
    images = store.images()
    containers = store.containers()
    if tree:
        sys.stdout.write(render_tree(all_layers, images, containers))
        return 0
    for layer in all_layers:
        inv.print(layer.id)
        for name in layer.names:
            inv.print(f"\tname: {name}")
        for image in images:
            if image.top_layer == layer.id or layer.id in image.mapped_top_layers:
                inv.print(f"\timage: {image.id}")
                for name in image.names:
                    inv.print(f"\t\tname: {name}")
        for container in containers:
            if container.layer_id == layer.id:
                inv.print(f"\tcontainer: {container.id}")
                for name in container.names:
                    inv.print(f"\t\tname: {name}")
    return 0


def render_tree(all_layers: list[Any], images: list[Any], containers: list[Any]) -> str:
    """The ``layers -t`` rendering (``shared/spec/cli.md`` 8.1)."""
    ids = {layer.id for layer in all_layers}
    notes: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for layer in all_layers:
        lines = [f"name: {n}" for n in layer.names]
        if layer.mount_count > 0 and layer.mount_point:
            lines.append(f"mount: {layer.mount_point}")
        for image in images:
            if image.top_layer == layer.id or layer.id in image.mapped_top_layers:
                lines.append(f"image: {image.id}")
                lines += [f"image name: {n}" for n in image.names]
        for container in containers:
            if container.layer_id == layer.id:
                lines.append(f"container: {container.id}")
                lines += [f"container name: {n}" for n in container.names]
        notes[layer.id] = lines
        children.setdefault(layer.parent or "(base)", []).append(layer.id)
    out: list[str] = []
    placed: set[str] = set()

    def walk(node: str, prefix: str) -> None:
        kids = children.get(node, [])
        for index, kid in enumerate(kids):
            last = index == len(kids) - 1
            out.append(f"{prefix}{'└─' if last else '├─'}{kid}\n")
            placed.add(kid)
            note_prefix = prefix + ("  " if last else "│ ")
            for note in notes[kid]:
                out.append(f"{note_prefix}{note}\n")
            walk(kid, note_prefix)

    roots = ["(base)"] if "(base)" in children else []
    done_roots: set[str] = set()
    while True:
        if not roots:
            pending = [p for p in children if p not in ids and p not in done_roots]
            if not pending:
                break
            roots = [min(pending, key=lambda p: len(children[p]))]
        root = roots.pop(0)
        done_roots.add(root)
        out.append(f"{root}\n")
        before = len(placed)
        walk(root, "")
        if len(placed) == before and not roots:
            pending = [p for p in children if p not in ids and p not in done_roots]
            if not pending:
                break
    return "".join(out)


@command("storage-layers", help="List layers in the storage driver")
@json_option
@click.pass_obj
def storage_layers(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    ids = inv.store.storage_layers()
    if json:
        inv.print_json(list(ids))
    else:
        for layer_id in ids:
            inv.print(layer_id)
    return 0


def _map_lines(label: str, mapping: Any) -> list[str]:
    return [f"{label} mapping: (container={m.container_id}, host={m.host_id}, size={m.size})" for m in mapping]


@command("layer", min_args=1, max_args=None, usage="layerNameOrID [...]", help="Examine a layer")
@json_option
@click.pass_obj
def layer(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    found: list[Layer] = []
    status = 0
    for ref in args:
        try:
            found.append(inv.store.layer(ref))
        except NotFoundError:
            status = 1
    if json:
        inv.print_json([item.to_dict() for item in found])
        return status
    for item in found:
        inv.print(f"ID: {item.id}")
        for line in _map_lines("UID", item.uidmap) + _map_lines("GID", item.gidmap):
            inv.print(line)
        if item.parent:
            inv.print(f"Parent: {item.parent}")
        for name in item.names:
            inv.print(f"Name: {name}")
        if item.read_only:
            inv.print("Read Only: true")
    return status


def print_parent_owners(inv: Invocation, item_id: str, uids: list[int], gids: list[int], as_json: bool, always: bool) -> None:
    """One result of ``layer-parent-owners``/``container-parent-owners``."""
    if as_json:
        inv.print_json({"ID": item_id, "UIDs": list(uids) or None, "GIDs": list(gids) or None})
        return
    inv.print(f"ID: {item_id}")
    if uids or always:
        inv.print(f"UIDs: {go_list(uids)}")
    if gids or always:
        inv.print(f"GIDs: {go_list(gids)}")


@command(
    "layer-parent-owners",
    min_args=1,
    max_args=None,
    usage="layerNameOrID [...]",
    help="Compute the set of unmapped parent UIDs and GIDs of the layer",
)
@json_option
@click.pass_obj
def layer_parent_owners(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    status = 0
    for ref in args:
        try:
            item = inv.store.layer(ref)
        except NotFoundError:
            status = 1
            continue
        uids, gids = inv.store.layer_parent_owners(item.id)
        print_parent_owners(inv, item.id, uids, gids, json, always=False)
    return status


COMMANDS = [
    create_layer,
    import_layer,
    create_storage_layer,
    layers,
    storage_layers,
    layer,
    layer_parent_owners,
]
