"""The ``vfs`` graph driver: every layer is a full copy of its parent's tree (storage.md 9.1).

Works on any file system.  It is a plugin exactly like a third party's: it uses only
``cs_core``'s public API (the driver interface, the archive engine, errors, ID maps).
"""

from __future__ import annotations

from collections.abc import Iterable

from cs_core import hookimpl
from cs_core.driver import GraphDriverSpec


@hookimpl
def cs_graphdrivers() -> Iterable[GraphDriverSpec]:
    from cs_driver_vfs.driver import VfsDriver

    return [
        GraphDriverSpec(
            name="vfs",
            factory=VfsDriver,
            probe=None,
            priority=1000,
            capabilities=frozenset({"naive-diff", "any-filesystem"}),
        )
    ]
