"""The ``containers-storage`` entry point: two-phase mflag parsing, store opening, exit codes.

This is the only place where errors become messages and exit statuses (``shared/spec/cli.md``
sections 2 and 3).  Click and the command modules are imported only once a known command is about
to run, so usage errors and the common paths stay cheap.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cs_core.cli import registry
from cs_core.cli.parser import Flag, FlagError, FlagSet, HelpRequested, go_list

if TYPE_CHECKING:
    import click

    from cs_core.config import StoreOptions

USAGE_NAME = "containers-storage"

GLOBAL_FLAGS: tuple[Flag, ...] = (
    Flag("debug", ("debug",), ("D",), "bool", False, "Print debugging information"),
    Flag("graph", ("graph",), ("g",), "string", "", "Root of the storage tree"),
    Flag("run", ("run",), ("R",), "string", "", "Root of the runtime state tree"),
    Flag("storage_driver", ("storage-driver",), ("s",), "string", "", "Storage driver to use ($STORAGE_DRIVER)"),
    Flag("storage_opt", ("storage-opt",), (), "list", [], "Set storage driver options ($STORAGE_OPTS)"),
    Flag("image_store", ("image-store",), (), "string", "", "Root of the separate image store"),
    Flag("transient_store", ("transient-store",), (), "bool", False, "Transient store mode"),
    Flag("unshare", ("unshare",), ("U",), "bool", False, "Run in a user namespace"),
)
HELP_FLAG = Flag("help", ("help",), (), "bool", False, "Print usage", deprecated=("help",))
_STORE_KEYS = ("graph", "run", "storage_driver", "storage_opt")


def _prog(argv0: str) -> str:
    base = os.path.basename(argv0)
    return USAGE_NAME if not base or base.endswith(".py") else base


def _top_usage() -> str:
    lines = [f"Usage: {USAGE_NAME} command [options [...]]", "", "Commands:", ""]
    for entry in registry.COMMANDS:
        lines.append(f"  {entry.name.ljust(30)}{entry.description}")
    lines += ["", "Options:", ""]
    return "\n".join(lines)


def _command_usage(name: str, cmd: click.Command) -> str:
    spec = getattr(cmd, "arg_usage", "")
    head = f"Usage: {USAGE_NAME} {name} [options [...]]" + (f" {spec}" if spec else "")
    return f"{head}\n\n{cmd.help or ''}\n\nOptions:\n"


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(text)
    sys.stderr.flush()


class _LogrusFormatter(logging.Formatter):
    """``time="..." level=debug msg="..."`` like the Go CLI's logrus text output."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        msg = record.getMessage().replace("\\", "\\\\").replace('"', '\\"')
        return f'time="{stamp}" level={level} msg="{msg}"'


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogrusFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.ERROR)


def _load_command(name: str) -> click.Command | None:
    entry = registry.lookup(name)
    if entry is None:
        return None
    module = importlib.import_module(f"cs_core.cli.{entry.module}")
    for cmd in getattr(module, "COMMANDS", ()):
        if cmd.name == entry.name:
            return cmd  # type: ignore[no-any-return]
    return None


def _plugin_command(name: str, options: StoreOptions | None) -> click.Command | None:
    """Commands that extension plugins add through ``cs_add_commands`` (looked up only for unknown names)."""
    if options is None or not getattr(options, "extensions", None):
        return None
    import click

    from cs_core import plugins

    group = click.Group("containers-storage")
    plugins.add_cli_commands(group, list(options.extensions))
    cmd = group.commands.get(name)
    if cmd is None:
        for candidate in group.commands.values():
            if name in getattr(candidate, "aliases", ()):
                return candidate
    return cmd


def _store_options(phase1: Any, phase2: Any) -> StoreOptions:
    from cs_core.config import load_options

    given1 = phase1.given
    v1 = phase1.values
    options = load_options(
        graph_root=v1["graph"] if "graph" in given1 else None,
        run_root=v1["run"] if "run" in given1 else None,
        driver=v1["storage_driver"] if "storage_driver" in given1 else None,
        storage_opts=list(v1["storage_opt"]) if "storage_opt" in given1 else None,
        image_store=v1["image_store"] if "image_store" in given1 else None,
        transient_store=v1["transient_store"] if "transient_store" in given1 else None,
    )
    given2 = phase2.given
    v2 = phase2.values
    if "graph" in given2 and v2["graph"]:
        options.graph_root = os.path.abspath(v2["graph"])
    if "run" in given2 and v2["run"]:
        options.run_root = os.path.abspath(v2["run"])
    if "storage_driver" in given2:
        options.driver = v2["storage_driver"]
    if "storage_opt" in given2:
        extra = list(v2["storage_opt"])[len(v1["storage_opt"]) :]
        options.driver_options = [*options.driver_options, *extra]
    if "image_store" in given2:
        options.image_store = v2["image_store"]
    if "transient_store" in given2:
        options.transient_store = bool(v2["transient_store"])
    return options


def _callback_kwargs(cmd: click.Command, values: dict[str, Any], positional: list[str]) -> dict[str, Any]:
    import click

    kwargs: dict[str, Any] = {}
    rest = list(positional)
    for param in cmd.params:
        if param.name is None:
            continue
        if isinstance(param, click.Argument):
            if param.nargs == -1:
                kwargs[param.name] = tuple(rest)
                rest = []
            elif param.nargs == 1:
                kwargs[param.name] = rest.pop(0) if rest else None
            else:
                kwargs[param.name] = tuple(rest[: param.nargs])
                rest = rest[param.nargs :]
        elif isinstance(param, click.Option):
            value = values.get(param.name)
            kwargs[param.name] = tuple(value) if isinstance(value, list) else value
    return kwargs


