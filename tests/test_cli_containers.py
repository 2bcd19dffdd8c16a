"""End-to-end container commands through our CLI (a subprocess): create-container, containers,
container, delete-container, the container data commands and directories, ID-mapped containers
(mapped top layers), text and --json, error texts, and the Go CLI reading the same store."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from cs_testlib import CLI, DRIVERS, first_line, new_container, new_image, new_layer

MAP = "0:100000:65536"
GMAP = "0:200000:65536"


def copy_instead_of_shifting(cli: CLI) -> CLI:
    """Have overlay make mapped copies like the other drivers (no ID-mapped lowers, as Go HEAD)."""
    cli.env["_CONTAINERS_OVERLAY_DISABLE_IDMAP"] = "yes"
    return cli


def shifting_supported(cli: CLI) -> bool:
    return "Supports shifting: true" in cli("status").err


def records(cli: CLI, kind: str) -> list[dict[str, object]]:
    return json.loads(cli.ok(kind, "--json")) or []


def test_create_container_text_and_json(cli: CLI, tmp_path: Path) -> None:
    base = new_layer(cli, "-n", "base")
    img = new_image(cli, "-n", "img", base)
    res = cli("create-container", "-n", "c1", "--name", "c2", "-n", "c1", "img")
    assert res.rc == 0 and res.err == ""
    ctr_id, *rest = res.out.split("\n")
    assert len(ctr_id) == 64 and rest == ["\tc1", "\tc2", ""]
    meta = tmp_path / "meta"
    meta.write_text("file meta")
    record = json.loads(cli.ok("create-container", "--json", "-i", "myctr", "-n", "c3", "-m", "x", "-f", str(meta), img))
    assert list(record) == ["id", "names", "image", "layer", "metadata", "created", "flags"]
    assert record["id"] == "myctr" and record["image"] == img and record["metadata"] == "file meta"
    assert record["flags"] == {"MountLabel": "", "ProcessLabel": ""}
    layer = json.loads(cli.ok("layer", "--json", str(record["layer"])))[0]
    assert layer["parent"] == base
    volatile = json.loads(cli.ok("createcontainer", "-j", "--volatile", ""))
    assert volatile["image"] == "" and volatile["flags"] == {"MountLabel": "", "ProcessLabel": "", "Volatile": True}
    assert "parent" not in json.loads(cli.ok("layer", "--json", str(volatile["layer"])))[0]
    stable = json.loads((cli.records("containers") / "containers.json").read_text())
    assert [c["id"] for c in stable] == [ctr_id, "myctr"]
    assert [c["id"] for c in json.loads((cli.records("containers") / "volatile-containers.json").read_text())] == [
        volatile["id"]]
    assert [c["id"] for c in records(cli, "containers")] == [ctr_id, "myctr", volatile["id"]]


def test_create_container_errors(cli: CLI) -> None:
    new_image(cli, "-n", "img")
    first = new_container(cli, "-n", "taken", "-i", "fixed", "img")
    res = cli("create-container", "-n", "free", "-n", "taken", "img")
    assert res.rc == 1 and res.out == ""
    assert res.err == (f'the container name "taken" is already in use by {first}. You have to remove that container '
                       "to be able to reuse that name: that name is already in use\n")
    res = cli("create-container", "-i", "fixed", "img")
    assert res.rc == 1 and res.err == "that ID is already in use\n"
    res = cli("create-container", "nosuch")
    assert res.rc == 1 and res.err == 'locating image with ID "nosuch": image not known\n'
    res = cli("create-container")
    assert res.rc == 1 and res.out.startswith("create-container: more arguments required.\n")
    res = cli("create-container", "--uidmap", "0:1", "img")
    assert res.rc == 1
    assert res.err == 'initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: ["0:1"]\n'
    res = cli("create-container", "--hostuidmap", "--uidmap", MAP, "img")
    assert res.rc == 1 and res.err == "host uid map specified along with UID mapping\n"
    # Failed creations leave no layers or containers behind.
    assert [c["id"] for c in records(cli, "containers")] == ["fixed"]
    assert len(records(cli, "layers")) == 1


def test_containers_and_container(cli: CLI) -> None:
    assert cli.ok("containers") == "" and json.loads(cli.ok("containers", "--json")) == []
    base = new_layer(cli)
    img = new_image(cli, "-n", "img", "-n", "img:2", base)
    a = new_container(cli, "-n", "a", "-n", "a2", "img")
    b = new_container(cli, "")
    cli.ok("set-container-data", b, "config.json", stdin=b"{}")
    assert cli.ok("containers") == f"{a}\n\tname: a\n\tname: a2\n{b}\n\tdata: config.json\n"
    layer_a = json.loads(cli.ok("container", "--json", "a"))[0]["layer"]
    assert cli.ok("container", "a") == (
        f"ID: {a}\nName: a\nName: a2\nImage: {img}\nImage name: img\nImage name: img:2\nSize: 0\nLayer: {layer_a}\n")
    layer_b = json.loads(cli.ok("container", "--json", b))[0]["layer"]
    assert cli.ok("container", b) == f"ID: {b}\nImage: \nSize: 2\nLayer: {layer_b}\nData: config.json\n"
    # Lookup by the container's layer ID and by ID prefix.
    assert cli.ok("container", layer_a).startswith(f"ID: {a}\n")
    assert cli.ok("container", a[:12]).startswith(f"ID: {a}\n")
    res = cli("container", "a", "nosuch")
    assert res.rc == 1 and res.out.startswith(f"ID: {a}\n") and res.err == ""
    assert json.loads(cli("container", "--json", "nosuch").out) == []
    # The size counts files under the container's directories.
    userdata = cli.ok("get-container-dir", "a").strip()
    Path(userdata, "f").write_bytes(b"x" * 100)
    Path(cli.ok("get-container-run-dir", "a").strip(), "g").write_bytes(b"y" * 10)
    assert "Size: 110" in cli.ok("container", "a").splitlines()


def test_container_data_commands(cli: CLI, tmp_path: Path) -> None:
    ctr = new_container(cli, "-n", "c", "")
    assert cli.ok("list-container-data", "c") == ""
    assert json.loads(cli.ok("list-container-data", "--json", "c")) is None
    cli.ok("set-container-data", "c", "config.json", stdin=b"abc")
    src = tmp_path / "src"
    src.write_bytes(b"from a file")
    cli.ok("setcontainerdata", "-f", str(src), ctr, "Foo")
    assert cli.ok("list-container-data", ctr) == "config.json\nFoo\n"
    assert json.loads(cli.ok("listcontainerdata", "-j", "c")) == ["config.json", "Foo"]
    assert cli("get-container-data", "c", "config.json").raw == b"abc"
    dest = tmp_path / "dest"
    cli.ok("getcontainerdata", "-f", str(dest), "c", "Foo")
    assert dest.read_bytes() == b"from a file"
    assert cli.ok("get-container-data-size", "c", "Foo") == "11\n"
    assert cli.ok("getcontainerdatasize", "c", "config.json") == "3\n"
    assert cli.ok("get-container-data-digest", "c", "config.json") == "sha256:" + hashlib.sha256(b"abc").hexdigest() + "\n"
    assert sorted(os.listdir(cli.records("containers") / ctr)) == ["=Rm9v", "config.json"]
    record = json.loads(cli.ok("container", "--json", "c"))[0]
    assert record["big-data-names"] == ["config.json", "Foo"]
    assert record["big-data-sizes"] == {"Foo": 11, "config.json": 3}


def test_container_data_errors(cli: CLI) -> None:
    ctr = new_container(cli, "-n", "c", "")
    res = cli("get-container-data", "c", "missing")
    assert res.rc == 1
    assert res.err == f"open {cli.records('containers')}/{ctr}/missing: no such file or directory\n"
    assert cli("get-container-data-size", "c", "missing").err == "size is not known\n"
    assert cli("get-container-data-digest", "c", "missing").err == "could not compute digest of item\n"
    for args in (("list-container-data", "nosuch"), ("get-container-data", "nosuch", "k"),
                 ("get-container-data-digest", "nosuch", "k"), ("set-container-data", "nosuch", "k"),
                 ("get-container-dir", "nosuch"), ("get-container-run-dir", "nosuch")):
        res = cli(*args, stdin=b"")
        assert (res.rc, res.out, res.err) == (1, "", "container not known\n"), args


def test_size_and_digest_of_unrecorded_item(cli: CLI) -> None:
    """An item file present on disk but not recorded is recorded when its size is asked for."""
    ctr = new_container(cli, "-n", "c", "")
    data_dir = cli.records("containers") / ctr
    data_dir.mkdir(exist_ok=True)
    (data_dir / "late").write_bytes(b"12345")
    assert cli.ok("get-container-data-size", "c", "late") == "5\n"
    assert cli.ok("get-container-data-digest", "c", "late") == "sha256:" + hashlib.sha256(b"12345").hexdigest() + "\n"
    assert json.loads(cli.ok("container", "--json", "c"))[0]["big-data-sizes"] == {"late": 5}


def test_container_directories_and_delete(cli: CLI) -> None:
    new_image(cli, "-n", "img", new_layer(cli))
    ctr = new_container(cli, "-n", "c", "img")
    layer = json.loads(cli.ok("container", "--json", "c"))[0]["layer"]
    data = cli.ok("get-container-dir", "c").strip()
    run = cli.ok("getcontainerrundir", ctr[:10]).strip()
    assert data == f"{cli.records('containers')}/{ctr}/userdata"
    assert run == f"{cli.run_records('containers')}/{ctr}/userdata"
    for path in (data, run):
        assert os.path.isdir(path) and (os.stat(path).st_mode & 0o777) == 0o700
        Path(path, "file").write_text("x")
    cli.ok("set-container-data", "c", "item", stdin=b"1")
    assert cli.ok("getcontainerdir", "c").strip() == data
    res = cli("delete-container", "c")
    assert (res.rc, res.out, res.err) == (0, "", "")
    assert not (cli.records("containers") / ctr).exists()
    assert not (cli.run_records("containers") / ctr).exists()
    assert layer not in cli.driver_layers()
    assert cli.ok("containers") == ""
    res = cli("delete-container", "c")
    assert (res.rc, res.err) == (1, "c: identifier is not a container\n")
    other = new_container(cli, "")
    res = cli("deletecontainer", "--json", other, "nosuch")
    assert res.rc == 1 and json.loads(res.out) == {other: "", "nosuch": "identifier is not a container"}


def test_mapped_container_gets_mapped_top_layer(cli: CLI) -> None:
    copy_instead_of_shifting(cli)
    base = new_layer(cli, "-n", "base")
    img = new_image(cli, "-n", "img1", base)
    ctr = json.loads(cli.ok("create-container", "--json", "-n", "mc", "--uidmap", MAP, "--gidmap", GMAP, "img1"))
    uidmap = [{"container_id": 0, "host_id": 100000, "size": 65536}]
    gidmap = [{"container_id": 0, "host_id": 200000, "size": 65536}]
    assert ctr["uidmap"] == uidmap and ctr["gidmap"] == gidmap
    image = json.loads(cli.ok("image", "--json", "img1"))[0]
    assert len(image["mapped-layers"]) == 1
    mapped_id = image["mapped-layers"][0]
    mapped = json.loads(cli.ok("layer", "--json", mapped_id))[0]
    assert "parent" not in mapped and mapped["uidmap"] == uidmap and mapped["gidmap"] == gidmap
    if cli.driver == "vfs":
        assert os.stat(cli.mount_path(mapped_id)).st_uid == 100000
    ctr_layer = json.loads(cli.ok("layer", "--json", ctr["layer"]))[0]
    assert ctr_layer["parent"] == mapped_id and ctr_layer["uidmap"] == uidmap
    assert cli.ok("image", "img1").splitlines()[2:4] == [f"Top Layer: {base}", f"Top Layer: {mapped_id}"]
    # A second container with the same maps reuses the mapped layer; host maps use the top layer.
    second = json.loads(cli.ok("create-container", "--json", "--uidmap", MAP, "--gidmap", GMAP, "img1"))
    assert json.loads(cli.ok("layer", "--json", second["layer"]))[0]["parent"] == mapped_id
    third = json.loads(cli.ok("create-container", "--json", "img1"))
    assert json.loads(cli.ok("layer", "--json", third["layer"]))[0]["parent"] == base
    assert json.loads(cli.ok("image", "--json", "img1"))[0]["mapped-layers"] == [mapped_id]
    # The layer listing shows the image on both layers.
    layers_text = cli.ok("layers")
    assert layers_text.count(f"\timage: {img}\n") == 2
    # Deleting the image after its containers removes the mapped layer first, then the top layer.
    for c in (ctr["id"], second["id"], third["id"]):
        cli.ok("delete-container", c)
    res = cli("delete-image", "img1")
    assert (res.rc, res.err.splitlines()) == (0, [f"img1: {mapped_id}", f"img1: {base}"])
    assert cli.ok("layers") == ""


def test_deleting_mapped_layer_updates_image(cli: CLI) -> None:
    copy_instead_of_shifting(cli)
    base = new_layer(cli)
    new_image(cli, "-n", "img", base)
    ctr = new_container(cli, "--uidmap", MAP, "--gidmap", MAP, "img")
    mapped = json.loads(cli.ok("image", "--json", "img"))[0]["mapped-layers"][0]
    cli.ok("delete-container", ctr)
    cli.ok("delete-layer", mapped)
    assert "mapped-layers" not in json.loads(cli.ok("image", "--json", "img"))[0]


def test_image_with_mapped_top_layer_gives_host_copy(cli: CLI) -> None:
    """A container without maps on an image whose top layer is mapped gets a host-mapped copy."""
    base = new_layer(cli, "--uidmap", MAP, "--gidmap", MAP)
    new_image(cli, "-n", "img", base)
    ctr = json.loads(cli.ok("create-container", "--json", "img"))
    assert "uidmap" not in ctr
    mapped = json.loads(cli.ok("image", "--json", "img"))[0]["mapped-layers"]
    assert len(mapped) == 1
    copy = json.loads(cli.ok("layer", "--json", mapped[0]))[0]
    assert "uidmap" not in copy and "gidmap" not in copy
    assert json.loads(cli.ok("layer", "--json", ctr["layer"]))[0]["parent"] == mapped[0]
    assert cli.ok("container-parent-owners", ctr["id"]) == f"ID: {ctr['id']}\nUIDs: []\nGIDs: []\n"


def test_go_cli_reads_our_containers(cli: CLI, go_cli: CLI) -> None:
    base = new_layer(cli)
    img = new_image(cli, "-n", "img", base)
    new_container(cli, "-n", "plain", "-m", "meta", "img")
    new_container(cli, "-n", "mapped", "--uidmap", MAP, "--gidmap", GMAP, "img")
    cli.ok("set-container-data", "plain", "config.json", stdin=b"{}")
    for args in (("containers",), ("containers", "--json"), ("container", "plain"), ("container", "--json", "mapped"),
                 ("image", "--json", img), ("layers",), ("layers", "--json"), ("list-container-data", "plain"),
                 ("get-container-data-digest", "plain", "config.json"), ("get-container-dir", "plain"),
                 ("metadata", "plain")):
        ours, theirs = cli(*args), go_cli(*args)
        assert (ours.rc, ours.out, ours.err) == (theirs.rc, theirs.out, theirs.err), args
    # HEAD keeps volatile containers in volatile-containers.json, which 1.43 does not read.
    volatile = new_container(cli, "--volatile", "")
    assert volatile not in go_cli.ok("containers") and volatile in cli.ok("containers")
    res = go_cli("delete-container", "mapped")
    assert res.rc == 0, res.err
    res = go_cli("delete-image", "img")
    assert res.rc == 1 and "image is in use by a container" in res.err


def test_we_read_go_containers(cli: CLI, go_cli: CLI) -> None:
    base = first_line(go_cli.ok("create-layer"))
    first_line(go_cli.ok("create-image", "-n", "img", base))
    go_cli.ok("create-container", "-n", "c", "--uidmap", MAP, "--gidmap", MAP, "img")
    go_cli.ok("set-container-data", "c", "Foo", stdin=b"data")
    for args in (("containers",), ("container", "c"), ("image", "img"), ("list-container-data", "c"),
                 ("get-container-data-size", "c", "Foo")):
        ours, theirs = cli(*args), go_cli(*args)
        assert (ours.rc, ours.out, ours.err) == (theirs.rc, theirs.out, theirs.err), args
    cli.ok("delete-container", "c")
    # Go made a mapped copy only if the driver cannot shift the maps; both layers go either way.
    left = cli.ok("layers", "-q").split()
    res = cli("delete-image", "img")
    assert res.rc == 0 and sorted(res.err.split()[1::2]) == sorted(left)
    assert go_cli.ok("layers") == "" and go_cli.ok("containers") == ""


def test_delete_image_keeps_top_layer_when_mapped_copy_has_children(cli: CLI) -> None:
    """Like Go: the mapped copy goes, but the top layer stays while the copy has other children."""
    copy_instead_of_shifting(cli)
    base = new_layer(cli)
    new_image(cli, "-n", "img", base)
    ctr = new_container(cli, "--uidmap", MAP, "--gidmap", MAP, "img")
    mapped = json.loads(cli.ok("image", "--json", "img"))[0]["mapped-layers"][0]
    cli.ok("delete-container", ctr)
    new_layer(cli, mapped)
    res = cli("delete-image", "-t", "img")
    assert (res.rc, res.err) == (0, f"img: {mapped}\n")


def _tar_with_owned_file() -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind in (("etc", tarfile.DIRTYPE), ("etc/f", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.uid, info.gid, info.mode = kind, 5, 6, 0o755
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


#: ``etc`` and ``etc/f`` (owned 5:6 in the layer) seen through MAP/GMAP.
SHIFTED = ((100005, 200006), (100005, 200006))


def _owners(mount_point: str) -> tuple[tuple[int, int], tuple[int, int]]:
    st_dir, st_file = os.stat(os.path.join(mount_point, "etc")), os.stat(os.path.join(mount_point, "etc", "f"))
    return (st_dir.st_uid, st_dir.st_gid), (st_file.st_uid, st_file.st_gid)


@pytest.mark.parametrize("driver_name", [d for d in DRIVERS if d == "overlay"])  # the overlay driver's feature
def test_overlay_shifts_mapped_containers_with_idmapped_lowers(cli: CLI, go_cli: CLI) -> None:
    """Like Go on a kernel with ID-mapped mounts: no mapped copies; the lowers are shifted at mount."""
    if os.geteuid() != 0:
        pytest.skip("kernel overlay and ID-mapped mounts need root")
    if not shifting_supported(cli):
        pytest.skip("this kernel cannot use ID-mapped mounts as overlay lowers")
    base = first_line(cli.ok("import-layer", stdin=_tar_with_owned_file()))
    new_image(cli, "-n", "img", base)
    ctr = json.loads(cli.ok("create-container", "--json", "--uidmap", MAP, "--gidmap", GMAP, "img"))
    assert ctr["uidmap"] == [{"container_id": 0, "host_id": 100000, "size": 65536}]
    assert "mapped-layers" not in json.loads(cli.ok("image", "--json", "img"))[0]
    layer = json.loads(cli.ok("layer", "--json", ctr["layer"]))[0]
    assert layer["parent"] == base and "uidmap" not in layer and "gidmap" not in layer
    mount_point = cli.ok("mount", ctr["id"]).strip()
    try:
        assert _owners(mount_point) == SHIFTED
        layer_dir = Path(mount_point).parent
        assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                    if f" {layer_dir}/mapped/" in line], "the ID-mapped binds are detached once mounted"
        assert f"lowerdir={layer_dir}/mapped/0/l/" in Path("/proc/mounts").read_text()
    finally:
        cli.ok("unmount", ctr["id"])
    # The Go CLI mounts our container the same way, and we mount Go's.
    go_mount = go_cli.ok("mount", ctr["id"]).strip()
    try:
        assert _owners(go_mount) == SHIFTED
    finally:
        go_cli.ok("unmount", ctr["id"])
    theirs = first_line(go_cli.ok("create-container", "--uidmap", MAP, "--gidmap", GMAP, "img"))
    assert "mapped-layers" not in json.loads(go_cli.ok("image", "--json", "img"))[0]
    mount_point = cli.ok("mount", theirs).strip()
    try:
        assert _owners(mount_point) == SHIFTED
    finally:
        cli.ok("unmount", theirs)
    # Without ID-mapped lowers the same request gets a mapped copy, owned accordingly on disk.
    copied = json.loads(copy_instead_of_shifting(cli).ok("create-container", "--json", "--uidmap", MAP, "--gidmap", GMAP, "img"))
    assert len(json.loads(cli.ok("image", "--json", "img"))[0]["mapped-layers"]) == 1
    mount_point = cli.ok("mount", copied["id"]).strip()
    try:
        assert _owners(mount_point) == SHIFTED
    finally:
        cli.ok("unmount", copied["id"])


def test_overlapping_container_maps_are_refused(cli: CLI) -> None:
    """cli.md 8.1: containers reject overlapping ranges (layers accept them); nothing is created."""
    img = new_image(cli, "-n", "img", new_layer(cli))
    layers_before = cli.ok("layers", "-q")
    for uidmap, gidmap, bad in (
        ("0:100000:10:5:200000:10", MAP, "5:200000:10"),
        ("0:100000:20:20:100000:5", MAP, "20:100000:5"),
        ("0:1:5", "0:1:5:2:10:3", "2:10:3"),
    ):
        res = cli("create-container", "--uidmap", uidmap, "--gidmap", gidmap, img)
        assert (res.rc, res.err) == (
            1,
            f"the specified UID and/or GID mapping {bad} conflicts with other mappings: invalid mappings specified\n",
        )
    assert cli.ok("containers") == "" and cli.ok("layers", "-q") == layers_before
    assert cli("create-container", "--uidmap", "0:100000:10:10:100010:10", img).rc == 0
    assert cli("create-layer", "--uidmap", "0:100000:10:5:200000:10").rc == 0


def test_parent_owners_of_unmounted_mapped_layer(cli: CLI) -> None:
    layer = new_layer(cli, "--uidmap", MAP, "--gidmap", MAP)
    res = cli("layer-parent-owners", layer)
    assert (res.rc, res.out, res.err) == (1, "", "LayerParentOwner: layer is not mounted\n")
