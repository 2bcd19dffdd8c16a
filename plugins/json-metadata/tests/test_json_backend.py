"""The json backend writes what Go's encoding/json writes, and reads what Go writes."""

from __future__ import annotations

import pytest

from cs_core.records import Image, Layer
from cs_metadata_json import cs_metadata_backends, decode, encode


def test_go_exact_encoding() -> None:
    layer = Layer(id="abc", names=["a<b>&c", "é"], created="2026-11-29T04:37:30.719699126Z", flags={"z": 1, "B": True})
    assert encode([layer.to_dict()]) == (
        b'[{"id":"abc","names":["a\\u003cb\\u003e\\u0026c","\xc3\xa9"],'
        b'"created":"2026-11-29T04:37:30.719699126Z","flags":{"B":true,"z":1}}]'
    )
    image = Image(id="i", created="0001-01-01T00:00:00Z", big_data_sizes={"manifest": 2, "Config/Blob": 1})
    assert encode([image.to_dict()]) == b'[{"id":"i","big-data-sizes":{"Config/Blob":1,"manifest":2},"created":"0001-01-01T00:00:00Z"}]'
    assert encode([]) == b"[]"


@pytest.mark.parametrize("data", [b"", b"  ", b"null", b"[]"])
def test_empty_forms_are_no_records(data: bytes) -> None:
    assert decode(data) == []


def test_malformed_is_an_error_and_unknown_keys_are_ignored() -> None:
    with pytest.raises(ValueError):
        decode(b"[{")
    with pytest.raises(ValueError):
        decode(b'{"id":"x"}')
    (record,) = decode(b'[{"id":"x","future-key":1,"names":null}]')
    assert Layer.from_dict(record).names == []


def test_registration() -> None:
    (spec,) = cs_metadata_backends()
    assert (spec.name, spec.suffix) == ("json", ".json")