def _error_text(exc: BaseException) -> str:
    """Go-like text of an error raised while a command ran."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
        if exc.filename is not None:
            return f"open {exc.filename}: {reason}"
        return reason
    return str(exc)


def run(argv: Sequence[str]) -> int:
    """Run the CLI on ``argv`` (``argv[0]`` is the program name); return the exit status."""
    prog = _prog(argv[0] if argv else USAGE_NAME)
    global_set = FlagSet((*GLOBAL_FLAGS, HELP_FLAG), help_flags=True)
    try:
        phase1 = global_set.parse(list(argv[1:]))
    except FlagError as exc:
        _err(f"{exc.message}\nSee '{prog} --help'.\n{global_set.format_table()}")
        _out(f"{exc.message} while parsing arguments (1)\n{_top_usage()}")
        return 1
    except HelpRequested:
        _out(_top_usage())
        _err(global_set.format_table())
        _out(f"flag: help requested while parsing arguments (1)\n{_top_usage()}")
        return 1
    if phase1.deprecated_used:
        _err("Warning: '-help' is deprecated, it will be replaced by '--help' soon. See usage.\n")
    if phase1.values.get("help"):
        _out(_top_usage())
        _err(global_set.format_table())
        return 0
    if not phase1.args:
        _out(_top_usage())
        _err(FlagSet(GLOBAL_FLAGS).format_table())
        return 1
    name = phase1.args[0]
    cmd = _load_command(name)
    if cmd is None:
        try:
            cmd = _plugin_command(name, _store_options(phase1, _empty_parse()))
        except Exception:  # noqa: BLE001 - a broken extension must not hide the usage error
            cmd = None
    if cmd is None:
        _out(f"{name}: unrecognized command.\n")
        return 1
    from cs_core.cli.base import arg_limits, flags_of

    command_set = FlagSet((*GLOBAL_FLAGS, *flags_of(cmd)), help_flags=True)
    start = {k: v for k, v in phase1.values.items() if k != "help"}
    try:
        phase2 = command_set.parse(phase1.args[1:], start)
    except FlagError as exc:
        _err(f"{exc.message}\nSee '{prog} {name} --help'.\n")
        return 125
    except HelpRequested:
        _out(_command_usage(name, cmd))
        _err(command_set.format_table())
        return 125
    low, high = arg_limits(cmd)
    positional = phase2.args
    if len(positional) < low:
        _out(f"{name}: more arguments required.\n{_command_usage(name, cmd)}")
        _err(command_set.format_table())
        return 1
    if high is not None and len(positional) > high:
        _out(f"{name}: too many arguments ({go_list(positional)}).\n{_command_usage(name, cmd)}")
        _err(command_set.format_table())
        return 1
    return _execute(prog, name, cmd, phase1, phase2)


class _EmptyParse:
    given: set[str] = set()
    values: dict[str, Any] = {}


def _empty_parse() -> Any:
    return _EmptyParse()


def _execute(prog: str, name: str, cmd: click.Command, phase1: Any, phase2: Any) -> int:
    import click

    from cs_core.cli.base import Invocation
    from cs_core.errors import StorageError

    values = phase2.values
    _setup_logging(bool(values.get("debug")))
    log = logging.getLogger("cs_core.cli")
    inv = Invocation(prog, name, values)
    store = None
    try:
        options = _store_options(phase1, phase2)
    except StorageError as exc:
        _out(f"error initializing: {exc}\n")
        return 1
    log.debug("Root: %s", options.graph_root)
    log.debug("Run Root: %s", options.run_root)
    log.debug("Driver Name: %s", options.driver)
    log.debug("Driver Options: %s", go_list(options.driver_options))
    try:
        if getattr(cmd, "needs_store", True):
            try:
                from cs_core import open_store

                store = open_store(options)
            except (StorageError, OSError, ValueError) as exc:
                _out(f"error initializing: {_error_text(exc)}\n")
                return 1
            inv.store = store
        inv.options = options
        if cmd.callback is None:
            return 0
        _start_collecting()
        ctx = click.Context(cmd, obj=inv, info_name=name)
        with ctx:
            status = ctx.invoke(cmd.callback, **_callback_kwargs(cmd, values, phase2.args))
        sys.stdout.flush()
        return int(status or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except (StorageError, OSError) as exc:
        _flush_quietly()
        _err(f"{_error_text(exc)}\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - never a traceback
        _flush_quietly()
        log.debug("unexpected error", exc_info=True)
        _err(f"Error: {exc or type(exc).__name__}\n")
        return 1
    finally:
        if store is not None:
            try:
                store.close()
            except Exception as exc:  # noqa: BLE001
                log.debug("closing the store: %s", exc)


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _start_collecting() -> None:
    """Turn the cyclic GC back on for the command itself, ignoring what start-up created."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main() -> None:
    """Console-script entry point."""
    # Start-up (imports, plugins, the store) creates many long-lived objects and no garbage
    # cycles worth collecting: the cyclic GC stays off until the command runs (_start_collecting).
    gc.disable()
    try:
        status = run(sys.argv)
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:
        _silence_stdout()
        status = 1
    except Exception as exc:  # noqa: BLE001 - never a traceback
        _err(f"Error: {exc or type(exc).__name__}\n")
        status = 1
    finally:
        gc.enable()
    sys.exit(status)


if __name__ == "__main__":
    main()
