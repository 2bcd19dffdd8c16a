"""Helpers of the end-to-end tests: running our CLI and the Go CLI on one scratch store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GO_CLI = shutil.which("containers-storage", path="/usr/bin:/usr/sbin:/bin") or ""
OUR_CLI = [sys.executable, "-m", "cs_core.cli"]
#: Drivers the end-to-end tests run on (``CS_TEST_DRIVER=overlay`` narrows it to one).
DRIVERS = (os.environ.get("CS_TEST_DRIVER") or os.environ.get("CS_TEST_DRIVERS") or "vfs,overlay,btrfs").split(",")


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

    def records(self, kind: str) -> Path:
        """``GRAPHROOT/<driver>-<kind>`` (kind: layers, images, containers)."""
        return self.graph / f"{self.driver}-{kind}"

    def run_records(self, kind: str) -> Path:
        return self.run / f"{self.driver}-{kind}"

    def mount_path(self, layer_id: str) -> Path:
        """Where the driver mounts (or keeps) a layer's root."""
        if self.driver == "overlay":
            return self.graph / "overlay" / layer_id / "merged"
        if self.driver == "btrfs":
            return self.graph / "btrfs" / "subvolumes" / layer_id
        return self.graph / "vfs" / "dir" / layer_id

    def driver_layers(self) -> list[str]:
        """Layer directories the driver holds."""
        home = {"vfs": self.graph / "vfs" / "dir", "btrfs": self.graph / "btrfs" / "subvolumes"}.get(
            self.driver, self.graph / self.driver
        )
        if not home.is_dir():
            return []
        return sorted(p.name for p in home.iterdir() if p.name != "l" and p.is_dir())


def unmount_below(path: Path) -> None:
    """Unmount everything at or below ``path`` (overlay homes, layer mounts)."""
    from cs_driver_btrfs.loopback import unmount_all

    unmount_all(str(path))


def first_line(out: str) -> str:
    """The ID a create command printed: the text before the first newline or TAB."""
    return out.split("\n")[0].split("\t")[0]


def new_layer(cli: CLI, *args: str) -> str:
    return first_line(cli.ok("create-layer", *args))


def new_image(cli: CLI, *args: str) -> str:
    return first_line(cli.ok("create-image", *args))


def new_container(cli: CLI, *args: str) -> str:
    return first_line(cli.ok("create-container", *args))
