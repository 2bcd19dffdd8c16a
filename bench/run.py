"""Benchmarks, run by hand: this CLI side by side with Debian's Go containers-storage.

    .venv/bin/python bench/run.py [--size-mb 400] [--files 20000] [--rounds 3] [--only apply,diff,mount,startup] [--no-fresh-fs]

Every case runs both CLIs in alternating rounds on fresh scratch stores (as root: each sample
on a newly formatted loop-mounted ext4, see ``fresh``) and prints the median wall time of each,
their ratio (ours / Go), and for the archive cases GNU tar on the same data as the practical
limit.  ``startup`` times one trivial command (``layers`` on an empty store) per CLI.  Peak RSS of our applydiff is measured with ``/usr/bin/time``-style rusage.
Nothing here asserts a time: the numbers are for people.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

GO = shutil.which("containers-storage", path="/usr/bin:/usr/sbin") or ""
_CONSOLE_SCRIPT = Path(sys.executable).with_name("containers-storage")
#: Our CLI exactly as users run it (the console script), else ``python -m cs_core.cli``.
OURS = [str(_CONSOLE_SCRIPT)] if _CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "cs_core.cli"]
#: Make every sample's scratch directory a freshly formatted ext4 (see ``fresh``).
FRESH_FS = True
_FS_SIZE = "3G"


def make_layer(path: Path, size_mb: int, files: int, seed: int = 20261129) -> None:
    """A deterministic layer tar: mixed file sizes, directories, symlinks and hard links."""
    rng = random.Random(seed)
    budget = size_mb * 1024 * 1024
    sizes = [rng.choice((0, 100, 1000, 4096, 20000, 100000)) for _ in range(files)]
    scale = budget / max(1, sum(sizes))
    sizes = [int(s * scale) for s in sizes]
    block = rng.randbytes(1 << 20)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        dirs = [f"d{i:03d}" for i in range(files // 100 + 1)]
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            tar.addfile(info)
        for i, size in enumerate(sizes):
            name = f"{dirs[i % len(dirs)]}/f{i:06d}"
            kind = i % 50
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1700000000 + i, 0o644
            if kind == 1 and i > 1:
                info.type, info.linkname = tarfile.SYMTYPE, f"f{i - 1:06d}"
                tar.addfile(info)
            elif kind == 2 and i > 2:
                info.type, info.linkname = tarfile.LNKTYPE, f"{dirs[(i - 2) % len(dirs)]}/f{i - 2:06d}"
                tar.addfile(info)
            else:
                info.size = size
                offset = (i * 7919) % len(block)
                data = (block[offset:] + block[:offset]) * (size // len(block) + 1)
                tar.addfile(info, io.BytesIO(data[:size]))


def timed(cmd: list[str], stdin: Path | None = None, stdout: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command."""
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as fin, open(stdout or os.devnull, "wb") as fout:
        proc = subprocess.Popen(cmd, stdin=fin, stdout=fout)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return elapsed, usage.ru_maxrss


def store_args(root: Path, driver: str) -> list[str]:
    return ["--graph", str(root / "g"), "--run", str(root / "r"), "--storage-driver", driver]


def fresh(base: Path, tag: str) -> Path:
    """A scratch directory for one sample.

    With ``FRESH_FS`` (the default when root) it is the mount point of a newly formatted,
    loop-mounted ext4: file-creation cost on a long-lived filesystem swings 2-3x with what was
    deleted there recently (ext4 skips recently freed inodes; ``discard`` mounts add TRIMs), so
    without this the ratios mostly measure the previous sample's ``rm -rf``.
    """
    path = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=base))
    if FRESH_FS:
        image = path.with_suffix(".img")
        subprocess.run(["truncate", "-s", _FS_SIZE, str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(path)], check=True)
    return path


def discard(path: Path) -> None:
    """Remove a scratch directory made by :func:`fresh` (unmounting and detaching its ext4)."""
    subprocess.run(["umount", "-R", str(path)], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)
    path.with_suffix(".img").unlink(missing_ok=True)


