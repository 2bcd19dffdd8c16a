"""Container commands: create-container, containers, container, get-container-dir,
get-container-run-dir, container-parent-owners (``shared/spec/cli.md`` 8.3)."""

from __future__ import annotations

from typing import Any

import click

from cs_core.cli.base import Invocation, command, idmap_options, json_option, name_option, resolve_idmaps
from cs_core.cli.images import metadata_options, read_metadata
from cs_core.cli.layers import print_parent_owners
from cs_core.errors import NotFoundError, StorageError
from cs_core.records import Container


@command("create-container", aliases=("createcontainer",), min_args=1, max_args=1, usage="parentImageNameOrID", help="Create a new container from an image")
@json_option
@name_option
@click.option("--id", "-i", "id", default="", help="Container ID")
@metadata_options
@click.option("--volatile", is_flag=True, help="Mark as volatile")
@idmap_options
@click.pass_obj
def create_container(inv: Invocation, args: tuple[str, ...], **opts: Any) -> int:
    uids, gids = resolve_idmaps(
        opts["hostuidmap"], opts["hostgidmap"], opts["uidmap"], opts["gidmap"], opts["subuidmap"], opts["subgidmap"]
    )
    container = inv.store.create_container(
        args[0],
        container_id=opts["id"],
        names=tuple(opts["name"]),
        metadata=read_metadata(opts["metadata"], opts["metadata_file"]),
        uidmap=uids,
        gidmap=gids,
        host_uid_mapping=opts["hostuidmap"],
        host_gid_mapping=opts["hostgidmap"],
        volatile=opts["volatile"],
    )
    if opts["json"]:
        inv.print_json(container.to_dict())
    else:
        inv.print(container.id)
        for n in container.names:
            inv.print(f"\t{n}")
    return 0


@command("containers", help="List containers")
@json_option
@click.pass_obj
def containers(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    found = inv.store.containers()
    if json:
        inv.print_json([c.to_dict() for c in found])
        return 0
    for c in found:
        inv.print(c.id)
        for n in c.names:
            inv.print(f"\tname: {n}")
        for key in c.big_data_names:
            inv.print(f"\tdata: {key}")
    return 0


@command("container", min_args=1, max_args=None, usage="containerNameOrID [...]", help="Examine a container")
@json_option
@click.pass_obj
def container(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    store = inv.store
    found: list[Container] = []
    status = 0
    for ref in args:
        try:
            found.append(store.container(ref))
        except NotFoundError:
            status = 1
    if json:
        inv.print_json([c.to_dict() for c in found])
        return status
    for c in found:
        inv.print(f"ID: {c.id}")
        for n in c.names:
            inv.print(f"Name: {n}")
        inv.print(f"Image: {c.image_id}")
        if c.image_id:
            try:
                image_names = store.image(c.image_id).names
            except NotFoundError:
                image_names = []
            for n in image_names:
                inv.print(f"Image name: {n}")
        try:
            inv.print(f"Size: {store.container_size(c.id)}")
        except StorageError as exc:
            inv.print(f"Size unknown: {exc}")
        inv.print(f"Layer: {c.layer_id}")
        for key in c.big_data_names:
            inv.print(f"Data: {key}")
    return status


@command("get-container-dir", aliases=("getcontainerdir",), min_args=1, max_args=1, usage="containerNameOrID", help="Find the container's associated data directory")
@click.pass_obj
def get_container_dir(inv: Invocation, args: tuple[str, ...]) -> int:
    inv.print(inv.store.container_directory(args[0]))
    return 0


@command(
    "get-container-run-dir",
    aliases=("getcontainerrundir",),
    min_args=1,
    max_args=1,
    usage="containerNameOrID",
    help="Find the container's associated runtime directory",
)
@click.pass_obj
def get_container_run_dir(inv: Invocation, args: tuple[str, ...]) -> int:
    inv.print(inv.store.container_run_directory(args[0]))
    return 0


@command(
    "container-parent-owners",
    min_args=1,
    max_args=None,
    usage="containerNameOrID [...]",
    help="Compute the set of unmapped parent UIDs and GIDs of the container",
)
@json_option
@click.pass_obj
def container_parent_owners(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    status = 0
    for ref in args:
        try:
            c = inv.store.container(ref)
        except NotFoundError:
            status = 1
            continue
        try:
            uids, gids = inv.store.layer_parent_owners(c.layer_id)
        except StorageError as exc:
            text = str(exc).removeprefix("LayerParentOwner: ")
            raise StorageError(f"ContainerParentOwner: {text}") from exc
        print_parent_owners(inv, c.id, uids, gids, json, always=True)
    return status


COMMANDS = [create_container, containers, container, get_container_dir, get_container_run_dir, container_parent_owners]
