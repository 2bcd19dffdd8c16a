"""Store-wide and generic commands: status, version, wipe, shutdown, exists, metadata,
set-metadata, delete*, gc, check, dedup, config, unshare (``shared/spec/cli.md`` 8.4)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import click

from cs_core import gojson
from cs_core.cli.base import Invocation, command, json_option
from cs_core.cli.images import metadata_options, read_metadata
from cs_core.errors import NotSupported, StorageError


def _print_pairs(inv: Invocation, pairs: list[tuple[str, str]], as_json: bool) -> None:
    if as_json:
        inv.print_json([[k, v] for k, v in pairs])
    else:
        for key, value in pairs:
            inv.eprint(f"{key}: {value}")


@command("status", help="Check on graph driver status")
@json_option
@click.pass_obj
def status(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    _print_pairs(inv, list(inv.store.status()), json)
    return 0


@command("version", help="Return containers-storage version information")
@json_option
@click.pass_obj
def version(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    _print_pairs(inv, list(inv.store.version()), json)
    return 0


def _failed(inv: Invocation, name: str, exc: StorageError, json: bool) -> int:
    """A store-wide command that failed: ``{}`` with ``--json``, else ``NAME: ERR`` on stderr; exit 1."""
    if json:
        inv.print_json({})
    else:
        inv.eprint(f"{name}: {exc}")
    return 1


@command("wipe", help="Wipe all layers, images, and containers")
@json_option
@click.pass_obj
def wipe(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    try:
        inv.store.wipe()
    except StorageError as exc:
        return _failed(inv, "wipe", exc, json)
    if json:
        inv.print_json("")
    return 0


@command("shutdown", help="Shut down layer storage")
@json_option
@click.option("--force", "-f", "force", is_flag=True, help="Shut down even if layers are mounted")
@click.pass_obj
def shutdown(inv: Invocation, args: tuple[str, ...], json: bool, force: bool) -> int:
    try:
        inv.store.shutdown(force=force)
    except StorageError as exc:
        return _failed(inv, "shutdown", exc, json)
    if json:
        inv.print_json("")
    return 0


@command("exists", min_args=1, max_args=None, usage="layerOrImageOrContainerNameOrID [...]", help="Check if a layer or image or container exists")
@json_option
@click.option("--quiet", "-q", "quiet", is_flag=True, help="Don't print names")
@click.option("--layer", "-l", "layer", is_flag=True, help="Only succeed if the match is a layer")
@click.option("--image", "-i", "image", is_flag=True, help="Only succeed if the match is an image")
@click.option("--container", "-c", "container", is_flag=True, help="Only succeed if the match is a container")
@click.pass_obj
def exists(inv: Invocation, args: tuple[str, ...], json: bool, quiet: bool, layer: bool, image: bool, container: bool) -> int:
    store = inv.store
    kinds = [k for k, wanted in (("layer", layer), ("image", image), ("container", container)) if wanted]
    results: dict[str, bool] = {}
    failed = False
    for ref in args:
        present = bool(store.exists(ref))
        results[ref] = present
        if not present or not all(store.exists(ref, kind) for kind in kinds):
            failed = True
    if json:
        inv.print_json(gojson.sorted_map(results))
    elif not quiet:
        for ref in args:
            inv.print(f"{ref}: {'true' if results[ref] else 'false'}")
    return 1 if failed else 0


@command("metadata", min_args=1, max_args=None, usage="layerOrImageOrContainerNameOrID [...]", help="Retrieve layer, image, or container metadata")
@json_option
@click.option("--quiet", "-q", "quiet", is_flag=True, help="Omit names and IDs")
@click.pass_obj
def metadata(inv: Invocation, args: tuple[str, ...], json: bool, quiet: bool) -> int:
    found: dict[str, str] = {}
    missing = False
    for ref in args:
        try:
            text = inv.store.metadata(ref)
        except StorageError:
            missing = True
            continue
        found[ref] = text[:-1] if text.endswith("\n") else text
    if json:
        inv.print_json(gojson.sorted_map(found))
    else:
        for ref in args:
            value = found.get(ref, "")
            inv.print(value if quiet else f"{ref}: {value}")
    return 1 if missing else 0


@command("set-metadata", aliases=("setmetadata",), min_args=1, max_args=1, usage="layerOrImageOrContainerNameOrID", help="Set layer, image, or container metadata")
@metadata_options
@click.pass_obj
def set_metadata(inv: Invocation, args: tuple[str, ...], metadata: str, metadata_file: str) -> int:
    text = read_metadata(metadata, metadata_file)
    if not text:
        raise StorageError("no new metadata provided")
    inv.store.set_metadata(args[0], text)
    return 0


def _make_delete(name: str, method: str, aliases: tuple[str, ...], help_text: str) -> click.Command:
    @command(name, aliases=aliases, min_args=1, max_args=None, usage="nameOrID [...]", help=help_text)
    @json_option
    @click.pass_obj
    def run(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
        results: dict[str, str] = {}
        failed = False
        for ref in args:
            try:
                getattr(inv.store, method)(ref)
                results[ref] = ""
            except StorageError as exc:
                failed = True
                results[ref] = str(exc)
                if not json:
                    inv.eprint(f"{ref}: {exc}")
        if json:
            inv.print_json(gojson.sorted_map(results))
        return 1 if failed else 0

    return run


@command("delete-image", aliases=("deleteimage",), min_args=1, max_args=None, usage="imageNameOrID [...]", help="Delete an image, with safety checks")
@json_option
@click.option("--test", "-t", "test", is_flag=True, help="Only test removal")
@click.pass_obj
def delete_image(inv: Invocation, args: tuple[str, ...], json: bool, test: bool) -> int:
    results: dict[str, dict[str, Any]] = {}
    failed = False
    for ref in args:
        try:
            removed = list(inv.store.delete_image(ref, commit=not test))
            results[ref] = {"deleted-layers": removed} if removed else {}
            if not json:
                for layer_id in removed:
                    inv.eprint(f"{ref}: {layer_id}")
        except StorageError as exc:
            failed = True
            results[ref] = {"error": str(exc)}
            if not json:
                inv.eprint(f"{ref}: {exc}")
    if json:
        inv.print_json(gojson.sorted_map(results))
    return 1 if failed else 0


@command("gc", help="Perform garbage collection")
@json_option
@click.pass_obj
def gc(inv: Invocation, args: tuple[str, ...], json: bool) -> int:
    inv.store.gc()
    try:
        inv.store.shutdown(force=True)
    except StorageError as exc:
        inv.eprint(f"shutdown: {exc}")
    if json:
        inv.print_json("")
    return 0


@command("check", help="Check storage consistency")
@json_option
@click.option("--max", "-m", "max_age", default="24h", help="Maximum allowed age for unreferenced layers")
@click.option("--repair", "-r", "repair", is_flag=True, help="Remove damaged images and layers")
@click.option("--force", "-f", "force", is_flag=True, help="Remove damaged containers")
@click.option("--quick", "-q", "quick", is_flag=True, help="Perform only quick checks")
@click.pass_obj
def check(inv: Invocation, args: tuple[str, ...], json: bool, max_age: str, repair: bool, force: bool, quick: bool) -> int:
    from cs_core import check as checking

    try:
        max_age_s = checking.parse_go_duration(max_age)
    except ValueError as exc:
        inv.eprint(f'invalid value "{max_age}" for flag -max: {exc}')
        inv.eprint(f"See '{inv.prog} check --help'.")
        return 125
    try:
        return _run_check(inv, checking, json, max_age_s, repair or force, force, quick)
    finally:
        try:
            inv.store.shutdown(force=True)
        except StorageError as exc:
            inv.eprint(f"shutdown: {exc}")


def _run_check(inv: Invocation, checking: Any, json: bool, max_age_s: float, repair: bool, force: bool, quick: bool) -> int:
    """``check`` after its flags are parsed: report, then repair (cli.md 8.4 ``check``)."""
    report = checking.check_store(inv.store, max_age_s=max_age_s, quick=quick)
    if json:
        inv.print_json(report.to_json())
    else:
        for line in report.text_lines():
            inv.print(line)
    layers, ro_layers, images, ro_images, containers = report.counts()
    if not repair:
        if report.is_empty():
            return 0
        raise StorageError(
            f"{layers} layer errors, {ro_layers} read-only layer errors, {images} image errors, "
            f"{ro_images} read-only image errors, {containers} container errors"
        )
    failures = checking.repair(inv.store, report, remove_containers=force)
    if failures:
        if json:
            inv.print_json([{} for _ in failures])
        else:
            for failure in failures:
                inv.eprint(failure)
        raise StorageError(failures[0])
    if ro_layers or ro_images or (containers and not force):
        text = f"{ro_layers} read-only layer errors, {ro_images} read-only image errors"
        raise StorageError(text if force else f"{text}, {containers} container errors")
    return 0


@command("dedup", help="Dedup all images")
@json_option
@click.option("--hash-method", "hash_method", default="crc", help="Hash method to use (crc, size, sha256)")
@click.pass_obj
def dedup(inv: Invocation, args: tuple[str, ...], json: bool, hash_method: str) -> int:
    from cs_core.dedup import dedup_store, validate_hash_method

    validate_hash_method(hash_method)
    try:
        deduped = dedup_store(inv.store, hash_method)
    except StorageError as exc:
        return _failed(inv, "dedup", exc, json)
    if json:
        inv.print_json({"Deduped": deduped})
    else:
        inv.print(f"Deduplicated {deduped} bytes")
    return 0


@command("config", max_args=1, usage="[configurationFile]", help="Print containers-storage configuration", needs_store=False)
@click.pass_obj
def config(inv: Invocation, args: tuple[str, ...]) -> int:
    from cs_core.config_report import config_report

    inv.print_json(config_report(args[0] if args else None))
    return 0


@command("unshare", max_args=None, usage="[command [args...]]", help="Run a command in a user namespace", needs_store=False)
@click.pass_obj
def unshare(inv: Invocation, args: tuple[str, ...]) -> int:
    argv = list(args) or [os.environ.get("SHELL") or "/bin/sh"]
    if os.geteuid() != 0:
        raise NotSupported("unshare: running rootless is not supported")
    result = subprocess.run(argv, check=False)
    if result.returncode != 0:
        code = result.returncode
        raise StorageError(f"exit status {code}" if code > 0 else f"signal: {-code}")
    return 0


COMMANDS: list[click.Command] = [
    status,
    version,
    wipe,
    shutdown,
    exists,
    metadata,
    set_metadata,
    _make_delete("delete", "delete", (), "Delete a layer or image or container, with no safety checks"),
    _make_delete("delete-layer", "delete_layer", ("deletelayer",), "Delete a layer, with safety checks"),
    _make_delete("delete-container", "delete_container", ("deletecontainer",), "Delete a container, with safety checks"),
    delete_image,
    gc,
    check,
    dedup,
    config,
    unshare,
]