def wipe(cli: list[str], root: Path, driver: str) -> None:
    subprocess.run([*cli, *store_args(root, driver), "wipe"], check=False, capture_output=True)
    subprocess.run([*cli, *store_args(root, driver), "shutdown", "-f"], check=False, capture_output=True)
    discard(root)


def report(name: str, ours: list[float], go: list[float], limit: list[float] | None = None, extra: str = "") -> None:
    o, g = statistics.median(ours), statistics.median(go) if go else float("nan")
    line = f"{name:<28} ours {o:8.3f}s  go {g:8.3f}s  ratio {o / g if go else float('nan'):5.2f}"
    if limit:
        lim = statistics.median(limit)
        line += f"  tar {lim:7.3f}s  ours/tar {o / lim:5.2f}"
    print(line + extra, flush=True)


def bench_apply(base: Path, layer_tar: Path, rounds: int, driver: str, compressed: bool) -> None:
    src = layer_tar
    if compressed:
        src = layer_tar.with_suffix(".tar.gz")
        if not src.exists():
            with open(layer_tar, "rb") as fin, gzip.open(src, "wb", compresslevel=6) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
    ours_t: list[float] = []
    go_t: list[float] = []
    tar_t: list[float] = []
    rss = 0
    for _ in range(rounds):
        for who, cli, sink in (("ours", OURS, ours_t), ("go", [GO], go_t)):
            if who == "go" and not GO:
                continue
            root = fresh(base, who)
            layer = subprocess.run([*cli, *store_args(root, driver), "create-layer"], capture_output=True, text=True, check=True).stdout.split()[0]
            elapsed, peak = timed([*cli, *store_args(root, driver), "applydiff", "-f", str(src), layer])
            sink.append(elapsed)
            if who == "ours":
                rss = max(rss, peak)
            wipe(cli, root, driver)
        target = fresh(base, "tar")
        flags = "-xzf" if compressed else "-xf"
        tar_t.append(timed(["tar", flags, str(src), "-C", str(target)])[0])
        discard(target)
    report(f"applydiff {driver} {'.tar.gz' if compressed else '.tar'}", ours_t, go_t, tar_t, f"  peak RSS(children) {rss / 1024:.0f} MiB")


