"""End-to-end generic commands through our CLI (a subprocess): layer big data, names across the
three kinds (with image names-history), metadata, exists, unchecked delete and wipe."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cs_testlib import CLI, first_line


def make_all(cli: CLI) -> tuple[str, str, str]:
    """A layer, an image on it and a container on the image, all named ``same``-ish."""
    layer = first_line(cli.ok("create-layer", "-n", "L"))
    image = first_line(cli.ok("create-image", "-n", "I", "-m", "image meta", layer))
    ctr = first_line(cli.ok("create-container", "-n", "C", "-m", "ctr meta\n", image))
    return layer, image, ctr


def test_layer_data_commands(cli: CLI, tmp_path: Path) -> None:
    layer = first_line(cli.ok("create-layer", "-n", "base"))
    assert cli.ok("list-layer-data", "base") == ""
    assert json.loads(cli.ok("list-layer-data", "--json", "base")) is None
    cli.ok("set-layer-data", "base", "big-item-1", stdin=b"xyz")
    src = tmp_path / "src"
    src.write_bytes(b"\x00datafile\xff")
    cli.ok("setlayerdata", "-f", str(src), layer, "datafile")
    assert cli.ok("list-layer-data", layer) == "big-item-1\ndatafile\n"
    assert json.loads(cli.ok("listlayerdata", "-j", "base")) == ["big-item-1", "datafile"]
    assert cli("get-layer-data", "base", "datafile").raw == b"\x00datafile\xff"
    dest = tmp_path / "dest"
    cli.ok("getlayerdata", "-f", str(dest), "base", "big-item-1")
    assert dest.read_bytes() == b"xyz"
    assert sorted(os.listdir(cli.records("layers") / layer)) == ["=YmlnLWl0ZW0tMQ==", "datafile"]
    record = json.loads(cli.ok("layer", "--json", layer))[0]
    assert record["big-data-names"] == ["big-item-1", "datafile"]
    res = cli("get-layer-data", "base", "nope")
    assert res.rc == 1 and res.err == f'locating item named "nope" for layer with ID "{layer}": file does not exist\n'
    res = cli("get-layer-data", "nosuch", "k")
    assert (res.rc, res.err) == (1, "layer not known\n")
    res = cli("list-layer-data", "nosuch")
    assert (res.rc, res.err) == (1, "layer not known\n")
    res = cli("set-layer-data", "nosuch", "k", stdin=b"")
    assert (res.rc, res.err) == (1, 'locating layer with ID "nosuch" to write bigdata: layer not known\n')


def test_names_across_kinds(cli: CLI) -> None:
    layer, image, ctr = make_all(cli)
    # The same name may be used by a layer, an image and a container at once.
    for ref in (layer, image, ctr):
        cli.ok("add-names", "-n", "shared", ref)
    assert cli.ok("get-names", layer) == "shared\nL\n"
    assert cli.ok("get-names", image) == "shared\nI\n"
    assert cli.ok("getnames", ctr) == "shared\nC\n"
    # Lookup order for "any kind": layers first.
    assert cli.ok("get-names", "shared") == "shared\nL\n"
    assert json.loads(cli.ok("set-names", "--json", "-n", "C2", "-n", "C3", "C")) == ["C2", "C3"]
    assert json.loads(cli.ok("removenames", "-j", "-n", "C2", ctr)) == ["C3"]
    assert json.loads(cli.ok("container", "--json", ctr))[0]["names"] == ["C3"]
    # Names move between items of the same kind (stealing).
    other = first_line(cli.ok("create-image", "-n", "other"))
    assert cli.ok("add-names", "-n", "I", other) == ""
    assert cli.ok("get-names", image) == "shared\n"
    assert json.loads(cli.ok("image", "--json", other))[0]["names"] == ["I", "other"]
    res = cli("set-names", "-n", "x", "nosuch")
    assert (res.rc, res.err) == (1, "layer not known\n")


def test_image_names_history(cli: CLI) -> None:
    image = first_line(cli.ok("create-image", "-n", "first"))
    assert "names-history" not in json.loads(cli.ok("image", "--json", image))[0]
    cli.ok("set-names", "-n", "a:1", "-n", "b:2", image)
    cli.ok("set-names", "-n", "c:3", "-n", "a:1", image)
    record = json.loads(cli.ok("image", "--json", image))[0]
    assert record["names"] == ["c:3", "a:1"] and record["names-history"] == ["a:1", "c:3", "b:2"]
    cli.ok("add-names", "-n", "d:4", image)
    record = json.loads(cli.ok("image", "--json", image))[0]
    assert record["names"] == ["d:4", "c:3", "a:1"] and record["names-history"] == ["a:1", "c:3", "d:4", "b:2"]
    assert json.loads(cli.ok("set-names", "--json", image)) is None
    assert "names" not in json.loads(cli.ok("image", "--json", image))[0]


def test_metadata_all_kinds(cli: CLI, tmp_path: Path) -> None:
    layer, image, ctr = make_all(cli)
    res = cli("metadata", "L", "I", "C", "nosuch")
    assert res.rc == 1 and res.out == "L: \nI: image meta\nC: ctr meta\nnosuch: \n"
    assert cli("metadata", "-q", "I", "C").out == "image meta\nctr meta\n"
    res = cli("metadata", "--json", "I", "C", "nosuch")
    assert res.rc == 1 and json.loads(res.out) == {"C": "ctr meta", "I": "image meta"}
    meta = tmp_path / "m"
    meta.write_text("two\nlines\n\n")
    for ref in (layer, image, ctr):
        cli.ok("set-metadata", "-f", str(meta), ref)
        assert cli.ok("metadata", "-q", ref) == "two\nlines\n\n"
    cli.ok("setmetadata", "-m", "short", "C")
    assert json.loads(cli.ok("container", "--json", "C"))[0]["metadata"] == "short"
    res = cli("set-metadata", "-m", "x", "nosuch")
    assert (res.rc, res.err) == (1, "identifier is not a layer, image, or container\n")
    res = cli("set-metadata", "C")
    assert (res.rc, res.err) == (1, "no new metadata provided\n")


def test_exists_typed(cli: CLI) -> None:
    make_all(cli)
    assert cli("exists", "L", "I", "C").out == "L: true\nI: true\nC: true\n"
    assert cli("exists", "-l", "L").rc == 0
    res = cli("exists", "-i", "L")
    assert (res.rc, res.out) == (1, "L: true\n")
    assert cli("exists", "-c", "C").rc == 0 and cli("exists", "-i", "-c", "C").rc == 1
    res = cli("exists", "--json", "-q", "I", "nosuch")
    assert res.rc == 1 and json.loads(res.out) == {"I": True, "nosuch": False}
    assert cli("exists", "-q", "nosuch").out == ""


def test_unchecked_delete(cli: CLI) -> None:
    layer, image, ctr = make_all(cli)
    ctr_layer = json.loads(cli.ok("container", "--json", ctr))[0]["layer"]
    userdata = cli.ok("get-container-dir", ctr).strip()
    run_userdata = cli.ok("get-container-run-dir", ctr).strip()
    # Layers in use are deleted anyway by "delete" (no safety checks) ...
    assert cli("delete-layer", ctr_layer).err == (
        f"{ctr_layer}: layer {ctr_layer} used by container {ctr}: layer is in use by a container\n")
    res = cli("delete", "C")
    assert (res.rc, res.out, res.err) == (0, "", "")
    assert not os.path.exists(userdata) and not os.path.exists(run_userdata)
    assert ctr_layer not in cli.driver_layers()
    # ... an image loses only its record ...
    assert cli("delete-layer", layer).err == f"{layer}: layer {layer} used by image {image}: layer is in use by an image\n"
    cli.ok("delete", "I")
    assert cli.ok("images") == "" and cli.ok("layers", "-q") == f"{layer}\n"
    # ... and a layer with children goes.
    child = first_line(cli.ok("create-layer", "L"))
    assert cli("delete-layer", "L").err == f"L: used by layer {child}: layer has children\n"
    res = cli("delete", "--json", "L", "nosuch")
    assert res.rc == 1 and json.loads(res.out) == {"L": "", "nosuch": "layer not known"}
    assert cli.ok("layers", "-q") == f"{child}\n"
    res = cli("delete", "nosuch")
    assert (res.rc, res.err) == (1, "nosuch: layer not known\n")


def test_wipe(cli: CLI, go_cli: CLI) -> None:
    make_all(cli)
    first_line(cli.ok("create-container", "--volatile", ""))
    cli.ok("create-storage-layer", "--id", "driveronly")
    res = cli("wipe")
    assert (res.rc, res.out, res.err) == (0, "", "")
    for kind in ("layers", "images", "containers"):
        assert cli.ok(kind) == "" and go_cli.ok(kind) == ""
    assert cli.driver_layers() == []
    assert (cli.records("layers") / "layers.json").read_text() == "[]"
    assert cli.ok("wipe", "--json") == '""\n'
