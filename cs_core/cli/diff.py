"""Diff commands: changes, diffsize, diff, applydiff, applydiff-using-staging-dir
(``shared/spec/cli.md`` 8.1)."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import click

from cs_core.cli.base import Invocation, command, diff_input, file_option, json_option
from cs_core.errors import NotSupported
from cs_core.records import COMPRESSION_BZIP2, COMPRESSION_GZIP, COMPRESSION_NONE, COMPRESSION_XZ


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_LAYER_ARGS = "baseLayerNameOrID [referenceLayerNameOrID]"


@command("changes", min_args=1, max_args=2, usage=_LAYER_ARGS, help="Compare two layers")
@json_option
@click.pass_obj
def changes(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    found = inv.store.changes(args[0], args[1] if len(args) > 1 else None)
    if json:
        inv.print_json([c.to_dict() for c in found] or None)
        return 0
    for change in found:
        inv.print(f"{change.kind_name} {go_quote(change.path)}")
    return 0


@command("diffsize", aliases=("diff-size",), min_args=1, max_args=2, usage=_LAYER_ARGS, help="Compare two layers")
@click.pass_obj
def diffsize(inv: Invocation, args: tuple[str, ...]) -> int:
    inv.print(str(inv.store.diff_size(args[0], args[1] if len(args) > 1 else None)))
    return 0


@command("diff", min_args=1, max_args=2, usage=_LAYER_ARGS, help="Compare two layers")
@file_option("Write to file instead of stdout")
@click.option("--uncompressed", "-u", "uncompressed", is_flag=True, help="Use no compression")
@click.option("--gzip", "-c", "gzip", is_flag=True, help="Compress using gzip")
@click.option("--bzip2", "--bz2", "-b", "bzip2", is_flag=True, help="Compress using bzip2")
@click.option("--xz", "-x", "xz", is_flag=True, help="Compress using xz")
@click.pass_obj
def diff(inv: Invocation, args: tuple[str, ...], file: str, uncompressed: bool, gzip: bool, bzip2: bool, xz: bool) -> int:
    compression: int | None = None
    if xz:
        compression = COMPRESSION_XZ
    elif bzip2:
        compression = COMPRESSION_BZIP2
    elif gzip:
        compression = COMPRESSION_GZIP
    elif uncompressed:
        compression = COMPRESSION_NONE
    parent = args[1] if len(args) > 1 else None
    if file:
        with open(file, "wb") as out:
            _write_diff(inv, args[0], parent, out, compression)
    else:
        sys.stdout.flush()
        _write_diff(inv, args[0], parent, sys.stdout.buffer, compression)
        sys.stdout.buffer.flush()
    return 0


def _write_diff(inv: Invocation, layer: str, parent: str | None, out: BinaryIO, compression: int | None) -> None:
    """Write the diff, with a progress bar on stderr when it is a terminal."""
    from cs_core.archive.progress import with_write_progress

    sink = with_write_progress(out, "writing diff")
    try:
        inv.store.diff(layer, parent, sink, compression)
    finally:
        if sink is not out:
            sink.close()


@command("applydiff", aliases=("apply-diff",), min_args=1, max_args=1, usage="layerNameOrID", help="Apply a diff to a layer")
@file_option("Read from file instead of stdin")
@click.pass_obj
def applydiff(inv: Invocation, args: tuple[str, ...], file: str) -> int:
    with diff_input(file, "applying diff") as stream:
        inv.store.apply_diff(args[0], stream)
    return 0


@command(
    "applydiff-using-staging-dir",
    min_args=2,
    max_args=2,
    usage="layerNameOrID directory",
    help="Apply a diff to a layer using a staging directory",
)
@click.pass_obj
def applydiff_using_staging_dir(inv: Invocation, args: tuple[str, ...]) -> int:
    # No driver here has staged ("differ") layers yet; Go's vfs fails the same way.
    raise NotSupported("driver not supported")


COMMANDS: list[Any] = [changes, diffsize, diff, applydiff, applydiff_using_staging_dir]
