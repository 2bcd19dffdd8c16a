"""End-to-end image commands through our CLI (a subprocess): create-image, images, image,
images-by-digest, delete-image, the image data commands and the image directories; text and
--json, error texts and exit codes, and the Go CLI reading the same store."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from cs_testlib import CLI, first_line, new_image, new_layer

SHA_HELLO = "sha256:" + hashlib.sha256(b"hello").hexdigest()


def test_create_image_text_and_json(cli: CLI) -> None:
    layer = new_layer(cli, "-n", "base")
    res = cli("create-image", "-n", "img1", "--name", "img2", "-n", "img1", "base")
    assert res.rc == 0 and res.err == ""
    image_id, *rest = res.out.split("\n")
    assert len(image_id) == 64 and rest == ["\timg1", "\timg2", ""]
    record = json.loads(cli.ok("create-image", "--json", "-i", "myimage", "-n", "other", layer))
    assert list(record) == ["id", "names", "layer", "created"]
    assert record["id"] == "myimage" and record["layer"] == layer and record["names"] == ["other"]
    layerless = json.loads(cli.ok("create-image", "-j"))
    assert list(layerless) == ["id", "created"]
    assert json.loads(cli.ok("create-image", "--json", ""))["id"] != layerless["id"]
    on_disk = (cli.records("images") / "images.json").read_text()
    assert on_disk.startswith('[{"id":"') and not on_disk.endswith("\n")
    assert [r["id"] for r in json.loads(on_disk)][:2] == [image_id, "myimage"]


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("sha256:abc", "invalid checksum digest length"),
        ("sha256" + ":" + "A" * 64, "invalid checksum digest format"),
        ("nodigest", "invalid checksum digest format"),
        ("md5:" + "a" * 32, "unsupported digest algorithm"),
        ("sha512:" + "a" * 64, "invalid checksum digest length"),
    ],
)
def test_create_image_digest_validation(cli: CLI, digest: str, message: str) -> None:
    res = cli("create-image", "--digest", digest)
    assert res.rc == 1 and res.out == ""
    assert res.err == f'validating digests for new image: validating image digest "{digest}": {message}\n'
    assert json.loads(cli.ok("images", "--json")) is None


def test_create_image_errors(cli: CLI) -> None:
    first = new_image(cli, "-n", "taken", "-i", "fixed")
    res = cli("create-image", "-n", "free", "-n", "taken")
    assert res.rc == 1
    assert res.err == f'image name "taken" is already associated with image "{first}": that name is already in use\n'
    res = cli("create-image", "-i", "fixed")
    assert res.rc == 1 and res.err == 'an image with ID "fixed" already exists: that ID is already in use\n'
    res = cli("create-image", "nosuchlayer")
    assert res.rc == 1 and res.err == "layer not known\n"
    assert cli.ok("images", "-q") == "fixed\n"


def test_create_image_metadata_and_digest(cli: CLI, tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    meta.write_text("from file\n")
    digest = "sha256:" + "1" * 64
    img = new_image(cli, "-m", "ignored", "-f", str(meta), "-d", digest, "-n", "m")
    assert cli.ok("metadata", "-q", "m") == "from file\n"
    record = json.loads(cli.ok("image", "--json", img))[0]
    assert record["metadata"] == "from file\n" and record["digest"] == digest
    assert cli.ok("images-by-digest", "-q", digest) == f"{img}\n"
    new_image(cli, "--metadata", "plain", "-n", "p")
    assert cli.ok("metadata", "p") == "p: plain\n"


def test_images_listing(cli: CLI) -> None:
    assert cli.ok("images") == "" and json.loads(cli.ok("images", "--json")) is None
    layer = new_layer(cli)
    a = new_image(cli, "-n", "a", "-n", "a2", layer)
    b = new_image(cli)
    cli.ok("set-image-data", b, "manifest", stdin=b"hello")
    cli.ok("set-image-data", b, "Config/Blob", stdin=b"cfg")
    text = cli.ok("images")
    assert text == f"{a}\n\tname: a\n\tname: a2\n{b}\n\tdigest: {SHA_HELLO}\n\tdata: manifest\n\tdata: Config/Blob\n"
    assert cli.ok("images", "-q") == f"{a}\n{b}\n"
    records = json.loads(cli.ok("images", "--json"))
    assert [r["id"] for r in records] == [a, b]
    assert records[1]["digest"] == SHA_HELLO
    assert records[1]["big-data-sizes"] == {"Config/Blob": 3, "manifest": 5}
    res = cli("images", "extra")
    assert res.rc == 1 and res.out.startswith("images: too many arguments ([extra]).\n")


def test_image_command_labels_and_size(cli: CLI) -> None:
    base = new_layer(cli, "-n", "base")
    img = new_image(cli, "-n", "withlayer", base)
    out = cli.ok("image", "withlayer")
    assert out == f"ID: {img}\nName: withlayer\nTop Layer: {base}\nSize: 0\n"
    bare = new_image(cli, "-n", "bare")
    cli.ok("set-image-data", "bare", "manifest", stdin=b"hello")
    cli.ok("set-image-data", "bare", "item-two", stdin=b"x" * 256)
    lines = cli.ok("image", "bare").splitlines()
    assert lines == [f"ID: {bare}", "Name: bare", "Top Layer: ", f"Digest: {SHA_HELLO}", "Data: manifest",
                     "Data: item-two", "Size: 261"]
    big = new_image(cli)
    cli.ok("set-image-data", big, "one", stdin=b"a" * 256)
    cli.ok("set-image-data", big, "two", stdin=b"b" * 256)
    assert "Size: 512" in cli.ok("image", big).splitlines()
    res = cli("image", "bare", "nosuch")
    assert res.rc == 1 and res.out.startswith(f"ID: {bare}\n") and res.err == ""
    assert json.loads(cli("image", "--json", "nosuch").out) == []
    assert [r["id"] for r in json.loads(cli.ok("image", "--json", img, bare[:10]))] == [img, bare]


def test_image_data_commands(cli: CLI, tmp_path: Path) -> None:
    img = new_image(cli, "-n", "data")
    assert cli.ok("list-image-data", img) == ""
    assert json.loads(cli.ok("list-image-data", "--json", img)) is None
    cli.ok("set-image-data", img, "manifest", stdin=b"hello")
    src = tmp_path / "src"
    src.write_bytes(b"second manifest")
    cli.ok("set-image-data", "-f", str(src), "data", "manifest-random2")
    cli.ok("setimagedata", img, "Config/Blob", stdin=b"\x00\x01binary")
    assert cli.ok("list-image-data", "data") == "manifest\nmanifest-random2\nConfig/Blob\n"
    assert json.loads(cli.ok("listimagedata", "-j", img)) == ["manifest", "manifest-random2", "Config/Blob"]
    assert cli("get-image-data", img, "Config/Blob").raw == b"\x00\x01binary"
    dest = tmp_path / "dest"
    dest.write_bytes(b"to be truncated" * 10)
    assert cli.ok("get-image-data", "-f", str(dest), img, "manifest-random2") == ""
    assert dest.read_bytes() == b"second manifest"
    assert cli.ok("get-image-data-size", img, "manifest-random2") == "15\n"
    second = "sha256:" + hashlib.sha256(b"second manifest").hexdigest()
    assert cli.ok("get-image-data-digest", img, "manifest-random2") == f"{second}\n"
    assert cli.ok("getimagedatadigest", img, "Config/Blob") == (
        "sha256:" + hashlib.sha256(b"\x00\x01binary").hexdigest() + "\n")
    # The first manifest became the image digest; both manifests are image digests.
    record = json.loads(cli.ok("image", "--json", img))[0]
    assert record["digest"] == SHA_HELLO
    assert cli.ok("image", img).splitlines()[3:5] == [f"Digest: {SHA_HELLO}", f"Digest: {second}"]
    assert cli.ok("images-by-digest", "-q", second) == f"{img}\n"
    # Files on disk use the encoded key names.
    data_dir = cli.records("images") / img
    assert sorted(os.listdir(data_dir)) == sorted(["manifest", "=bWFuaWZlc3QtcmFuZG9tMg==", "=Q29uZmlnL0Jsb2I="])
    # Replacing a manifest keeps the first digest as the image digest but indexes the new one.
    cli.ok("set-image-data", img, "manifest", stdin=b"changed")
    changed = "sha256:" + hashlib.sha256(b"changed").hexdigest()
    assert cli.ok("images-by-digest", "-q", changed) == f"{img}\n"
    assert json.loads(cli.ok("image", "--json", img))[0]["digest"] == SHA_HELLO


def test_image_data_errors(cli: CLI) -> None:
    img = new_image(cli, "-n", "e")
    res = cli("get-image-data", img, "missing")
    assert res.rc == 1 and res.out == ""
    assert res.err == (f'locating item named "missing" for image with ID "{img}" (consider removing the image to '
                       "resolve the issue): file does not exist\n")
    assert cli("get-image-data-size", img, "missing").err == "size is not known\n"
    assert cli("get-image-data-digest", img, "missing").err == "could not compute digest of item\n"
    for args in (("list-image-data", "nosuch"), ("get-image-data", "nosuch", "k"),
                 ("get-image-data-size", "nosuch", "k"), ("set-image-data", "nosuch", "k")):
        res = cli(*args, stdin=b"")
        assert res.rc == 1 and res.err == 'locating image with ID "nosuch": image not known\n', args
    res = cli("get-image-data", img)
    assert res.rc == 1 and res.out.startswith("get-image-data: more arguments required.\n")
    res = cli("set-image-data", img, "")
    assert res.rc == 1 and "not a valid name for a big data item" in res.err


def test_images_by_digest(cli: CLI) -> None:
    a = new_image(cli, "-n", "a")
    b = new_image(cli, "-n", "b")
    for img in (a, b):
        cli.ok("set-image-data", img, "manifest", stdin=b"hello")
    res = cli("images-by-digest", SHA_HELLO)
    assert res.rc == 0 and res.err == ""
    assert res.out == f"{a}\n\tname: a\n\tdigest: {SHA_HELLO}\n\tdata: manifest\n{b}\n\tname: b\n\tdigest: {SHA_HELLO}\n\tdata: manifest\n"
    assert [r["id"] for r in json.loads(cli.ok("images-by-digest", "--json", SHA_HELLO))] == [a, b]
    nomatch = "sha256:" + "0" * 64
    res = cli("images-by-digest", nomatch)
    assert (res.rc, res.out, res.err) == (0, "", "")
    assert json.loads(cli.ok("images-by-digest", "-j", nomatch)) == []
    res = cli("images-by-digest", "bad")
    assert res.rc == 1 and res.err == "invalid checksum digest format\n"
    res = cli("images-by-digest", "sha384:abc")
    assert res.rc == 1 and res.err == "invalid checksum digest length\n"
    # Deleting an image drops it from the digest index.
    cli.ok("delete-image", a)
    assert cli.ok("images-by-digest", "-q", SHA_HELLO) == f"{b}\n"


def test_image_directories(cli: CLI) -> None:
    img = new_image(cli, "-n", "dirs")
    path = cli.ok("get-image-dir", img).strip()
    assert path == str(cli.records("images") / img / "userdata")
    assert os.path.isdir(path) and (os.stat(path).st_mode & 0o777) == 0o700
    Path(path, "file").write_text("x")
    run_path = cli.ok("getimagerundir", "dirs").strip()
    assert run_path == str(cli.run_records("images") / img / "userdata") and os.path.isdir(run_path)
    assert cli.ok("getimagedir", "dirs").strip() == path


def test_delete_image_rules(cli: CLI) -> None:
    base = new_layer(cli, "-n", "base")
    mid = new_layer(cli, "-n", "mid", base)
    top = new_layer(cli, "-n", "top", mid)
    img = new_image(cli, "-n", "img", top)
    other = new_image(cli, "-n", "other", mid)
    ctr = first_line(cli.ok("create-container", "-n", "c", "img"))
    res = cli("delete-image", "img")
    assert res.rc == 1 and res.out == ""
    assert res.err == f"img: image used by {ctr}: image is in use by a container\n"
    res = cli("delete-image", "--json", "img", "nosuch")
    assert res.rc == 1 and json.loads(res.out) == {
        "img": {"error": f"image used by {ctr}: image is in use by a container"},
        "nosuch": {"error": "identifier is not an image"},
    }
    # Several users: like Go, the message names the last container created from the image.
    later = first_line(cli.ok("create-container", "img"))
    assert cli("delete-image", "img").err == f"img: image used by {later}: image is in use by a container\n"
    cli.ok("delete-container", "c", later)
    # Dry run: only the top layer is removable ("mid" is another image's top layer).
    res = cli("delete-image", "--test", "img")
    assert (res.rc, res.out, res.err) == (0, "", f"img: {top}\n")
    assert json.loads(cli.ok("delete-image", "-t", "--json", "img")) == {"img": {"deleted-layers": [top]}}
    assert cli.ok("exists", "-i", "img") == "img: true\n"
    res = cli("delete-image", "img")
    assert (res.rc, res.out, res.err) == (0, "", f"img: {top}\n")
    assert not (cli.records("images") / img).exists()
    assert [r["id"] for r in json.loads(cli.ok("layers", "--json"))] == [base, mid]
    # Now "other" owns the rest of the chain.
    res = cli("delete-image", "--json", other)
    assert json.loads(res.out) == {other: {"deleted-layers": [mid, base]}}
    assert json.loads(cli.ok("layers", "--json")) is None


def test_delete_image_keeps_layers_with_other_children(cli: CLI) -> None:
    base = new_layer(cli)
    top = new_layer(cli, base)
    new_layer(cli, base)  # a sibling keeps the base alive
    new_image(cli, "-n", "img", top)
    res = cli("delete-image", "img")
    assert res.rc == 0 and res.err == f"img: {top}\n"
    res = cli("delete-image", "img")
    assert res.rc == 1 and res.err == "img: identifier is not an image\n"
    layerless = new_image(cli)
    res = cli("delete-image", "--json", layerless)
    assert (res.rc, json.loads(res.out)) == (0, {layerless: {}})


def test_go_cli_reads_our_images(cli: CLI, go_cli: CLI) -> None:
    base = new_layer(cli, "-n", "base")
    img = new_image(cli, "-n", "x/y:latest", "-m", "meta", base)
    cli.ok("set-image-data", img, "manifest", stdin=b"hello")
    cli.ok("set-image-data", img, "Config/Blob", stdin=b"config")
    new_image(cli, "-n", "bare")
    for args in (("images",), ("images", "--json"), ("image", "x/y:latest"), ("image", "--json", img),
                 ("images-by-digest", SHA_HELLO), ("list-image-data", img),
                 ("get-image-data-digest", img, "Config/Blob"), ("get-image-data-size", img, "manifest"),
                 ("get-image-data", img, "manifest"), ("metadata", img)):
        ours, theirs = cli(*args), go_cli(*args)
        assert (ours.rc, ours.out, ours.err) == (theirs.rc, theirs.out, theirs.err), args


def test_we_read_go_images(cli: CLI, go_cli: CLI) -> None:
    base = first_line(go_cli.ok("create-layer", "-n", "base"))
    img = first_line(go_cli.ok("create-image", "-n", "goimg", "-d", SHA_HELLO, base))
    go_cli.ok("set-image-data", img, "manifest-x", stdin=b"other")
    go_cli.ok("set-names", "-n", "renamed", "goimg")
    for args in (("images",), ("images", "--json"), ("image", "renamed"), ("list-image-data", img),
                 ("images-by-digest", "sha256:" + hashlib.sha256(b"other").hexdigest())):
        ours, theirs = cli(*args), go_cli(*args)
        assert (ours.rc, ours.out, ours.err) == (theirs.rc, theirs.out, theirs.err), args
    res = cli("delete-image", "renamed")
    assert res.rc == 0 and res.err == f"renamed: {base}\n"
    assert go_cli.ok("images") == "" and go_cli.ok("layers") == ""
