"""Go ``docker/go-units`` size parsing and printing, as the btrfs driver's messages use them."""

from __future__ import annotations

import re

from cs_core.errors import InvalidOption

#: Compiled on first use (by ``re``'s cache), not at import.
_SIZE_PATTERN = r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$"
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def ram_in_bytes(text: str) -> int:
    """``units.RAMInBytes``: ``512m``, ``1G``, ``1.5GiB`` ... in binary units; bare = bytes."""
    match = re.match(_SIZE_PATTERN, text)
    if not match:
        raise InvalidOption(f"invalid size: '{text}'")
    try:
        value = float(match.group(1))
    except ValueError:
        raise InvalidOption(f"invalid size: '{text}'") from None
    unit = (match.group(2) or "").lower()
    return int(value * _BINARY.get(unit, 1))


def human_size(size: float) -> str:
    """``units.HumanSize``: decimal units, four significant digits (``1.074GB``)."""
    index = 0
    while size >= 1000 and index < len(_DECIMAL_UNITS) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{_DECIMAL_UNITS[index]}"
