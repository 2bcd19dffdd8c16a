"""JSON text exactly as Go's ``encoding/json`` writes it, and RFC 3339 times as Go prints them.

Go output is compact, keeps struct fields in declaration order (callers pass dicts built in that
order), sorts map keys (callers pass ``sort_keys`` maps through :func:`sorted_map`), writes
non-ASCII as raw UTF-8, and escapes ``<``, ``>``, ``&``, U+2028 and U+2029.  Those five
characters can only occur inside JSON strings, so escaping them on the encoded text is exact.
"""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _go_escape(text: str) -> str:
    for raw, escaped in _ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    if "\\b" in text or "\\f" in text:
        text = _fix_short_escapes(text)
    return text


def _fix_short_escapes(text: str) -> str:
    """Rewrite Python's ``\\b``/``\\f`` escapes as Go's ``\\u0008``/``\\u000c``."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "b":
                out.append("\\u0008")
            elif nxt == "f":
                out.append("\\u000c")
            else:
                out.append(ch + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def dumps(value: Any) -> str:
    """Encode ``value`` as Go would (without a trailing newline)."""
    return _go_escape(_encoder.encode(value))


def dumpb(value: Any) -> bytes:
    """:func:`dumps` as UTF-8 bytes."""
    return dumps(value).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Decode JSON text (any valid JSON; Go's escapes are standard JSON)."""
    return json.loads(data)


def sorted_map(mapping: dict[str, Any]) -> dict[str, Any]:
    """Return ``mapping`` with keys sorted bytewise, as Go marshals maps."""
    return {k: mapping[k] for k in sorted(mapping, key=lambda k: k.encode("utf-8"))}


def format_time_ns(ns: int) -> str:
    """Format nanoseconds since the epoch as Go's ``RFC3339Nano`` in UTC (trailing zeros trimmed)."""
    import datetime as _dt

    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_time_ns(text: str) -> int:
    """Parse an RFC 3339 time (any offset, up to nanoseconds) into nanoseconds since the epoch.

    Returns a very negative number for the zero time and for unparsable input, so such records
    sort as oldest.
    """
    import datetime as _dt

    try:
        main, frac, offset = _split_rfc3339(text)
        base = _dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.UTC)
        seconds = int((base - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)).total_seconds()) - offset
        nanos = int((frac + "000000000")[:9]) if frac else 0
        return seconds * 1_000_000_000 + nanos
    except (ValueError, IndexError):
        return -(2**62)


def _split_rfc3339(text: str) -> tuple[str, str, int]:
    main = text[:19]
    rest = text[19:]
    frac = ""
    if rest.startswith("."):
        i = 1
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, rest = rest[1:i], rest[i:]
    if rest in ("Z", "z"):
        return main, frac, 0
    sign = 1 if rest[0] == "+" else -1
    hours, minutes = int(rest[1:3]), int(rest[4:6])
    return main, frac, sign * (hours * 3600 + minutes * 60)
