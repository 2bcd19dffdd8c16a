"""Interop with skopeo and the Go CLI: an OCI image copied into a store we then use and change.

The OCI layout is built here with Python (two layers, the second deleting a file of the first
with a ``.wh.`` whiteout); skopeo writes it into a store through its ``containers-storage``
transport; our CLI reads, mounts, renames it and creates a container on it; then the Go CLI and
skopeo read everything back, and a copy back out to OCI must give the same diff IDs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cs_testlib import CLI, GO_CLI

SKOPEO = shutil.which("skopeo") or ""

pytestmark = [
    pytest.mark.skipif(not SKOPEO, reason="skopeo is not installed (apt-get install skopeo)"),
    pytest.mark.skipif(not GO_CLI, reason="the Go containers-storage CLI is not installed"),
]


def _tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    """An uncompressed tar of ``(name, content)`` entries; ``None`` content = directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _blob(layout: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def build_oci_layout(layout: Path, tag: str) -> list[str]:
    """Write a two-layer OCI image layout; return the diff IDs of its layers."""
    layer1 = _tar([("etc/", None), ("etc/hello", b"hello from layer one\n"), ("etc/doomed", b"to be deleted\n"),
                   ("data/", None), ("data/keep.txt", b"kept\n")])
    layer2 = _tar([("etc/", None), ("etc/.wh.doomed", b""), ("etc/added", b"layer two\n")])
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in (layer1, layer2)]
    layers: list[dict[str, Any]] = []
    for raw in (layer1, layer2):
        compressed = gzip.compress(raw, mtime=0)
        layers.append({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": _blob(layout, compressed),
            "size": len(compressed),
        })
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "layer one"}, {"created_by": "layer two"}],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _blob(layout, config),
                   "size": len(config)},
        "layers": layers,
    }).encode()
    manifest_digest = _blob(layout, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }))
    return diff_ids


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc


def test_skopeo_image_roundtrip(cli: CLI, go_cli: CLI, tmp_path: Path) -> None:
    layout = tmp_path / "oci-src"
    diff_ids = build_oci_layout(layout, "v1")
    store_ref = f"containers-storage:[{cli.driver}@{cli.graph}+{cli.run}]"
    skopeo("copy", "--quiet", f"oci:{layout}:v1", f"{store_ref}localhost/img:latest")

    # Our CLI reads what skopeo wrote.
    listing = cli("images")
    assert listing.rc == 0 and listing.err == "", listing.err
    image_id = listing.out.splitlines()[0]
    assert "\tname: localhost/img:latest" in listing.out.splitlines()
    record = json.loads(cli.ok("image", "--json", "localhost/img:latest"))[0]
    assert record["id"] == image_id
    manifest_keys = [k for k in record["big-data-names"] if k.startswith("manifest")]
    assert manifest_keys
    manifest = json.loads(cli("get-image-data", image_id, manifest_keys[0]).raw)
    assert len(manifest["layers"]) == 2
    assert cli.ok("get-image-data-digest", image_id, manifest_keys[0]).strip() in record["big-data-digests"].values()
    assert cli.ok("images-by-digest", record["digest"]).splitlines()[0] == image_id
    assert cli.ok("images-by-digest", "-q", record["digest"]).split() == [image_id]

    # The top layer's chain and the mounted contents (whiteout applied).
    top = record["layer"]
    top_layer = json.loads(cli.ok("layer", "--json", top))[0]
    assert top_layer["diff-digest"] == diff_ids[1]
    base_layer = json.loads(cli.ok("layer", "--json", top_layer["parent"]))[0]
    assert base_layer["diff-digest"] == diff_ids[0] and "parent" not in base_layer
    # The diffs of layers skopeo wrote reproduce the original tar streams.
    for layer_id, diff_id in ((top, diff_ids[1]), (top_layer["parent"], diff_ids[0])):
        diff = cli("diff", "-u", layer_id)
        assert diff.rc == 0, diff.err
        assert "sha256:" + hashlib.sha256(diff.raw).hexdigest() == diff_id
    mount_point = Path(cli.ok("mount", top).strip())
    try:
        assert (mount_point / "etc" / "hello").read_text() == "hello from layer one\n"
        assert (mount_point / "etc" / "added").read_text() == "layer two\n"
        assert (mount_point / "data" / "keep.txt").read_text() == "kept\n"
        assert not (mount_point / "etc" / "doomed").exists()
        assert not (mount_point / "etc" / ".wh.doomed").exists()
    finally:
        cli("unmount", top)
    assert cli.ok("mounted", top) == ""

    # Rename it with our CLI, then create a container on it.
    cli.ok("set-names", "-n", "localhost/renamed:1", image_id)
    cli.ok("add-names", "-n", "localhost/extra:2", "localhost/renamed:1")
    assert cli.ok("get-names", image_id).splitlines() == ["localhost/extra:2", "localhost/renamed:1"]
    created = cli.ok("create-container", "-n", "ctr", "localhost/renamed:1").splitlines()
    container_id = created[0]
    assert created[1:] == ["\tctr"]
    ctr = json.loads(cli.ok("container", "--json", "ctr"))[0]
    assert ctr["image"] == image_id

    # The Go CLI reads everything we wrote.
    go_images = go_cli("images")
    assert go_images.rc == 0, go_images.err
    assert go_images.out.splitlines()[:3] == [image_id, "\tname: localhost/extra:2", "\tname: localhost/renamed:1"]
    go_ctrs = go_cli("containers")
    assert go_ctrs.rc == 0 and go_ctrs.out.splitlines()[:2] == [container_id, "\tname: ctr"]
    go_layers = go_cli("layers", "--json")
    assert go_layers.rc == 0
    go_ids = [layer["id"] for layer in json.loads(go_layers.out)]
    assert go_ids == [layer["id"] for layer in json.loads(cli.ok("layers", "--json"))]
    assert top in go_ids and ctr["layer"] in go_ids
    for args in (("image", image_id), ("image", "--json", image_id), ("container", "ctr"), ("layers",),
                 ("images-by-digest", record["digest"]), ("list-image-data", image_id)):
        ours, theirs = cli(*args), go_cli(*args)
        assert (ours.rc, ours.out, ours.err) == (theirs.rc, theirs.out, theirs.err), args
    assert go_cli("container", "ctr").out.splitlines()[:3] == [f"ID: {container_id}", "Name: ctr", f"Image: {image_id}"]

    # skopeo reads it back too, by the new name.
    inspect = json.loads(skopeo("inspect", f"{store_ref}localhost/renamed:1").stdout)
    assert inspect["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    assert inspect["Digest"] in record["big-data-digests"].values()

    # And a copy back out to OCI keeps the diff IDs.
    out_layout = tmp_path / "oci-out"
    skopeo("copy", "--quiet", f"{store_ref}localhost/extra:2", f"oci:{out_layout}:back")
    index = json.loads((out_layout / "index.json").read_text())
    out_manifest = json.loads(
        (out_layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":", 1)[1]).read_text())
    out_config = json.loads(
        (out_layout / "blobs" / "sha256" / out_manifest["config"]["digest"].split(":", 1)[1]).read_text())
    assert out_config["rootfs"]["diff_ids"] == diff_ids
