"""The examples keep working: library usage script and the demo's building blocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_library_usage_example_runs(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(REPO / "examples" / "library_usage.py"), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CONTAINERS_STORAGE_CONFIG": "/dev/null"},
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].endswith("sees: hello from the library")
    assert lines[1].startswith("layer ") and "diff digest sha256:" in lines[1]
