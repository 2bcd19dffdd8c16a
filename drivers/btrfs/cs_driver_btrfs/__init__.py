"""cs-driver-btrfs: the btrfs graph driver plugin for containers-storage (cs_core).

Each layer is a btrfs subvolume under ``<graphroot>/btrfs/subvolumes/<id>``; a child layer is a
writable snapshot of its parent.  Registered through the ``cs_core.graphdrivers`` entry point
``btrfs`` (module :mod:`cs_driver_btrfs.plugin`).
"""

from __future__ import annotations

__version__ = "0.1.0"
