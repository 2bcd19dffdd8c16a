"""Progress on a terminal: long applies and diffs draw a bar on stderr, nothing when not a TTY."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from cs_testlib import CLI


def big_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tar:
        for i in range(4):
            info = tarfile.TarInfo(f"f{i}")
            info.size = 4 << 20
            tar.addfile(info, io.BytesIO(os.urandom(info.size)))


def run_with_tty_stderr(cli: CLI, *args: str) -> tuple[int, bytes]:
    master, slave = os.openpty()
    cmd = [*cli.argv0, "--graph", str(cli.graph), "--run", str(cli.run), "--storage-driver", cli.driver, *args]
    env = dict(cli.env, TERM="xterm", COLUMNS="100")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(), b"".join(chunks)


@pytest.mark.parametrize("driver_name", ["vfs"])
def test_apply_and_diff_show_progress_only_on_a_terminal(cli: CLI, tmp_path: Path) -> None:
    source = tmp_path / "big.tar"
    big_tar(source)
    layer = cli.ok("create-layer").split("\n")[0]
    rc, shown = run_with_tty_stderr(cli, "applydiff", "-f", str(source), layer)
    assert rc == 0 and b"applying diff" in shown
    rc, shown = run_with_tty_stderr(cli, "diff", "-u", "-f", str(tmp_path / "out.tar"), layer)
    assert rc == 0 and b"writing diff" in shown
    assert (tmp_path / "out.tar").read_bytes() == source.read_bytes()
    plain = cli("applydiff", "-f", str(source), layer)
    assert (plain.rc, plain.out, plain.err) == (0, "", "")
