"""``dedup`` end to end (cli.md "``dedup``", storage.md 5.6): real FIDEDUPERANGE on a loop btrfs."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cs_testlib import CLI, OUR_CLI, clean_env, new_image, new_layer, unmount_below

BIG = random.Random(1).randbytes(200_000)
SMALL = b"hi\n"
UNIQUE_1 = random.Random(2).randbytes(5_000)
UNIQUE_2 = random.Random(3).randbytes(5_000)
SAME_SIZE_1 = random.Random(4).randbytes(7_000)
SAME_SIZE_2 = random.Random(5).randbytes(7_000)
EXTRA = random.Random(6).randbytes(1_000)


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _layer_with(cli: CLI, tar: bytes, *parent: str) -> str:
    layer = new_layer(cli, *parent)
    cli.ok("apply-diff", layer, stdin=tar)
    return layer


def _populate(cli: CLI) -> dict[str, str]:
    """Images A (layer 1) and B (layer 3 on layer 2), plus layer 4 that no image uses.

    Layer 1: big, small, empty, a hard link to big, unique-1, same-size-1.
    Layer 2: big, small, empty, a hard link to big, unique-2, same-size-2 (same size, other bytes).
    Layer 3: adds ``extra`` on top of layer 2.  Layer 4: big again (unreachable: never counted).
    """
    common = {"big": BIG, "small": SMALL, "empty": b""}
    l1 = _layer_with(cli, _tar({**common, "unique": UNIQUE_1, "samesize": SAME_SIZE_1}, {"biglink": "big"}))
    l2 = _layer_with(cli, _tar({**common, "unique": UNIQUE_2, "samesize": SAME_SIZE_2}, {"biglink": "big"}))
    l3 = _layer_with(cli, _tar({"extra": EXTRA}), l2)
    l4 = _layer_with(cli, _tar({"big": BIG}))
    new_image(cli, l1)
    new_image(cli, l3)
    return {"l1": l1, "l2": l2, "l3": l3, "l4": l4}


def _expected(driver: str) -> int:
    """Bytes the kernel must report: every copy of a content after the first inode holding it."""
    if driver == "vfs":
        # Layer 3 holds a full copy of layer 2: big x3, small x3, unique-2 x2, same-size-2 x2.
        return 2 * len(BIG) + 2 * len(SMALL) + len(UNIQUE_2) + len(SAME_SIZE_2)
    # overlay: only the diff directories; layer 3's holds just ``extra``.
    return len(BIG) + len(SMALL)


def _dedup(cli: CLI, *args: str) -> int:
    out = cli.ok("dedup", "--json", *args)
    value = json.loads(out)
    assert list(value) == ["Deduped"]
    return int(value["Deduped"])


@pytest.fixture(params=["vfs", "overlay"])
def reflink_cli(request: pytest.FixtureRequest, btrfs_root: Path, tmp_path: Path) -> Iterator[CLI]:
    """Our CLI with a vfs or overlay graph root on the loop-mounted btrfs (reflink-capable)."""
    base = btrfs_root / uuid.uuid4().hex[:12]
    base.mkdir()
    graph, run = base / "graph", tmp_path / "run"
    try:
        yield CLI(OUR_CLI, graph, run, request.param, clean_env(tmp_path))
    finally:
        unmount_below(graph)
        unmount_below(run)
        shutil.rmtree(base, ignore_errors=True)


def _shared_extents(path: Path) -> bool:
    """Whether ``filefrag`` reports a shared extent of ``path``."""
    out = subprocess.run(["filefrag", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    return "shared" in out


def _layer_file(cli: CLI, layer: str, name: str) -> Path:
    if cli.driver == "overlay":
        return cli.graph / "overlay" / layer / "diff" / name
    return cli.mount_path(layer) / name


def test_dedup_shares_identical_files_on_btrfs(reflink_cli: CLI) -> None:
    cli = reflink_cli
    layers = _populate(cli)
    big_copy = _layer_file(cli, layers["l1"], "big")  # vfs: layer 2 already shares with its copy in 3
    has_filefrag = shutil.which("filefrag") is not None
    if has_filefrag:
        assert not _shared_extents(big_copy)
    text = cli.ok("dedup")
    expected = _expected(cli.driver)
    assert text == f"Deduplicated {expected} bytes\n"
    if has_filefrag:
        assert _shared_extents(big_copy)
    # Repeated runs, every hash method: the same value (the kernel re-verifies shared ranges).
    for method in ("crc", "size", "sha256", "crc"):
        assert _dedup(cli, "--hash-method", method) == expected
    # Contents untouched.
    for layer, name, data in (
        ("l1", "big", BIG),
        ("l2", "big", BIG),
        ("l2", "biglink", BIG),
        ("l1", "samesize", SAME_SIZE_1),
        ("l2", "samesize", SAME_SIZE_2),
        ("l2", "small", SMALL),
        ("l4", "big", BIG),
    ):
        assert _layer_file(cli, layers[layer], name).read_bytes() == data
    assert os.path.getsize(_layer_file(cli, layers["l1"], "empty")) == 0
    # The layer no image uses was never touched.
    if has_filefrag:
        assert not _shared_extents(_layer_file(cli, layers["l4"], "big"))


def test_dedup_without_images_reports_zero(reflink_cli: CLI) -> None:
    cli = reflink_cli
    _layer_with(cli, _tar({"big": BIG}))
    _layer_with(cli, _tar({"big": BIG}))
    assert cli.ok("dedup") == "Deduplicated 0 bytes\n"


def test_dedup_error_is_reported(reflink_cli: CLI) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    cli = reflink_cli
    layers = _populate(cli)
    locked = _layer_file(cli, layers["l2"], "big")
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        res = cli("dedup")
        assert res.rc == 1
        assert res.out == ""
        assert res.err.startswith("dedup: failed to open destination file: ")
        assert str(locked) in res.err
        res = cli("dedup", "--json")
        assert res.rc == 1
        assert res.out == "{}\n"
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_dedup_without_reflinks_reports_zero(cli: CLI) -> None:
    """ext4 (vfs, overlay under tmp) cannot share ranges; btrfs the driver dedups nothing."""
    _populate(cli)
    res = cli("dedup")
    assert (res.rc, res.out, res.err) == (0, "Deduplicated 0 bytes\n", "")
    assert _dedup(cli, "--hash-method", "sha256") == 0


def test_dedup_rejects_unknown_hash_method(cli: CLI) -> None:
    res = cli("dedup", "--hash-method", "md5")
    assert res.rc == 1
    assert res.out == ""
    assert "invalid hash method: md5" in res.err
