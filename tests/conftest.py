"""Shared fixtures: scratch stores, running our CLI and the Go CLI as subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GO_CLI = shutil.which("containers-storage", path="/usr/bin:/usr/sbin:/bin") or ""
OUR_CLI = [sys.executable, "-m", "cs_core.cli"]


@dataclass
class Result:
    """What a CLI run produced."""

    rc: int
    out: str
    err: str
    raw: bytes = b""


def clean_env(tmp: Path) -> dict[str, str]:
    """An environment that reads no system configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "CONTAINERS_"))}
    empty = tmp / "empty-storage.yaml"
    if not empty.exists():
        empty.write_text("{}\n")
    env["CONTAINERS_STORAGE_CONFIG"] = str(empty)
    env["CONTAINERS_STORAGE_CONF"] = str(tmp / "nonexistent-unused.conf")
    env.pop("CONTAINERS_STORAGE_CONF")
    return env


@dataclass
class CLI:
    """Runs a containers-storage CLI against one scratch store."""

    argv0: list[str]
    graph: Path
    run: Path
    driver: str
    env: dict[str, str]

    def __call__(self, *args: str, stdin: bytes | None = None, check: bool = False, binary: bool = False) -> Result:
        cmd = [*self.argv0, "--graph", str(self.graph), "--run", str(self.run), "--storage-driver", self.driver, *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, env=self.env, timeout=300)
        res = Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"), proc.stdout)
        if check and res.rc != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({res.rc}): {res.out}{res.err}")
        return res

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        return self(*args, stdin=stdin, check=True).out


@pytest.fixture
def store_dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "graph", tmp_path / "run"


@pytest.fixture
def cli(tmp_path: Path, store_dirs: tuple[Path, Path]) -> CLI:
    """Our CLI on a scratch vfs store."""
    graph, run = store_dirs
    return CLI(OUR_CLI, graph, run, os.environ.get("CS_TEST_DRIVER", "vfs"), clean_env(tmp_path))


@pytest.fixture
def go_cli(tmp_path: Path, store_dirs: tuple[Path, Path]) -> CLI:
    """The Go CLI from Debian on the same scratch store as :func:`cli`."""
    if not GO_CLI:
        pytest.skip("the Go containers-storage CLI is not installed (apt-get install containers-storage)")
    graph, run = store_dirs
    return CLI([GO_CLI], graph, run, os.environ.get("CS_TEST_DRIVER", "vfs"), clean_env(tmp_path))
