"""End-to-end ``check`` (cli.md 7.13 and the ``check`` command): real stores, damaged by hand,
checked and repaired through our CLI on every driver."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from cs_testlib import CLI, DRIVERS, Result, new_container, new_image, new_layer

EMPTY_REPORT = {"Layers": {}, "ROLayers": {}, "Images": {}, "ROImages": {}, "Containers": {}}


def tar_of(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar with a directory ``d`` and the given regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d")
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
        tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layer_with(cli: CLI, files: dict[str, bytes], *args: str) -> str:
    """A new layer (on ``args``' parent) with ``files`` applied as its diff."""
    layer = new_layer(cli, *args)
    cli.ok("apply-diff", layer, stdin=tar_of(files))
    return layer


def content_dir(cli: CLI, layer_id: str) -> Path:
    """Where the driver keeps the files a layer itself adds."""
    if cli.driver == "overlay":
        return cli.graph / "overlay" / layer_id / "diff"
    return cli.mount_path(layer_id)


def report_of(res: Result) -> dict[str, list[str]]:
    """The text report as ``{"KIND ID": [error, ...]}``."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in res.out.splitlines():
        if line.startswith(" "):
            out[current].append(line[1:])
        else:
            assert line.endswith(":"), line
            current = line[:-1]
            out[current] = []
    return out


def counts_line(layers: int = 0, ro_layers: int = 0, images: int = 0, ro_images: int = 0, containers: int = 0) -> str:
    return (
        f"{layers} layer errors, {ro_layers} read-only layer errors, {images} image errors, "
        f"{ro_images} read-only image errors, {containers} container errors\n"
    )


def edit_records(cli: CLI, kind: str, change: object) -> None:
    """Rewrite ``GRAPHROOT/<driver>-<kind>/<kind>.json`` through ``change(records)``."""
    path = cli.records(kind) / f"{kind}.json"
    records = json.loads(path.read_text())
    change(records)  # type: ignore[operator]
    path.write_text(json.dumps(records, separators=(",", ":")))


def healthy_store(cli: CLI) -> tuple[str, str, str, str]:
    """Two layers with contents, an image on them with data, a container with data."""
    base = layer_with(cli, {"d/f": b"hello\n"})
    top = layer_with(cli, {"d/g": b"world!\n"}, base)
    image = new_image(cli, top)
    cli.ok("set-image-data", image, "manifest", stdin=b'{"a":1}')
    cli.ok("set-image-data", image, "config", stdin=b"config-bytes")
    ctr = new_container(cli, image)
    cli.ok("set-container-data", ctr, "state", stdin=b"running")
    return base, top, image, ctr


def test_healthy_store_reports_nothing(cli: CLI) -> None:
    healthy_store(cli)
    for args in ((), ("-q",), ("--max", "0"), ("-r",), ("-f",)):
        res = cli("check", *args)
        assert (res.rc, res.out, res.err) == (0, "", ""), args
    res = cli("check", "--json")
    assert res.rc == 0 and res.err == ""
    assert json.loads(res.out) == EMPTY_REPORT
    assert res.out == '{"Layers":{},"ROLayers":{},"Images":{},"ROImages":{},"Containers":{}}\n'


def test_bad_max_duration_is_a_flag_error(cli: CLI) -> None:
    res = cli("check", "--max", "12parsecs")
    assert res.rc == 125 and res.err.startswith('invalid value "12parsecs" for flag -max: ')
    assert cli("check", "-m", "1h30m").rc == 0
    assert cli("check", "-m", "1.5h").rc == 0


def test_image_data_missing_and_wrong_size(cli: CLI) -> None:
    _base, _top, image, ctr = healthy_store(cli)
    (cli.records("images") / image / "manifest").unlink()
    (cli.records("images") / image / "config").write_bytes(b"short")
    res = cli("check")
    missing = f'image {image}: data item "manifest": image data item is missing'
    size = f'image {image}: data item "config": image data item has incorrect size'
    assert report_of(res) == {f"image {image}": [missing, size], f"container {ctr}": [missing, size]}
    assert res.rc == 1 and res.err == counts_line(images=1, containers=1)
    as_json = cli("check", "-j")
    assert as_json.rc == 1
    assert json.loads(as_json.out) == {**EMPTY_REPORT, "Images": {image: [{}, {}]}, "Containers": {ctr: [{}, {}]}}


def test_repair_needs_force_for_containers(cli: CLI) -> None:
    base, top, image, ctr = healthy_store(cli)
    (cli.records("images") / image / "config").unlink()
    res = cli("check", "-r")
    failure = f"deleting image {image}: image used by {ctr}: image is in use by a container"
    assert res.rc == 1 and res.err == f"{failure}\n{failure}\n"
    assert cli("image", image).rc == 0 and cli("container", ctr).rc == 0
    res = cli("check", "-f")
    assert res.rc == 0 and res.err == ""
    for kind, ref in (("image", image), ("container", ctr), ("layer", base), ("layer", top)):
        assert cli(kind, ref).rc != 0, (kind, ref)
    assert cli.driver_layers() == []
    assert cli("check").rc == 0


def test_changed_layer_file_fails_its_checksum(cli: CLI) -> None:
    base, _top, image, ctr = healthy_store(cli)
    (content_dir(cli, base) / "d" / "f").write_bytes(b"HELLO\n")
    res = cli("check")
    error = f'layer {base}: file integrity checksum failed for "d/f"'
    assert report_of(res) == {f"layer {base}": [error], f"image {image}": [error], f"container {ctr}": [error]}
    assert res.rc == 1 and res.err == counts_line(layers=1, images=1, containers=1)
    res = cli("check", "-q")
    assert res.rc == 1 and report_of(res)[f"layer {base}"] == [error]


def test_recorded_digest_and_size_mismatch(cli: CLI) -> None:
    base, top, image, ctr = healthy_store(cli)
    cli.ok("delete-container", ctr)
    size = json.loads(cli.ok("layer", "-j", top))[0]["diff-size"]
    wrong = "sha256:" + "0" * 64

    def damage(records: list[dict[str, object]]) -> None:
        for record in records:
            if record["id"] == top:
                record["diff-digest"] = wrong
                record["diff-size"] = size + 1

    edit_records(cli, "layers", damage)
    res = cli("check")
    errors = [f"layer {top}: layer content incorrect digest", f"layer {top}: read {size} bytes instead of {size + 1} bytes: layer content incorrect size"]
    assert report_of(res) == {f"layer {top}": errors, f"image {image}": errors}
    assert res.rc == 1 and res.err == counts_line(layers=1, images=1)
    res = cli("check", "-r")
    assert (res.rc, res.err) == (0, "")
    assert cli("image", image).rc != 0 and cli("layer", top).rc != 0 and cli("layer", base).rc != 0
    assert cli.driver_layers() == []


def test_layer_data_item_missing(cli: CLI) -> None:
    base, _top, image, ctr = healthy_store(cli)
    cli.ok("set-layer-data", base, "blob", stdin=b"xyz")
    (cli.records("layers") / base / "blob").unlink()
    res = cli("check", "-q")
    error = f'layer {base}: data item "blob": layer data item is missing'
    assert report_of(res) == {f"layer {base}": [error], f"image {image}": [error], f"container {ctr}": [error]}
    assert res.rc == 1


def test_stray_driver_directory(cli: CLI) -> None:
    healthy_store(cli)
    stray = cli.ok("create-storage-layer").strip()
    res = cli("check")
    assert report_of(res) == {f"layer {stray}": [f"layer {stray}: layer in lower level storage driver not accounted for"]}
    assert res.rc == 1 and res.err == counts_line(layers=1)
    assert json.loads(cli("check", "-j").out) == {**EMPTY_REPORT, "Layers": {stray: [{}]}}
    res = cli("check", "-r")
    assert (res.rc, res.err) == (0, "")
    assert stray not in cli.ok("storage-layers").split()
    assert cli("check").rc == 0


def test_missing_parent_layer_record(cli: CLI) -> None:
    base, top, image, ctr = healthy_store(cli)
    edit_records(cli, "layers", lambda records: records.remove(next(r for r in records if r["id"] == base)))
    res = cli("check")
    missing = f"layer {base}: layer is missing"
    assert report_of(res) == {
        f"layer {top}": [missing],
        f"layer {base}": [f"layer {base}: layer in lower level storage driver not accounted for"],
        f"image {image}": [missing, f"image {image}: layer {base}: image layer is missing"],
        f"container {ctr}": [missing, f"image {image}: layer {base}: image layer is missing"],
    }
    assert res.rc == 1 and res.err == counts_line(layers=2, images=1, containers=1)


def test_unreferenced_layers_and_max_age(cli: CLI) -> None:
    healthy_store(cli)
    lone = layer_with(cli, {"d/x": b"x"})
    child = new_layer(cli, lone)
    assert cli("check").rc == 0
    res = cli("check", "--max", "0")
    assert report_of(res) == {
        f"layer {lone}": [f"layer {lone}: layer not referenced by any images or containers"],
        f"layer {child}": [f"layer {child}: layer not referenced by any images or containers"],
    }
    assert res.rc == 1 and res.err == counts_line(layers=2)
    assert cli("check", "-m", "1h").rc == 0
    res = cli("check", "-m", "0", "-r")
    assert (res.rc, res.err) == (0, "")
    assert cli("layer", lone).rc != 0 and cli("layer", child).rc != 0
    assert cli("check", "-m", "0").rc == 0


def test_container_data_and_missing_image(cli: CLI) -> None:
    _base, _top, image, ctr = healthy_store(cli)
    (cli.records("containers") / ctr / "state").unlink()
    edit_records(cli, "images", lambda records: records.clear())
    res = cli("check")
    assert report_of(res) == {
        f"container {ctr}": [f'container {ctr}: data item "state": container data item is missing', f"image {image}: image missing"]
    }
    assert res.rc == 1 and res.err == counts_line(containers=1)
    res = cli("check", "-r")
    assert res.rc == 1 and res.err == "0 read-only layer errors, 0 read-only image errors, 1 container errors\n"
    assert cli("container", ctr).rc == 0
    res = cli("check", "-f", "-j")
    assert res.rc == 0 and res.err == ""
    assert json.loads(res.out)["Containers"] == {ctr: [{}, {}]}
    assert cli("container", ctr).rc != 0


# ---- check 2: the mounted tree against the tree the diffs imply -------------------------------

MTIME = 1_600_000_000
ARROW = "\uffeb"
Member = tuple[str, bytes, int, bytes, str]  # name, type, mode, data, linkname


def tar_members(members: list[Member], owners: dict[str, tuple[int, int]] | None = None) -> bytes:
    """An uncompressed tar of ``(name, type, mode, data, linkname)`` members (mtime ``MTIME``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, data, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, MTIME, link
            info.uid, info.gid = (owners or {}).get(name, (0, 0))
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


BASE_MEMBERS: list[Member] = [
    ("d", tarfile.DIRTYPE, 0o755, b"", ""),
    ("d/f", tarfile.REGTYPE, 0o644, b"hello\n", ""),
    ("d/h", tarfile.LNKTYPE, 0o644, b"", "d/f"),
    ("d/s", tarfile.SYMTYPE, 0o777, b"", "f"),
    ("d/e", tarfile.REGTYPE, 0o644, b"", ""),
    ("d/t", tarfile.REGTYPE, 0o640, b"t", ""),
    ("o", tarfile.DIRTYPE, 0o755, b"", ""),
    ("o/x", tarfile.REGTYPE, 0o644, b"x", ""),
    ("gone", tarfile.REGTYPE, 0o644, b"bye", ""),
]
TOP_MEMBERS: list[Member] = [
    ("d", tarfile.DIRTYPE, 0o755, b"", ""),
    ("d/g", tarfile.REGTYPE, 0o600, b"world\n", ""),
    (".wh.gone", tarfile.REGTYPE, 0o644, b"", ""),
    ("o", tarfile.DIRTYPE, 0o700, b"", ""),
    ("o/.wh..wh..opq", tarfile.REGTYPE, 0o644, b"", ""),
    ("o/y", tarfile.REGTYPE, 0o644, b"y", ""),
    ("o/z", tarfile.LNKTYPE, 0o644, b"", "o/y"),
]


def layer_chain(cli: CLI) -> tuple[str, str]:
    """A base layer (files, dirs, a symlink, a hard link, an owned file) and a child layer with
    a whiteout, an opaque directory and a hard link, both applied with ``applydiff``."""
    base = new_layer(cli)
    cli.ok("applydiff", base, stdin=tar_members(BASE_MEMBERS, {"gone": (5, 6), "d/t": (3, 4)}))
    top = new_layer(cli, base)
    cli.ok("applydiff", top, stdin=tar_members(TOP_MEMBERS))
    return base, top


def test_healthy_layer_chain_matches_its_diffs(cli: CLI) -> None:
    _base, top = layer_chain(cli)
    path = Path(cli.ok("mount", top).strip())
    try:
        assert sorted(p.name for p in (path / "o").iterdir()) == ["y", "z"]
        assert not (path / "gone").exists() and (path / "d" / "f").is_file()
    finally:
        cli.ok("unmount", top)
    for args in ((), ("-q",), ("-r",)):
        res = cli("check", *args)
        assert (res.rc, res.out, res.err) == (0, "", ""), args


def test_modified_layer_content_is_reported_and_repaired(cli: CLI) -> None:
    base, top = layer_chain(cli)
    path = Path(cli.ok("mount", top).strip())
    try:
        (path / "d" / "g").chmod(0o644)
        os.lchown(path / "o" / "y", 7, 8)
        os.utime(path / "d" / "t", (1_700_000_000, 1_700_000_000))
        (path / "added").write_bytes(b"new")
        (path / "d" / "e").unlink()
        (path / "d" / "s").unlink()
        (path / "d" / "s").mkdir()
        (path / "d" / "s" / "in").write_bytes(b"")
        os.utime(path / "d", (MTIME, MTIME))
    finally:
        cli.ok("unmount", top)
    res = cli("check")
    diffs = [
        "+/added",
        "-/d/e",
        f"/d/g(mode:-rw-------{ARROW}-rw-r--r--)",
        "-/d/s",
        "+/d/s",
        "+/d/s/in",
        f"/d/t(mtime:0x5f5e1000{ARROW}0x6553f100)",
        f"/o/y(uid:0{ARROW}7,gid:0{ARROW}8)",
        f"/o/z(uid:0{ARROW}7,gid:0{ARROW}8)",
    ]
    assert report_of(res) == {f"layer {top}": [f"layer {top}: {diff}, layer content modified" for diff in diffs]}
    assert res.rc == 1 and res.err == counts_line(layers=1)
    res = cli("check", "-q")
    assert (res.rc, res.out, res.err) == (0, "", "")
    res = cli("check", "-r")
    assert (res.rc, res.err) == (0, "")
    assert cli("layer", top).rc != 0 and cli("layer", base).rc == 0
    assert cli("check").rc == 0


def test_changed_owner_in_base_layer_is_reported_for_its_children_too(cli: CLI) -> None:
    base, top = layer_chain(cli)
    image = new_image(cli, top)
    for layer in (base, top):
        path = Path(cli.ok("mount", layer).strip())
        try:
            os.lchown(path / "d" / "t", 0, 0)
        finally:
            cli.ok("unmount", layer)
    res = cli("check")
    diff = f"/d/t(uid:3{ARROW}0,gid:4{ARROW}0), layer content modified"
    errors = {layer: [f"layer {layer}: {diff}"] for layer in (base, top)}
    assert report_of(res) == {f"layer {base}": errors[base], f"layer {top}": errors[top], f"image {image}": errors[top] + errors[base]}
    assert res.rc == 1 and res.err == counts_line(layers=2, images=1)


@pytest.mark.parametrize("driver_name", [d for d in DRIVERS if d != "btrfs"])  # btrfs has no such option
def test_ignore_chown_errors_ignores_ownership(cli: CLI) -> None:
    _base, top = layer_chain(cli)
    path = Path(cli.ok("mount", top).strip())
    try:
        os.lchown(path / "d" / "g", 9, 9)
        (path / "d" / "g").chmod(0o604)
    finally:
        cli.ok("unmount", top)
    res = cli("--storage-opt", f"{cli.driver}.ignore_chown_errors=true", "check")
    diff = f"/d/g(mode:-rw-------{ARROW}-rw----r--), layer content modified"
    assert report_of(res) == {f"layer {top}": [f"layer {top}: {diff}"]}
    assert res.rc == 1
    res = cli("check")
    diff = f"/d/g(uid:0{ARROW}9,gid:0{ARROW}9,mode:-rw-------{ARROW}-rw----r--), layer content modified"
    assert report_of(res) == {f"layer {top}": [f"layer {top}: {diff}"]}
