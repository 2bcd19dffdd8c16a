"""The yaml metadata backend: every kind of record kept in YAML, every everyday command working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cs_testlib import CLI


@pytest.mark.parametrize("driver_name", ["vfs"])
def test_images_and_containers_on_yaml(cli: CLI, tmp_path: Path) -> None:
    conf = tmp_path / "storage.yaml"
    conf.write_text("metadata: yaml\n")
    cli.env["CONTAINERS_STORAGE_CONFIG"] = str(conf)
    layer = cli.ok("create-layer", "-n", "base").split("\n")[0]
    image = cli.ok("create-image", "-n", "img:1", "-m", "meta <&>", "base").split("\n")[0]
    cli.ok("set-image-data", "-f", "/dev/null", "img:1", "empty")
    cli.ok("set-image-data", "img:1", "manifest", stdin=b'{"schemaVersion":2}')
    digest = cli.ok("get-image-data-digest", "img:1", "manifest").strip()
    assert cli.ok("images-by-digest", "-q", digest) == f"{image}\n"
    assert cli.ok("image", "img:1").startswith(f"ID: {image}\nName: img:1\nTop Layer: {layer}\n")
    container = cli.ok("create-container", "-n", "ctr", "img:1").split("\n")[0]
    cli.ok("set-container-data", "ctr", "config.json", stdin=b"{}")
    assert cli.ok("get-container-data", "ctr", "config.json") == "{}"
    assert cli.ok("container", "ctr").startswith(f"ID: {container}\nName: ctr\nImage: {image}\n")
    cli.ok("add-names", "-n", "img:2", "img:1")

    images = yaml.safe_load((cli.records("images") / "images.yaml").read_text())
    assert images[0]["id"] == image and images[0]["names"] == ["img:2", "img:1"]
    assert images[0]["metadata"] == "meta <&>" and images[0]["digest"] == digest
    assert images[0]["big-data-sizes"] == {"empty": 0, "manifest": 19}
    containers = yaml.safe_load((cli.records("containers") / "containers.yaml").read_text())
    assert containers[0]["id"] == container and containers[0]["image"] == image
    assert not (cli.records("images") / "images.json").exists()
    assert not (cli.records("containers") / "containers.json").exists()

    assert cli("delete-image", "img:1").rc == 1
    cli.ok("delete-container", "ctr")
    assert cli("delete-image", "img:2").rc == 0
    assert json.loads(cli.ok("images", "--json")) in (None, [])
    assert cli.ok("wipe") == ""
