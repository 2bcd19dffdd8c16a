"""Store rules through the library API: names, lookups, incomplete layers, deletion safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cs_core import load_options, open_store
from cs_core.errors import DuplicateID, DuplicateName, LayerHasChildren, LayerUnknown, NotALayer
from cs_core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(load_options(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), driver="vfs"))


def test_names_unique_and_moved_by_set_and_add(store: Store) -> None:
    a = store.create_layer(names=["a", "shared"])
    b = store.create_layer()
    with pytest.raises(DuplicateName, match="^that name is already in use$"):
        store.create_layer(names=["shared"])
    with pytest.raises(DuplicateID, match="^that ID is already in use$"):
        store.create_layer(layer_id=a.id)
    assert store.add_names(b.id, ["shared", "new"]) == ["shared", "new"]
    assert store.names(a.id) == ["a"]
    assert store.layer("shared").id == b.id
    assert store.remove_names(b.id, ["shared"]) == ["new"]
    assert store.set_names(a.id, ["x", "x", "y"]) == ["x", "y"]


def test_lookup_by_prefix_fails_when_ambiguous(store: Store) -> None:
    store.create_layer(layer_id="abc1")
    store.create_layer(layer_id="abc2")
    assert store.layer("abc1").id == "abc1"
    with pytest.raises(LayerUnknown):
        store.layer("abc")
    assert store.layer("abc2"[:4]).id == "abc2"


def test_incomplete_layer_is_swept_on_next_open(store: Store, tmp_path: Path) -> None:
    keep = store.create_layer(layer_id="keep")
    store.create_layer(layer_id="broken")
    layers_json = tmp_path / "g" / "vfs-layers" / "layers.json"
    text = layers_json.read_text().replace('"id":"broken"', '"flags":{"incomplete":true},"id":"broken"')
    layers_json.write_text(text)
    again = open_store(load_options(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), driver="vfs"))
    assert [layer.id for layer in again.layers()] == [keep.id]
    assert not (tmp_path / "g" / "vfs" / "dir" / "broken").exists()
    assert [r["id"] for r in json.loads(layers_json.read_text())] == ["keep"]


def test_delete_layer_refuses_parents_by_name_too(store: Store) -> None:
    base = store.create_layer(names=["base"])
    store.create_layer(base.id)
    with pytest.raises(LayerHasChildren, match="layer has children"):
        store.delete_layer("base")
    with pytest.raises(NotALayer):
        store.delete_layer("nothing")


def test_duplicate_names_on_disk_later_record_wins(store: Store, tmp_path: Path) -> None:
    store.create_layer(layer_id="one", names=["n"])
    store.create_layer(layer_id="two", names=["m"])
    layers_json = tmp_path / "g" / "vfs-layers" / "layers.json"
    layers_json.write_text(layers_json.read_text().replace('["m"]', '["n"]'))
    assert store.layer("n").id == "two"
    assert store.names("one") == []
