"""Name commands: get-names, add-names, remove-names, set-names (``shared/spec/cli.md`` 8.4)."""

from __future__ import annotations

import click

from cs_core.cli.base import Invocation, command, json_option, name_option


@command("get-names", aliases=("getnames",), min_args=1, max_args=1, usage="imageOrContainerNameOrID", help="Get layer, image, or container name or names")
@json_option
@click.pass_obj
def get_names(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    names = list(inv.store.names(args[0]))
    if json:
        inv.print_json(names)
    else:
        for name in names:
            inv.print(name)
    return 0


def _make(verb: str, method: str, help_text: str) -> click.Command:
    @command(
        f"{verb}-names",
        aliases=(f"{verb}names",),
        min_args=1,
        max_args=None,
        usage="imageOrContainerNameOrID",
        help=help_text,
    )
    @json_option
    @name_option
    @click.pass_obj
    def run(inv: Invocation, args: tuple[str, ...], json: bool, name: tuple[str, ...]) -> int:
        result = list(getattr(inv.store, method)(args[0], list(name)))
        if json:
            inv.print_json(result or None)
        return 0

    return run


COMMANDS: list[click.Command] = [
    get_names,
    _make("add", "add_names", "Add layer, image, or container name or names"),
    _make("remove", "remove_names", "Remove layer, image, or container name or names"),
    _make("set", "set_names", "Set layer, image, or container name or names"),
]
