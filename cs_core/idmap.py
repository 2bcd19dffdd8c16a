"""UID/GID mappings: parsing the CLI's ``c:h:s`` triples and mapping IDs both ways."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cs_core.errors import StorageError, UsageError


@dataclass(frozen=True, slots=True)
class IDMap:
    """One contiguous range: container IDs ``[container_id, container_id+size)`` map to host IDs."""

    container_id: int
    host_id: int
    size: int

    def to_dict(self) -> dict[str, int]:
        return {"container_id": self.container_id, "host_id": self.host_id, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IDMap:
        return cls(int(data.get("container_id", 0)), int(data.get("host_id", 0)), int(data.get("size", 0)))


Mapping = tuple[IDMap, ...]


def parse_triples(values: Sequence[str], what: str) -> Mapping:
    """Parse CLI map strings (each a multiple of ``c:h:s`` triples) into a mapping.

    Errors read ``initializing ID mappings: uid setting is malformed expected
    ["uint32:uint32:uint32"]: ["MAP"]`` like the Go CLI.
    """
    result: list[IDMap] = []
    for value in values:
        parts = value.split(":")
        try:
            if len(parts) % 3 or not value:
                raise ValueError(value)
            numbers = [int(p, 10) for p in parts]
            if any(n < 0 or n > 0xFFFFFFFF or not p.isdigit() for n, p in zip(numbers, parts)):
                raise ValueError(value)
        except ValueError:
            rendered = "[" + " ".join(f'"{v}"' for v in values) + "]"
            raise UsageError(
                f'initializing ID mappings: {what} setting is malformed expected ["uint32:uint32:uint32"]: {rendered}'
            ) from None
        for i in range(0, len(numbers), 3):
            result.append(IDMap(numbers[i], numbers[i + 1], numbers[i + 2]))
    return tuple(result)


def read_subid_ranges(path: str, user: str) -> Mapping:
    """Lay the ``/etc/subuid``-style ranges of ``user`` out from container ID 0 upward."""
    names = {user}
    try:
        import pwd

        if user.isdigit():
            names.add(pwd.getpwuid(int(user)).pw_name)
        else:
            names.add(str(pwd.getpwnam(user).pw_uid))
    except (KeyError, ImportError):
        pass
    ranges: list[tuple[int, int]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[0] in names:
                    ranges.append((int(fields[1]), int(fields[2])))
    except OSError as exc:
        raise UsageError(f"error reading {path}: {exc.strerror}") from None
    if not ranges:
        raise UsageError(f"no subordinate ID ranges found for {user!r} in {path}")
    out: list[IDMap] = []
    next_container = 0
    for start, count in sorted(ranges):
        out.append(IDMap(next_container, start, count))
        next_container += count
    return tuple(out)


def check_no_overlap(mapping: Sequence[IDMap]) -> None:
    """Refuse a mapping whose ranges overlap on the container side or on the host side.

    The error names the first range that overlaps an earlier one, as Go's container store does.
    """
    for i, m in enumerate(mapping):
        for earlier in mapping[:i]:
            if _overlaps(m.container_id, earlier.container_id, m.size, earlier.size) or _overlaps(
                m.host_id, earlier.host_id, m.size, earlier.size
            ):
                raise StorageError(
                    f"the specified UID and/or GID mapping {m.container_id}:{m.host_id}:{m.size} conflicts "
                    "with other mappings: invalid mappings specified"
                )


def _overlaps(start_a: int, start_b: int, size_a: int, size_b: int) -> bool:
    return start_a < start_b + size_b and start_b < start_a + size_a


def to_host(mapping: Sequence[IDMap], cid: int) -> int:
    """Map a container ID to the host; the empty mapping is the identity."""
    if not mapping:
        return cid
    for m in mapping:
        if m.container_id <= cid < m.container_id + m.size:
            return m.host_id + (cid - m.container_id)
    raise StorageError(f"container ID {cid} cannot be mapped to a host ID")


def to_container(mapping: Sequence[IDMap], hid: int) -> int:
    """Map a host ID back to the container; the empty mapping is the identity."""
    if not mapping:
        return hid
    for m in mapping:
        if m.host_id <= hid < m.host_id + m.size:
            return m.container_id + (hid - m.host_id)
    raise StorageError(f"host ID {hid} cannot be mapped to a container ID")


def root_id(mapping: Sequence[IDMap]) -> int:
    """The host ID that container ID 0 maps to (a single size-1 entry maps to its host ID)."""
    if len(mapping) == 1 and mapping[0].size == 1:
        return mapping[0].host_id
    try:
        return to_host(mapping, 0)
    except StorageError:
        return 0


def overflow_id(kind: str) -> int:
    """The kernel overflow UID or GID (65534 when unreadable)."""
    try:
        with open(f"/proc/sys/kernel/overflow{kind}", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 65534


def mapping_to_list(mapping: Iterable[IDMap]) -> list[dict[str, int]]:
    return [m.to_dict() for m in mapping]


def mapping_from_list(data: Any) -> Mapping:
    if not data:
        return ()
    return tuple(IDMap.from_dict(d) for d in data)


def current_user_default() -> tuple[Mapping, Mapping]:
    """A non-root caller without maps gets ``0:<uid>:1`` / ``0:<gid>:1``."""
    if os.geteuid() == 0:
        return (), ()
    return (IDMap(0, os.geteuid(), 1),), (IDMap(0, os.getegid(), 1),)
