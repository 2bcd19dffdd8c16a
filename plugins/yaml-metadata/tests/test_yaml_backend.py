"""The yaml backend keeps the same records, readable by eye, and reads them back unchanged."""

from __future__ import annotations

import pytest

from cs_core.records import Container, Layer
from cs_metadata_yaml import cs_metadata_backends, decode, encode


def test_round_trip_keeps_order_and_values() -> None:
    layer = Layer(id="abc", names=["n1"], created="2026-11-29T04:37:30.719699126Z", uidset=[0, 5], flags={"incomplete": True})
    container = Container(id="c", image_id="", layer_id="abc", created="2026-11-29T04:37:30Z", flags={"MountLabel": ""})
    text = encode([layer.to_dict(), container.to_dict()])
    assert text.decode().startswith("- id: abc\n  names:\n  - n1\n")
    back = decode(text)
    assert back == [layer.to_dict(), container.to_dict()]
    assert list(back[0]) == list(layer.to_dict())
    assert isinstance(back[0]["created"], str)


@pytest.mark.parametrize("data", [b"", b"null\n", b"[]\n"])
def test_empty_forms_are_no_records(data: bytes) -> None:
    assert decode(data) == []


def test_malformed_is_an_error() -> None:
    with pytest.raises(ValueError):
        decode(b"- id: [\n")
    with pytest.raises(ValueError):
        decode(b"id: x\n")


def test_registration() -> None:
    (spec,) = cs_metadata_backends()
    assert (spec.name, spec.suffix) == ("yaml", ".yaml")
