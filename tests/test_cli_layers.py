"""End-to-end layer commands through our CLI (a subprocess), text and --json, error paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cs_testlib import CLI, new_layer


def test_create_layer_text_and_json(cli: CLI) -> None:
    res = cli("create-layer", "-n", "base", "--name", "alias")
    assert res.rc == 0 and res.err == ""
    layer_id, *rest = res.out.split("\n")
    assert len(layer_id) == 64 and rest == ["\tbase", "\talias", ""]
    assert cli.driver_layers() == [layer_id]
    child = json.loads(cli.ok("create-layer", "--json", "-n", "child", "base"))
    assert list(child)[:3] == ["id", "names", "parent"] and child["parent"] == layer_id
    on_disk = (cli.records("layers") / "layers.json").read_text()
    assert on_disk.startswith('[{"id":"') and not on_disk.endswith("\n")


def test_layers_listing_tree_and_json(cli: CLI) -> None:
    assert json.loads(cli.ok("layers", "--json")) in (None, [])
    base = new_layer(cli, "-n", "base")
    mid = new_layer(cli, "-n", "mid", base)
    other = new_layer(cli)
    text = cli.ok("layers")
    assert text == f"{base}\n\tname: base\n{mid}\n\tname: mid\n{other}\n"
    tree = cli.ok("layers", "-t")
    assert tree.splitlines() == ["(base)", f"├─{base}", "│ name: base", f"│ └─{mid}", "│   name: mid", f"└─{other}"]
    records = json.loads(cli.ok("layers", "--json"))
    assert [r["id"] for r in records] == [base, mid, other]


def test_layer_lookup_by_name_prefix_and_unknown(cli: CLI) -> None:
    base = new_layer(cli, "-n", "base")
    child = new_layer(cli, "-n", "kid", base)
    out = cli.ok("layer", "kid")
    assert out == f"ID: {child}\nParent: {base}\nName: kid\n"
    assert cli.ok("layer", child[:12]).startswith(f"ID: {child}\n")
    res = cli("layer", "nosuch")
    assert res.rc == 1 and res.out == "" and "Traceback" not in res.err
    assert json.loads(cli("layer", "--json", "nosuch").out) == []


def test_duplicate_name_and_unknown_parent_errors(cli: CLI) -> None:
    new_layer(cli, "-n", "taken")
    res = cli("create-layer", "-n", "taken")
    assert res.rc == 1 and res.err.strip() == "that name is already in use"
    res = cli("create-layer", "nosuchparent")
    assert res.rc == 1 and "layer not known" in res.err
    assert len(json.loads(cli.ok("layers", "--json"))) == 1


def test_names_commands(cli: CLI) -> None:
    a = new_layer(cli, "-n", "a")
    b = new_layer(cli, "-n", "b")
    assert cli.ok("add-names", "-n", "x", "-n", "a", b) == ""
    assert cli.ok("get-names", b) == "x\na\nb\n"
    assert cli.ok("get-names", a) == ""
    assert json.loads(cli.ok("get-names", "--json", a)) == []
    assert json.loads(cli.ok("set-names", "--json", "-n", "only", b)) == ["only"]
    assert json.loads(cli.ok("remove-names", "--json", "-n", "only", b)) is None
    res = cli("get-names", "nothing")
    assert res.rc == 1 and res.err.strip() == "layer not known"


def test_metadata_exists_and_delete(cli: CLI, tmp_path: Path) -> None:
    layer = new_layer(cli, "-n", "m")
    assert cli("set-metadata", "m").err.strip() == "no new metadata provided"
    cli.ok("set-metadata", "-m", "danger", "m")
    assert cli.ok("metadata", "-q", "m") == "danger\n"
    meta = tmp_path / "meta"
    meta.write_text("file-wins\n")
    cli.ok("set-metadata", "-m", "ignored", "-f", str(meta), layer)
    assert cli.ok("metadata", "m") == "m: file-wins\n"
    assert cli("exists", "m").rc == 0
    assert cli("exists", "-i", "m").rc == 1
    assert json.loads(cli("exists", "--json", "m", "zz").out) == {"m": True, "zz": False}
    assert cli("exists", "-q", "zz").out == ""
    res = cli("delete-layer", "nosuch")
    assert res.rc == 1 and res.err.strip() == "nosuch: identifier is not a layer"
    assert cli("delete-layer", "m").rc == 0
    assert layer not in cli.driver_layers()
    assert cli("exists", layer).rc == 1


def test_mount_unmount_mounted(cli: CLI) -> None:
    layer = new_layer(cli, "-n", "mnt")
    path = cli.ok("mount", "mnt").strip()
    assert path == str(cli.mount_path(layer)) and os.path.isdir(path)
    assert cli.ok("mount", "mnt").strip() == path
    assert cli.ok("mounted", "mnt") == "mnt mounted\n"
    mp = json.loads((cli.run_records("layers") / "mountpoints.json").read_text())
    assert mp == [{"id": layer, "path": path, "count": 2}]
    assert cli.ok("unmount", "mnt") == ""
    assert cli.ok("unmount", "mnt") == "mnt mountpoint unmounted\n"
    assert cli.ok("mounted", "mnt") == ""
    assert cli("unmount", "nosuch").rc == 1
    res = cli("mount", "--option", "nosuid", "mnt")
    assert res.rc != 0


def test_status_version_on_stderr(cli: CLI) -> None:
    res = cli("status")
    assert res.rc == 0 and res.out == ""
    assert res.err.splitlines()[:4] == [
        f"Root: {cli.graph}",
        f"Run Root: {cli.run}",
        f"Driver Name: {cli.driver}",
        "Driver Options: []",
    ]
    assert json.loads(cli.ok("status", "--json"))[:3] == [["Root", str(cli.graph)], ["Run Root", str(cli.run)], ["Driver Name", cli.driver]]
    res = cli("version")
    assert res.out == "" and res.err == "Version: 1.60.0-dev\n"


def test_wipe_and_shutdown(cli: CLI) -> None:
    base = new_layer(cli, "-n", "base")
    new_layer(cli, base)
    cli.ok("mount", "base")
    res = cli("shutdown")
    assert res.rc == 1 and res.err.strip() == "shutdown: a layer is mounted: layer is in use by a container"
    assert cli("shutdown", "--json").out.strip() == "{}"
    res = cli("shutdown", "-f")
    assert res.rc == 1 and "a layer is mounted" in res.err
    assert cli.ok("mounted", "base") == ""
    assert cli.ok("shutdown", "--json").strip() == '""'
    assert cli.ok("wipe") == ""
    assert (cli.records("layers") / "layers.json").read_text() == "[]"
    assert cli.driver_layers() == []


def test_bad_options_fail_cleanly(cli: CLI) -> None:
    res = cli("--storage-opt", f"{cli.driver}.bogus=1", "layers")
    expected = {
        "vfs": "vfs driver does not support vfs.bogus options",
        "overlay": "overlay: unknown option overlay.bogus",
        "btrfs": "unknown option btrfs.bogus",
    }[cli.driver]
    assert res.rc == 1 and res.out.strip() == f"error initializing: {expected}"
    res = cli("--storage-opt", "novalue", "layers")
    assert res.rc == 1 and "unable to parse key/value option: novalue" in res.out
    res = cli("layers", "--bogus")
    assert res.rc == 125 and "flag provided but not defined: --bogus" in res.err
    assert "Traceback" not in res.err + res.out


def test_yaml_backend_keeps_every_command_working(cli: CLI, tmp_path: Path) -> None:
    conf = tmp_path / "storage.yaml"
    conf.write_text("metadata: yaml\n")
    cli.env["CONTAINERS_STORAGE_CONFIG"] = str(conf)
    base = new_layer(cli, "-n", "ybase")
    new_layer(cli, "-n", "ychild", "ybase")
    assert (cli.records("layers") / "layers.yaml").exists()
    assert not (cli.records("layers") / "layers.json").exists()
    assert "ychild" in (cli.records("layers") / "layers.yaml").read_text()
    assert cli.ok("layer", "ychild").startswith("ID: ")
    cli.ok("add-names", "-n", "more", "ybase")
    assert cli.ok("get-names", base) == "more\nybase\n"
    cli.ok("set-metadata", "-m", "md", base)
    assert cli.ok("metadata", "-q", base) == "md\n"
    assert cli.ok("mount", base).strip() == str(cli.mount_path(base))
    assert cli.ok("unmount", base) == f"{base} mountpoint unmounted\n"
    assert cli("delete-layer", "ychild").rc == 0
    assert [r["id"] for r in json.loads(cli.ok("layers", "--json"))] == [base]
    assert cli.ok("wipe") == ""


def test_invalid_config_is_one_clear_line(cli: CLI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("driver: [x]\n")
    cli.env["CONTAINERS_STORAGE_CONFIG"] = str(bad)
    res = cli("layers")
    assert res.rc == 1 and res.out == f"error initializing: {bad}: key 'driver': expected a string, got list\n"
    bad.write_text("metadata: toml\n")
    res = cli("layers")
    assert res.rc == 1 and "unknown metadata backend 'toml'" in res.out and "installed: json, yaml" in res.out
    assert res.err == "" and not (cli.graph / f"{cli.driver}-layers").exists()
