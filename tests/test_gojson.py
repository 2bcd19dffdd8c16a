"""Go's encoding/json text and RFC 3339 times, as the store files and --json outputs need them."""

from __future__ import annotations

from cs_core import gojson


def test_escapes_match_go() -> None:
    assert gojson.dumps(["a<b>&c", "\u2028\u2029", "é", "tab\t\n", "x\bq\f", "back\\bslash", "\x01"]) == (
        '["a\\u003cb\\u003e\\u0026c","\\u2028\\u2029","é","tab\\t\\n","x\\u0008q\\u000c","back\\\\bslash","\\u0001"]'
    )
    assert gojson.dumps({"b": None, "a": []}) == '{"b":null,"a":[]}'


def test_times_trim_zeros_and_parse_offsets() -> None:
    assert gojson.format_time_ns(0) == "1970-01-01T00:00:00Z"
    assert gojson.format_time_ns(1_204427510) == "1970-01-01T00:00:01.20442751Z"
    assert gojson.format_time_ns(1795931981_204427510) == "2026-11-29T05:59:41.20442751Z"
    assert gojson.parse_time_ns("2026-11-29T05:59:41.20442751Z") == 1795931981_204427510
    assert gojson.parse_time_ns("2026-11-29T07:59:41.5+02:00") == 1795931981_500000000
    assert gojson.parse_time_ns(gojson.ZERO_TIME) < 0
    assert gojson.parse_time_ns("garbage") < 0
