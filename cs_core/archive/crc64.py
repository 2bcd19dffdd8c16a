"""CRC-64 with the ISO polynomial exactly as Go's ``crc64.MakeTable(crc64.ISO)`` computes it.

Uses the ``fastcrc`` package (Rust, multi-GB/s) when installed; otherwise a table-driven
pure-Python fallback (slow: only meant to keep things working).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_POLY = 0xD800000000000000
_MASK = 0xFFFFFFFFFFFFFFFF


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def _py_update(crc: int, data: Any) -> int:
    """Continue a CRC (finalised value ``crc``) over ``data``."""
    table = _TABLE
    c = crc ^ _MASK
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ _MASK


_update: Callable[[int, Any], int]
try:
    from fastcrc import crc64 as _fast

    _go_iso = _fast.go_iso

    def _fast_update(crc: int, data: Any) -> int:
        if not len(data):
            return crc
        return int(_go_iso(data, initial=crc))

    _update = _fast_update
    FAST = True
except ImportError:  # pragma: no cover - depends on the environment
    _update = _py_update
    FAST = False


def update(crc: int, data: Any) -> int:
    """Return the CRC-64/ISO of (previous data + ``data``), given ``crc`` of the previous data (0 at start)."""
    return _update(crc, data)


def checksum(data: Any) -> int:
    """CRC-64/ISO of ``data``."""
    return _update(0, data)


def to_bytes(crc: int) -> bytes:
    """The 8-byte big-endian form stored in tar-split entries."""
    return crc.to_bytes(8, "big")
