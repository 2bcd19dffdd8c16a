"""The hook module registers ``overlay`` (alias ``overlay2``) with a lazy factory and a probe."""

from __future__ import annotations

import os
from pathlib import Path

from cs_core.driver import DriverOptions, GraphDriverSpec
from cs_driver_overlay import plugin


def test_spec(tmp_path: Path) -> None:
    specs = list(plugin.cs_graphdrivers())
    assert len(specs) == 1
    spec = specs[0]
    assert isinstance(spec, GraphDriverSpec)
    assert spec.name == "overlay" and spec.aliases == ("overlay2",)
    assert spec.probe is not None
    options = DriverOptions(
        name="overlay",
        home=str(tmp_path / "g" / "overlay"),
        run_home=str(tmp_path / "r" / "overlay"),
        graph_root=str(tmp_path / "g"),
        run_root=str(tmp_path / "r"),
    )
    if os.geteuid() == 0:
        spec.probe(options)  # root on ext4/tmpfs with overlayfs: supported
    assert not os.path.exists(tmp_path / "g")  # probing creates nothing
