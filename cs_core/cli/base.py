"""What command modules (ours and plugins') declare commands with.

A command is a :class:`click.Command` (normally a :class:`CSCommand`) whose options are
:class:`click.Option` objects: long and short names, ``is_flag`` for booleans, ``multiple`` for
list options.  Positional arguments reach the callback as ``args`` (a tuple of strings, through a
``click.Argument("args", nargs=-1)``); their allowed count is ``min_args``/``max_args``
(``None`` = unlimited).  The callback receives the :class:`Invocation` first (``click.pass_obj``)
and returns the exit status (``None`` = 0).  The mflag parser in :mod:`cs_core.cli.main` reads
the option metadata from the click objects; click's own parser is never used, so the Go
command-line rules hold for plugin commands too::

    @command("hello", min_args=1, max_args=1, usage="NAME", help="Say hello")
    @json_option
    @click.pass_obj
    def hello(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
        inv.print(f"hello {args[0]}")
        return 0
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import click

from cs_core import gojson
from cs_core.cli.parser import Flag

if TYPE_CHECKING:
    from cs_core.store import Store

F = TypeVar("F", bound=Callable[..., Any])


class CSCommand(click.Command):
    """A click command with the extra metadata of the Go CLI: aliases and positional counts."""

    def __init__(
        self,
        name: str,
        *,
        aliases: tuple[str, ...] = (),
        min_args: int = 0,
        max_args: int | None = 0,
        usage: str = "",
        needs_store: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.aliases = aliases
        self.min_args = min_args
        self.max_args = max_args
        self.arg_usage = usage
        self.needs_store = needs_store


def command(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    min_args: int = 0,
    max_args: int | None = 0,
    usage: str = "",
    help: str = "",
    needs_store: bool = True,
) -> Callable[[Callable[..., Any]], CSCommand]:
    """Declare a :class:`CSCommand`; positional arguments arrive as ``args``."""

    def decorate(func: Callable[..., Any]) -> CSCommand:
        func = click.argument("args", nargs=-1)(func)
        cmd = click.command(
            name,
            cls=CSCommand,
            aliases=aliases,
            min_args=min_args,
            max_args=max_args,
            usage=usage,
            help=help,
            needs_store=needs_store,
        )(func)
        assert isinstance(cmd, CSCommand)
        return cmd

    return decorate


def json_option(func: F) -> F:
    """The ``--json/-j`` boolean every listing command has."""
    return click.option("--json", "-j", "json", is_flag=True, help="Prefer JSON output")(func)


def file_option(help_text: str) -> Callable[[F], F]:
    """``--file/-f FILE``."""

    def decorate(func: F) -> F:
        return click.option("--file", "-f", "file", default="", help=help_text)(func)

    return decorate


@contextmanager
def diff_input(file: str, label: str) -> Iterator[BinaryIO]:
    """The diff to apply: ``file`` or stdin, with a progress bar when stderr is a terminal."""
    from cs_core.archive.progress import with_progress

    if file:
        with open(file, "rb") as fh:
            total = os.fstat(fh.fileno()).st_size
            stream = with_progress(fh, label, total)
            try:
                yield stream
            finally:
                stream.close()
        return
    stream = with_progress(sys.stdin.buffer, label)
    try:
        yield stream
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def name_option(func: F) -> F:
    """``--name/-n NAME``, repeatable."""
    return click.option("--name", "-n", "name", multiple=True, help="Name to give to the new item")(func)


def idmap_options(func: F) -> F:
    """The ID-map options shared by create-layer, import-layer, create-storage-layer, create-container."""
    for long, help_text, is_flag in (
        ("--subgidmap", "Subordinate GID map name", False),
        ("--subuidmap", "Subordinate UID map name", False),
        ("--gidmap", "GID map", False),
        ("--uidmap", "UID map", False),
        ("--hostgidmap", "Force host GID map", True),
        ("--hostuidmap", "Force host UID map", True),
    ):
        if is_flag:
            func = click.option(long, is_flag=True, help=help_text)(func)
        else:
            func = click.option(long, default="", help=help_text)(func)
    return func


def flags_of(cmd: click.Command) -> list[Flag]:
    """The mflag view of a click command's options."""
    flags: list[Flag] = []
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        long = tuple(o[2:] for o in param.opts + param.secondary_opts if o.startswith("--"))
        short = tuple(o[1:] for o in param.opts + param.secondary_opts if not o.startswith("--"))
        raw = param.default
        if param.is_flag:
            kind = "bool"
            default: Any = raw is True
        elif param.multiple:
            kind = "list"
            default = [str(v) for v in raw] if isinstance(raw, (list, tuple)) else []
        else:
            kind = "string"
            default = str(raw) if isinstance(raw, (str, int, float)) else ""
        flags.append(Flag(param.name, long, short, kind, default, param.help or ""))  # type: ignore[arg-type]
    return flags


