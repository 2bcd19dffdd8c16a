"""Locks: fcntl record locks shared with other processes, last-writer tokens, reloads."""

from __future__ import annotations

import fcntl
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cs_core.locking import TOKEN_SIZE, get_lockfile


def hold_lock_in_child(path: Path, kind: str, seconds: float) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import fcntl, os, sys, time
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.lockf(fd, fcntl.LOCK_{kind})
        print("locked", flush=True)
        time.sleep({seconds})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_exclusive_lock_waits_for_other_process(tmp_path: Path) -> None:
    path = tmp_path / "layers.lock"
    child = hold_lock_in_child(path, "EX", 0.6)
    lock = get_lockfile(str(path))
    start = time.monotonic()
    lock.lock()
    waited = time.monotonic() - start
    lock.unlock()
    child.wait()
    assert waited > 0.3


def test_shared_locks_coexist_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "images.lock"
    child = hold_lock_in_child(path, "SH", 1.0)
    lock = get_lockfile(str(path))
    lock.rlock()
    fd = open(path, "rb+")
    try:
        # A third party asking for an exclusive lock must be refused while both readers hold it.
        try:
            fcntl.lockf(fd.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            refused = False
        except OSError:
            refused = True
    finally:
        fd.close()
        lock.unlock()
        child.wait()
    assert refused


def test_token_format_and_change_detection(tmp_path: Path) -> None:
    lock = get_lockfile(str(tmp_path / "containers.lock"))
    assert lock.current_token() == b""
    with lock:
        first = lock.record_write()
    assert len(first) == TOKEN_SIZE
    nanos, counter, pid = struct.unpack("<qQI", first[:20])
    assert abs(nanos - time.time_ns()) < 60 * 10**9 and counter > 0 and pid > 0
    assert not lock.modified_since(first)
    code = f"from cs_core.locking import get_lockfile\nl = get_lockfile({str(tmp_path / 'containers.lock')!r})\nl.lock(); l.record_write(); l.unlock()\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert lock.modified_since(first)
    assert (tmp_path / "containers.lock").read_bytes() != first


def test_store_reloads_after_another_process_writes(tmp_path: Path) -> None:
    from cs_core import load_options, open_store

    opts = load_options(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), driver="vfs")
    store = open_store(opts)
    store.create_layer(layer_id="first")
    assert [layer.id for layer in store.layers()] == ["first"]
    code = textwrap.dedent(
        f"""
        from cs_core import open_store, load_options
        s = open_store(load_options(graph_root={str(tmp_path / 'g')!r}, run_root={str(tmp_path / 'r')!r}, driver='vfs'))
        s.create_layer(layer_id='second', names=['taken'])
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert [layer.id for layer in store.layers()] == ["first", "second"]
    assert store.layer("taken").id == "second"
