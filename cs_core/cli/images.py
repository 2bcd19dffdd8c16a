"""Image commands: create-image, images, images-by-digest, image, get-image-dir,
get-image-run-dir (``shared/spec/cli.md`` 8.2)."""

from __future__ import annotations

from typing import Any

import click

from cs_core.cli.base import Invocation, command, json_option, name_option
from cs_core.errors import NotFoundError, StorageError
from cs_core.records import Image


def metadata_options(func: Any) -> Any:
    """``--metadata/-m TEXT`` and ``--metadata-file/-f FILE`` (the file wins)."""
    func = click.option("--metadata-file", "-f", "metadata_file", default="", help="Metadata file")(func)
    return click.option("--metadata", "-m", "metadata", default="", help="Metadata")(func)


def read_metadata(metadata: str, metadata_file: str) -> str:
    """The metadata text asked for: the file's content when given, else ``metadata``."""
    if metadata_file:
        with open(metadata_file, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    return metadata


@command("create-image", aliases=("createimage",), max_args=1, usage="[topLayerNameOrID]", help="Create a new image using layers")
@json_option
@name_option
@click.option("--id", "-i", "id", default="", help="Image ID")
@click.option("--digest", "-d", "digest", default="", help="Image digest")
@metadata_options
@click.pass_obj
def create_image(
    inv: Invocation,
    args: tuple[str, ...],
    json: bool,
    name: tuple[str, ...],
    id: str,
    digest: str,
    metadata: str,
    metadata_file: str,
) -> int:
    image = inv.store.create_image(
        args[0] if args else "",
        image_id=id,
        names=tuple(name),
        metadata=read_metadata(metadata, metadata_file),
        digest=digest,
    )
    if json:
        inv.print_json(image.to_dict())
    else:
        inv.print(image.id)
        for n in image.names:
            inv.print(f"\t{n}")
    return 0


def _print_listing(inv: Invocation, images: list[Image], as_json: bool, quiet: bool, empty: Any) -> None:
    if as_json:
        inv.print_json([image.to_dict() for image in images] if images else empty)
        return
    for image in images:
        inv.print(image.id)
        if quiet:
            continue
        for n in image.names:
            inv.print(f"\tname: {n}")
        for digest in image.digests:
            inv.print(f"\tdigest: {digest}")
        for key in image.big_data_names:
            inv.print(f"\tdata: {key}")


@command("images", help="List images")
@json_option
@click.option("--quiet", "-q", "quiet", is_flag=True, help="Only print the IDs")
@click.pass_obj
def images(inv: Invocation, args: tuple[str, ...], json: bool, quiet: bool) -> int:
    _print_listing(inv, inv.store.images(), json, quiet, None)
    return 0


@command("images-by-digest", min_args=1, max_args=1, usage="DIGEST", help="List images by digest")
@json_option
@click.option("--quiet", "-q", "quiet", is_flag=True, help="Only print the IDs")
@click.pass_obj
def images_by_digest(inv: Invocation, args: tuple[str, ...], json: bool, quiet: bool) -> int:
    _print_listing(inv, inv.store.images_by_digest(args[0]), json, quiet, [])
    return 0


@command("image", min_args=1, max_args=None, usage="imageNameOrID [...]", help="Examine an image")
@json_option
@click.pass_obj
def image(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    store = inv.store
    found: list[Image] = []
    status = 0
    for ref in args:
        try:
            found.append(store.image(ref))
        except NotFoundError:
            status = 1
    if json:
        inv.print_json([item.to_dict() for item in found])
        return status
    for item in found:
        inv.print(f"ID: {item.id}")
        for n in item.names:
            inv.print(f"Name: {n}")
        inv.print(f"Top Layer: {item.top_layer}")
        for mapped in item.mapped_top_layers:
            inv.print(f"Top Layer: {mapped}")
        for digest in item.digests:
            inv.print(f"Digest: {digest}")
        for key in item.big_data_names:
            inv.print(f"Data: {key}")
        try:
            inv.print(f"Size: {store.image_size(item.id)}")
        except StorageError as exc:
            inv.print(f"Size unknown: {exc}")
        if item.read_only:
            inv.print("Read Only: true")
    return status


@command("get-image-dir", aliases=("getimagedir",), min_args=1, max_args=1, usage="imageNameOrID", help="Find the image's associated data directory")
@click.pass_obj
def get_image_dir(inv: Invocation, args: tuple[str, ...]) -> int:
    inv.print(inv.store.image_directory(args[0]))
    return 0


@command(
    "get-image-run-dir",
    aliases=("getimagerundir",),
    min_args=1,
    max_args=1,
    usage="imageNameOrID",
    help="Find the image's associated runtime directory",
)
@click.pass_obj
def get_image_run_dir(inv: Invocation, args: tuple[str, ...]) -> int:
    inv.print(inv.store.image_run_directory(args[0]))
    return 0


COMMANDS = [create_image, images, images_by_digest, image, get_image_dir, get_image_run_dir]