def arg_limits(cmd: click.Command) -> tuple[int, int | None]:
    """``(min, max)`` positional counts of a command (``max`` ``None`` = unlimited)."""
    if isinstance(cmd, CSCommand):
        return cmd.min_args, cmd.max_args
    low, high = 0, 0
    for param in cmd.params:
        if isinstance(param, click.Argument):
            if param.nargs == -1:
                high = -1
            elif high != -1:
                high += param.nargs
            if param.required:
                low += max(param.nargs, 1)
    return low, (None if high == -1 else high)


class Invocation:
    """What a command callback gets: the opened store, the global options, output helpers."""

    def __init__(self, prog: str, command_name: str, globals_: dict[str, Any]) -> None:
        self.prog = prog
        self.command_name = command_name
        self.globals = globals_
        self._store: Store | None = None
        #: The StoreOptions the store was (or would have been) opened with.
        self.options: Any = None

    @property
    def store(self) -> Store:
        """The store, opened by the entry point before the command runs."""
        if self._store is None:
            raise RuntimeError("the store was not opened for this command")
        return self._store

    @store.setter
    def store(self, value: Store) -> None:
        self._store = value

    @staticmethod
    def print(text: str = "") -> None:
        """A line on stdout (buffered; :meth:`eprint` flushes it first, so the order holds)."""
        sys.stdout.write(text + "\n")

    @staticmethod
    def eprint(text: str = "") -> None:
        """A line on stderr, after what stdout already has (the order Go's unbuffered writes give)."""
        sys.stdout.flush()
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    @staticmethod
    def print_json(value: Any) -> None:
        """One Go-encoded JSON document and a newline on stdout."""
        sys.stdout.write(gojson.dumps(value) + "\n")


def read_input(path: str) -> bytes:
    """The bytes of ``path``, or of stdin when ``path`` is empty."""
    if path:
        with open(path, "rb") as fh:
            return fh.read()
    return sys.stdin.buffer.read()


def resolve_idmaps(
    hostuidmap: bool, hostgidmap: bool, uidmap: str, gidmap: str, subuidmap: str, subgidmap: str
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The UID and GID maps asked for by the ID-map options (``shared/spec/cli.md`` 8.1)."""
    from cs_core.errors import UsageError
    from cs_core.idmap import parse_triples, read_subid_ranges

    if hostuidmap and (uidmap or subuidmap):
        raise UsageError("host uid map specified along with UID mapping")
    if hostgidmap and (gidmap or subgidmap):
        raise UsageError("host gid map specified along with GID mapping")
    uids: tuple[Any, ...] = ()
    gids: tuple[Any, ...] = ()
    if subuidmap or subgidmap:
        uids = read_subid_ranges("/etc/subuid", subuidmap or subgidmap)
        gids = read_subid_ranges("/etc/subgid", subgidmap or subuidmap)
    if uidmap:
        uids = (*uids, *parse_triples([uidmap], "uid"))
    if gidmap:
        gids = (*gids, *parse_triples([gidmap], "gid"))
    return uids, gids
