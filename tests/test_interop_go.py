"""One store shared with Debian's Go containers-storage: each side reads what the other wrote."""

from __future__ import annotations

import json

from cs_testlib import CLI


def test_go_reads_layers_we_create(cli: CLI, go_cli: CLI) -> None:
    base = cli.ok("create-layer", "-n", "base").split("\n")[0]
    child = cli.ok("create-layer", "-n", "child", "base").split("\n")[0]
    res = go_cli("layer", "base")
    assert res.rc == 0 and res.out == f"ID: {base}\nName: base\n"
    assert go_cli.ok("layer", "child") == f"ID: {child}\nParent: {base}\nName: child\n"
    assert go_cli.ok("layers", "--json") == cli.ok("layers", "--json")
    assert go_cli.ok("get-names", child) == "child\n"


def test_we_read_layers_go_creates(cli: CLI, go_cli: CLI) -> None:
    base = go_cli.ok("create-layer", "-n", "gobase").split("\n")[0]
    child = go_cli.ok("create-layer", "-n", "gochild", base).split("\n")[0]
    assert cli.ok("layer", "gobase") == f"ID: {base}\nName: gobase\n"
    assert cli.ok("layer", "gochild") == f"ID: {child}\nParent: {base}\nName: gochild\n"
    assert cli.ok("layers", "--json") == go_cli.ok("layers", "--json")


def test_mixed_writes_keep_one_consistent_store(cli: CLI, go_cli: CLI) -> None:
    ours = cli.ok("create-layer", "-n", "ours").split("\n")[0]
    theirs = go_cli.ok("create-layer", "-n", "theirs", "ours").split("\n")[0]
    cli.ok("add-names", "-n", "renamed", theirs)
    assert go_cli.ok("get-names", theirs) == "renamed\ntheirs\n" or go_cli.ok("get-names", theirs) == "theirs\nrenamed\n"
    cli.ok("set-metadata", "-m", "from python", ours)
    assert go_cli.ok("metadata", "-q", ours) == "from python\n"
    go_cli.ok("set-names", "-n", "moved", ours)
    assert cli.ok("get-names", ours) == "moved\n"
    path = cli.ok("mount", theirs).strip()
    assert go_cli.ok("mounted", theirs) == f"{theirs} mounted\n"
    assert json.loads((cli.run_records("layers") / "mountpoints.json").read_text())[0]["path"] == path
    assert go_cli.ok("unmount", theirs) == f"{theirs} mountpoint unmounted\n"
    assert cli.ok("mounted", theirs) == ""
    assert go_cli("delete-layer", ours).rc == 1
    assert cli.ok("delete-layer", theirs) == ""
    assert go_cli.ok("layers", "--json") == cli.ok("layers", "--json")
    assert [r["id"] for r in json.loads(cli.ok("layers", "--json"))] == [ours]


def test_lock_token_written_in_go_format(cli: CLI, go_cli: CLI) -> None:
    cli.ok("create-layer")
    token = (cli.records("layers") / "layers.lock").read_bytes()
    assert len(token) == 64
    go_cli.ok("create-layer")
    assert (cli.records("layers") / "layers.lock").read_bytes() != token
    assert len(json.loads(cli.ok("layers", "--json"))) == 2
