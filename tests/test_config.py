"""Configuration: storage.yaml, storage.conf, flags and environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cs_core.config import load_options, parse_toml_config, parse_yaml_config
from cs_core.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "config"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("CONTAINERS_STORAGE_CONFIG", "CONTAINERS_STORAGE_CONF", "STORAGE_DRIVER", "STORAGE_OPTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("sample", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_config_loads(sample: str) -> None:
    opts = parse_yaml_config(str(EXAMPLES / sample))
    assert opts.config_file.endswith(sample)
    assert opts.metadata in ("json", "yaml")
    assert opts.resolvers


def test_yaml_selects_driver_metadata_and_plugin_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.yaml"
    conf.write_text(
        "driver: overlay2\nmetadata: yaml\nresolvers: [name, id]\ngraphroot: /g\nrunroot: /r\n"
        "options:\n  overlay: {mountopt: nodev, skip_mount_home: true}\n"
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONFIG", str(conf))
    opts = load_options()
    assert (opts.driver, opts.metadata, opts.resolvers) == ("overlay", "yaml", ["name", "id"])
    assert (opts.graph_root, opts.run_root) == ("/g", "/r")
    from cs_core.config import plugin_driver_options

    assert plugin_driver_options(opts, "overlay") == ["overlay.mountopt=nodev", "overlay.skip_mount_home=true"]


def test_flags_replace_roots_and_driver_but_keep_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.yaml"
    conf.write_text("driver: overlay\nmetadata: yaml\ngraphroot: /g\nrunroot: /r\n")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONFIG", str(conf))
    opts = load_options(graph_root=str(tmp_path / "G"), driver="vfs")
    assert opts.graph_root == str(tmp_path / "G")
    assert opts.run_root == "/r"
    assert opts.driver == "vfs"
    assert opts.metadata == "yaml"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("driver: [vfs]\n", "'driver'"),
        ("resolvers: id\n", "'resolvers'"),
        ("bogus_key: 1\n", "'bogus_key'"),
        ("options:\n  vfs: 3\n", "'options.vfs'"),
        ("driver: vfs\n  bad: [\n", "invalid YAML"),
    ],
)
def test_invalid_yaml_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    conf = tmp_path / "bad.yaml"
    conf.write_text(text)
    with pytest.raises(ConfigError) as info:
        parse_yaml_config(str(conf))
    message = str(info.value)
    assert str(conf) in message and needle in message
    assert "\n" not in message


def test_missing_explicit_config_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINERS_STORAGE_CONFIG", "/nonexistent/storage.yaml")
    with pytest.raises(ConfigError, match="no such file or directory"):
        load_options()


def test_storage_conf_read_when_no_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text(
        '[storage]\ndriver = "vfs"\ngraphroot = "/gg"\nrunroot = "/rr"\n'
        '[storage.options]\nadditionalimagestores = ["/ro1"]\n'
        '[storage.options.vfs]\nignore_chown_errors = "true"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    opts = load_options()
    assert (opts.driver, opts.graph_root, opts.run_root) == ("vfs", "/gg", "/rr")
    assert opts.driver_options == ["vfs.imagestore=/ro1", "vfs.ignore_chown_errors=true"]


def test_environment_overrides_storage_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text('[storage]\ndriver = "vfs"\n[storage.options.overlay]\nmountopt = "nodev"\n[storage.options.vfs]\nignore_chown_errors = "true"\n')
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    monkeypatch.setenv("STORAGE_DRIVER", "overlay")
    assert parse_toml_config(str(conf)).driver_options == ["overlay.mountopt=nodev"]
    monkeypatch.setenv("STORAGE_OPTS", "vfs.ignore_chown_errors=false")
    monkeypatch.delenv("STORAGE_DRIVER")
    assert load_options().driver_options == ["vfs.ignore_chown_errors=false"]


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text("[storage\n")
    with pytest.raises(ConfigError, match=str(conf)):
        parse_toml_config(str(conf))
