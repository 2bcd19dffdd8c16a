"""Parsing of the overlay driver options (storage.md 9.2.6), with Go's error texts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from cs_core.driver import parse_bool, parse_driver_options
from cs_core.errors import InvalidOption

_RAM_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
#: Compiled on first use (by ``re``'s cache), not at import.
_RAM_PATTERN = r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$"


@dataclass(slots=True)
class OverlayOptions:
    """The parsed driver options."""

    mount_options: str = ""
    quota_size: int | None = None
    quota_inodes: int | None = None
    image_stores: list[str] = field(default_factory=list)
    layer_stores: list[str] = field(default_factory=list)
    use_composefs: bool = False
    mount_program: str = ""
    skip_mount_home: bool = False
    ignore_chown_errors: bool = False
    force_mask: int | None = None


def ram_in_bytes(value: str) -> int:
    """Go ``units.RAMInBytes``: ``10G`` -> 10737418240 (binary multiples)."""
    match = re.match(_RAM_PATTERN, value)
    if not match:
        raise InvalidOption(f"invalid size: '{value}'")
    return int(float(match.group(1)) * _RAM_UNITS[(match.group(2) or "").lower()])


def _parse_uint(value: str, base: int, func: str = "ParseUint") -> int:
    try:
        if not value or value.startswith(("+", "-")):
            raise ValueError(value)
        return int(value, base)
    except ValueError:
        raise InvalidOption(f'strconv.{func}: parsing "{value}": invalid syntax') from None


def _store_paths(value: str) -> list[str]:
    paths: list[str] = []
    for path in value.split(","):
        path = os.path.normpath(path)
        if not os.path.isabs(path):
            raise InvalidOption(f'overlay: image path "{path}" is not absolute.  Can not be relative')
        try:
            os.stat(path)
        except OSError as exc:
            reason = (exc.strerror or "").lower()
            raise InvalidOption(f"overlay: can't stat imageStore dir {path}: stat {path}: {reason}") from None
        if not os.path.isdir(path):
            raise InvalidOption(f'overlay: image path "{path}" must be a directory')
        paths.append(path)
    return paths


def parse_options(options: list[str]) -> OverlayOptions:
    """Parse ``KEY=VALUE`` strings (prefixes ``overlay.``, ``overlay2.``, ``.`` stripped)."""
    result = OverlayOptions()
    for option, (key, value) in zip(options, parse_driver_options("overlay", options, ("overlay2",))):
        if key == "mountopt":
            result.mount_options = value
        elif key == "size":
            result.quota_size = ram_in_bytes(value)
        elif key == "inodes":
            result.quota_inodes = _parse_uint(value, 10)
        elif key in ("imagestore", "additionalimagestore"):
            result.image_stores.extend(_store_paths(value))
        elif key == "additionallayerstore":
            result.layer_stores.extend(p for p in value.split(",") if p)
        elif key == "use_composefs":
            result.use_composefs = parse_bool(value)
        elif key == "mount_program":
            try:
                os.stat(value)
            except OSError as exc:
                raise InvalidOption(
                    f'overlay: can\'t stat program "{value}": stat {value}: {(exc.strerror or "").lower()}'
                ) from None
            result.mount_program = value
        elif key == "skip_mount_home":
            result.skip_mount_home = parse_bool(value)
        elif key == "ignore_chown_errors":
            result.ignore_chown_errors = parse_bool(value)
        elif key == "force_mask":
            if value == "shared":
                result.force_mask = 0o755
            elif value == "private":
                result.force_mask = 0o700
            else:
                result.force_mask = _parse_uint(value, 8, "ParseInt")
        elif key == "override_kernel_check":
            continue
        else:
            # Go names the key exactly as given ("overlay.Bogus").
            raise InvalidOption(f"overlay: unknown option {option.split('=', 1)[0].strip()}")
    return result


def mount_option_list(value: str) -> list[str]:
    """Split a ``mountopt`` string at commas, dropping empty items."""
    return [item for item in value.split(",") if item]