def bench_diff(base: Path, layer_tar: Path, rounds: int, driver: str, gzip_out: bool) -> None:
    ours_t: list[float] = []
    go_t: list[float] = []
    tar_t: list[float] = []
    for _ in range(rounds):
        for who, cli, sink in (("ours", OURS, ours_t), ("go", [GO], go_t)):
            if who == "go" and not GO:
                continue
            root = fresh(base, who)
            layer = subprocess.run(
                [*cli, *store_args(root, driver), "import-layer", "-f", str(layer_tar)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
            out = root / "out.tar"
            sink.append(timed([*cli, *store_args(root, driver), "diff", "-c" if gzip_out else "-u", "-f", str(out), layer])[0])
            wipe(cli, root, driver)
        target = fresh(base, "tar")
        tree = target / "tree"
        tree.mkdir()
        subprocess.run(["tar", "-xf", str(layer_tar), "-C", str(tree)], check=True)
        flags = "-czf" if gzip_out else "-cf"
        tar_t.append(timed(["tar", flags, str(target / "out.tar"), "-C", str(tree), "."])[0])
        discard(target)
    report(f"diff {driver} {'-c (gzip)' if gzip_out else '-u'}", ours_t, go_t, tar_t)


def bench_mount_chain(base: Path, rounds: int, depth: int = 50) -> None:
    ours_t: list[float] = []
    go_t: list[float] = []
    for _ in range(rounds):
        for who, cli, sink in (("ours", OURS, ours_t), ("go", [GO], go_t)):
            if who == "go" and not GO:
                continue
            root = fresh(base, who)
            parent = ""
            for _ in range(depth):
                args = [*cli, *store_args(root, "overlay"), "create-layer"] + ([parent] if parent else [])
                parent = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()[0]
            for _ in range(5):
                start = time.perf_counter()
                subprocess.run([*cli, *store_args(root, "overlay"), "mount", parent], check=True, capture_output=True)
                subprocess.run([*cli, *store_args(root, "overlay"), "unmount", parent], check=True, capture_output=True)
                sink.append(time.perf_counter() - start)
            wipe(cli, root, "overlay")
    report(f"mount+unmount {depth}-deep overlay", ours_t, go_t)
    lib_t = [_mount_chain_in_process(base, depth) for _ in range(rounds)]
    print(f"{'  same, in-process Store API':<28} ours {statistics.median(lib_t):8.3f}s  (no interpreter start-up)", flush=True)


def bench_startup(base: Path, rounds: int) -> None:
    """Median wall time of ``layers`` on an empty store: the fixed cost of every CLI call."""
    samples: dict[str, list[float]] = {"ours": [], "go": []} if GO else {"ours": []}
    roots = {who: fresh(base, f"startup-{who}") for who in samples}
    clis = {"ours": OURS, "go": [GO]}
    for _ in range(max(rounds, 1) * 10):
        for who in samples:
            samples[who].append(timed([*clis[who], *store_args(roots[who], "vfs"), "layers"])[0])
    for who, root in roots.items():
        wipe(clis[who], root, "vfs")
    report("one call (layers, empty)", samples["ours"], samples.get("go", []))


def _mount_chain_in_process(base: Path, depth: int) -> float:
    """Mount+unmount through the library, to separate driver work from CLI start-up."""
    from cs_core import load_options, open_store

    root = fresh(base, "lib")
    store = open_store(load_options(graph_root=str(root / "g"), run_root=str(root / "r"), driver="overlay"))
    parent = ""
    for _ in range(depth):
        parent = store.create_layer(parent).id
    start = time.perf_counter()
    store.mount(parent)
    store.unmount(parent)
    elapsed = time.perf_counter() - start
    store.shutdown(force=True)
    wipe(OURS, root, "overlay")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=400)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="apply,diff,mount,startup")
    parser.add_argument("--workdir", default="/var/tmp/cs-bench")
    parser.add_argument("--no-fresh-fs", action="store_true",
                        help="run in plain directories of the workdir instead of a new ext4 per sample")
    args = parser.parse_args()
    global FRESH_FS
    FRESH_FS = not args.no_fresh_fs and os.geteuid() == 0 and shutil.which("mkfs.ext4") is not None
    if not GO:
        print("note: Go containers-storage not found; only our times are printed", file=sys.stderr)
    base = Path(args.workdir)
    base.mkdir(parents=True, exist_ok=True)
    layer_tar = base / f"layer-{args.size_mb}m-{args.files}.tar"
    if not layer_tar.exists():
        print(f"generating {layer_tar} ...", flush=True)
        make_layer(layer_tar, args.size_mb, args.files)
    only = set(args.only.split(","))
    cases: list[tuple[str, Callable[[], None]]] = [
        ("apply", lambda: bench_apply(base, layer_tar, args.rounds, "vfs", False)),
        ("apply", lambda: bench_apply(base, layer_tar, args.rounds, "vfs", True)),
        ("apply", lambda: bench_apply(base, layer_tar, args.rounds, "overlay", False)),
        ("diff", lambda: bench_diff(base, layer_tar, args.rounds, "vfs", False)),
        ("diff", lambda: bench_diff(base, layer_tar, args.rounds, "vfs", True)),
        ("diff", lambda: bench_diff(base, layer_tar, args.rounds, "overlay", False)),
        ("mount", lambda: bench_mount_chain(base, args.rounds)),
        ("startup", lambda: bench_startup(base, args.rounds)),
    ]
    for kind, case in cases:
        if kind in only:
            case()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
