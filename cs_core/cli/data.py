"""Big-data commands of layers, images and containers: list-*-data, get-*-data,
get-*-data-size, get-*-data-digest, set-*-data (``shared/spec/cli.md`` 8.1-8.3)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

import click

from cs_core.cli.base import Invocation, command, file_option, json_option, read_input


def _write_item(item: Any, path: str) -> None:
    """Copy a big-data item (bytes or a binary stream) to ``path`` or stdout."""
    out: BinaryIO
    if path:
        out = open(path, "wb")
    else:
        sys.stdout.flush()
        out = sys.stdout.buffer
    try:
        if isinstance(item, (bytes, bytearray, memoryview)):
            out.write(item)
        else:
            try:
                shutil.copyfileobj(item, out)
            finally:
                close = getattr(item, "close", None)
                if close is not None:
                    close()
    finally:
        if path:
            out.close()
        else:
            out.flush()


def _make(kind: str, article: str, arg_name: str) -> list[click.Command]:
    """The data commands of one kind (``layer``, ``image`` or ``container``)."""
    compact = kind.replace("-", "")

    def method(inv: Invocation, name: str) -> Callable[..., Any]:
        return getattr(inv.store, name.format(kind=kind)) # type: ignore[no-any-return]

    @command(
        f"list-{kind}-data",
        aliases=(f"list{compact}data",),
        min_args=1,
        max_args=1,
        usage=arg_name,
        help=f"List data items that are attached to {article} {kind}",
    )
    @json_option
    @click.pass_obj
    def list_data(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
        names = list(method(inv, "{kind}_big_data_names")(args[0]))
        if json:
            inv.print_json(names or None)
        else:
            for name in names:
                inv.print(name)
        return 0

    @command(
        f"get-{kind}-data",
        aliases=(f"get{compact}data",),
        min_args=2,
        max_args=2,
        usage=f"{arg_name} dataName",
        help=f"Get data that is attached to {article} {kind}",
    )
    @file_option("Write data to file")
    @click.pass_obj
    def get_data(inv: Invocation, args: tuple[str, ...], file: str) -> int:
        item = method(inv, "{kind}_big_data")(args[0], args[1])
        _write_item(item, file)
        return 0

    @command(
        f"set-{kind}-data",
        aliases=(f"set{compact}data",),
        min_args=2,
        max_args=2,
        usage=f"{arg_name} dataName",
        help=f"Set data that is attached to {article} {kind}",
    )
    @file_option("Read data from file")
    @click.pass_obj
    def set_data(inv: Invocation, args: tuple[str, ...], file: str) -> int:
        setter = method(inv, "set_{kind}_big_data")
        if kind == "layer":
            if file:
                with open(file, "rb") as fh:
                    setter(args[0], args[1], fh)
            else:
                setter(args[0], args[1], sys.stdin.buffer)
        else:
            setter(args[0], args[1], read_input(file))
        return 0

    commands: list[click.Command] = [list_data, get_data, set_data]
    if kind == "layer":
        return commands

    @command(
        f"get-{kind}-data-size",
        aliases=(f"get{compact}datasize",),
        min_args=2,
        max_args=2,
        usage=f"{arg_name} dataName",
        help=f"Get size of data that is attached to {article} {kind}",
    )
    @click.pass_obj
    def get_size(inv: Invocation, args: tuple[str, ...]) -> int:
        inv.print(str(method(inv, "{kind}_big_data_size")(args[0], args[1])))
        return 0

    @command(
        f"get-{kind}-data-digest",
        aliases=(f"get{compact}datadigest",),
        min_args=2,
        max_args=2,
        usage=f"{arg_name} dataName",
        help=f"Get digest of data that is attached to {article} {kind}",
    )
    @click.pass_obj
    def get_digest(inv: Invocation, args: tuple[str, ...]) -> int:
        inv.print(str(method(inv, "{kind}_big_data_digest")(args[0], args[1])))
        return 0

    return [*commands, get_size, get_digest]


COMMANDS: list[click.Command] = [
    *_make("layer", "a", "layerNameOrID"),
    *_make("image", "an", "imageNameOrID"),
    *_make("container", "an", "containerNameOrID"),
]
