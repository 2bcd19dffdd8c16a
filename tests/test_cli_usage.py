"""Usage, unknown-command and argument-count behaviour of the CLI, through a real process.

None of these cases opens a store.  Where the Go reference CLI is installed, its exit status and
stdout are compared too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GO_CLI = shutil.which("containers-storage", path="/usr/bin")


def run_py(*args: str, module: str = "cs_core.cli.main") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, check=False)


def run_go(*args: str) -> subprocess.CompletedProcess[str]:
    assert GO_CLI is not None
    return subprocess.run(
        ["containers-storage", *args], executable=GO_CLI, capture_output=True, text=True, check=False
    )


def test_no_arguments_prints_usage_and_fails() -> None:
    result = run_py()
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:4] == ["Usage: containers-storage command [options [...]]", "", "Commands:", ""]
    assert lines[4].startswith("  check") and lines[4][32:] == "Check storage consistency"
    assert lines[-1] == "Options:"
    assert "--graph, -g" in result.stderr


def test_command_list_order_follows_the_inventory() -> None:
    names = [line.split()[0] for line in run_py("--help").stdout.splitlines() if line.startswith("  ")]
    assert names[:4] == ["check", "config", "container", "list-container-data"]
    assert names[-3:] == ["unshare", "version", "wipe"]
    assert len(names) == 61


def test_help_exits_zero_and_deprecated_help_warns() -> None:
    assert run_py("--help").returncode == 0
    result = run_py("-help")
    assert result.returncode == 0
    assert result.stderr.startswith("Warning: '-help' is deprecated")


def test_dash_h_reports_help_requested() -> None:
    result = run_py("-h")
    assert result.returncode == 1
    assert "flag: help requested while parsing arguments (1)" in result.stdout


def test_phase_one_error() -> None:
    result = run_py("-qj")
    assert result.returncode == 1
    assert result.stdout.startswith("flag provided but not defined: -qj while parsing arguments (1)\nUsage:")
    assert result.stderr.startswith("flag provided but not defined: -qj\nSee '")


def test_phase_two_error_exits_125() -> None:
    result = run_py("layers", "--bogus")
    assert result.returncode == 125
    assert result.stdout == ""
    assert result.stderr == "flag provided but not defined: --bogus\nSee 'containers-storage layers --help'.\n"


def test_command_help_exits_125() -> None:
    for spelling in ("--help", "-help", "-h"):
        result = run_py("create-layer", spelling)
        assert result.returncode == 125
        assert result.stdout.startswith("Usage: containers-storage create-layer [options [...]] [parentLayerNameOrID]\n")
        assert "--hostuidmap" in result.stderr


def test_unknown_command() -> None:
    result = run_py("bogus")
    assert (result.returncode, result.stdout) == (1, "bogus: unrecognized command.\n")


def test_too_few_arguments_uses_the_name_as_typed() -> None:
    result = run_py("getnames")
    assert result.returncode == 1
    assert result.stdout.startswith("getnames: more arguments required.\nUsage: containers-storage getnames ")


def test_too_many_arguments() -> None:
    result = run_py("get-names", "a", "b")
    assert result.returncode == 1
    assert result.stdout.startswith("get-names: too many arguments ([a b]).\n")


def test_global_options_only_prints_usage() -> None:
    result = run_py("--debug=false", "--graph", "/nonexistent-cli-test")
    assert result.returncode == 1
    assert result.stdout.startswith("Usage: containers-storage command")


def test_package_main_works_too() -> None:
    result = run_py("bogus", module="cs_core.cli")
    assert (result.returncode, result.stdout) == (1, "bogus: unrecognized command.\n")


@pytest.mark.skipif(GO_CLI is None, reason="the Go reference CLI is not installed")
@pytest.mark.parametrize(
    "args",
    [
        ("-qj",),
        ("bogus",),
        ("layer",),
        ("getnames",),
        ("layers", "--bogus"),
        ("layers", "--json=x"),
        ("layers", "-s"),
        ("--graph",),
        ("--help",),
        ("layers", "--help"),
    ],
)
def test_same_status_and_first_line_as_go(args: tuple[str, ...]) -> None:
    ours, theirs = run_py(*args), run_go(*args)
    assert ours.returncode == theirs.returncode
    assert ours.stdout.splitlines()[:1] == theirs.stdout.splitlines()[:1]
    if theirs.stderr.startswith(("flag", "invalid")):
        assert ours.stderr.splitlines()[:2] == theirs.stderr.splitlines()[:2]
