"""The Vagrantfile (and the scripts it provisions with) are valid.

Checked with ``vagrant validate`` when vagrant is installed, else with ``ruby -c`` when ruby is,
else skipped with the reason.  Runs on a copy in a temporary directory so no ``.vagrant/`` state
is left in the work tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VAGRANTFILE = ROOT / "Vagrantfile"
VM_SCRIPTS = ("provision.sh", "run-suite.sh")


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The Vagrantfile and tests/vm/ copied into a scratch directory."""
    shutil.copy2(VAGRANTFILE, tmp_path / "Vagrantfile")
    shutil.copytree(ROOT / "tests" / "vm", tmp_path / "tests" / "vm")
    return tmp_path


def run_vagrant(cwd: Path, provider: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VAGRANT_PROVIDER": provider, "VAGRANT_CHECKPOINT_DISABLE": "1"}
    return subprocess.run(["vagrant", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def libvirt_plugin_installed() -> bool:
    out = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True, timeout=60).stdout
    return "vagrant-libvirt" in out


def test_vagrantfile_is_valid(project_copy: Path) -> None:
    if shutil.which("vagrant"):
        providers = ["virtualbox"] + (["libvirt"] if libvirt_plugin_installed() else [])
        for provider in providers:
            result = run_vagrant(project_copy, provider, "validate", "--ignore-provider")
            assert result.returncode == 0, result.stdout + result.stderr
            assert "validated successfully" in result.stdout
    elif shutil.which("ruby"):
        result = subprocess.run(["ruby", "-c", str(VAGRANTFILE)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "Syntax OK" in result.stdout
    else:
        pytest.skip("neither vagrant nor ruby is installed")


def test_vagrant_validate_catches_a_missing_provision_script(project_copy: Path) -> None:
    if not shutil.which("vagrant"):
        pytest.skip("vagrant is not installed")
    (project_copy / "tests" / "vm" / "run-suite.sh").unlink()
    result = run_vagrant(project_copy, "virtualbox", "validate", "--ignore-provider")
    assert result.returncode != 0
    assert "run-suite.sh" in result.stdout + result.stderr


def test_unknown_provider_is_rejected(project_copy: Path) -> None:
    if not shutil.which("vagrant"):
        pytest.skip("vagrant is not installed")
    result = run_vagrant(project_copy, "parallels", "validate", "--ignore-provider")
    assert result.returncode != 0
    assert 'VAGRANT_PROVIDER must be libvirt or virtualbox, not "parallels"' in result.stderr


def test_every_driver_and_both_providers_are_covered() -> None:
    text = VAGRANTFILE.read_text(encoding="utf-8")
    drivers = re.search(r"DRIVERS = %w\[([^\]]*)\]", text)
    assert drivers is not None
    assert drivers.group(1).split() == ["vfs", "overlay", "btrfs"]
    assert 'ENV.fetch("VAGRANT_PROVIDER", "libvirt")' in text
    assert "config.vm.provider :libvirt" in text and "config.vm.provider :virtualbox" in text
    boxes = re.findall(r'=> \["([^"]+)"', text)
    assert "debian/bookworm64" in boxes and len(boxes) >= 2


@pytest.mark.parametrize("script", VM_SCRIPTS)
def test_vm_scripts_parse(script: str) -> None:
    path = ROOT / "tests" / "vm" / script
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    body = path.read_text(encoding="utf-8")
    assert "make install" in body or "make test" in body
