"""Digest validation as go-digest does it (storage.md 0.1, cli.md 7.10)."""

from __future__ import annotations

import re

from cs_core.errors import InvalidDigest

_FORMAT = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]*$")


def validate_digest(digest: str) -> None:
    """Raise ``InvalidDigest`` with go-digest's message if ``digest`` is not valid."""
    colon = digest.find(":")
    if colon <= 0 or colon == len(digest) - 1:
        raise InvalidDigest("invalid checksum digest format")
    algorithm, encoded = digest[:colon], digest[colon + 1 :]
    if algorithm not in _LENGTHS:
        if not _FORMAT.match(digest):
            raise InvalidDigest("invalid checksum digest format")
        raise InvalidDigest("unsupported digest algorithm")
    if len(encoded) != _LENGTHS[algorithm]:
        raise InvalidDigest("invalid checksum digest length")
    if not _HEX.match(encoded):
        raise InvalidDigest("invalid checksum digest format")
