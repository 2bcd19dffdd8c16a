"""``config [CONFIGFILE]`` end to end (cli.md "``config``"): Go's StoreOptions as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cs_testlib import OUR_CLI, Result, clean_env

BUILT_IN = '{"runroot":"/run/containers/storage","root":"/var/lib/containers/storage","RootlessStoragePath":"","PullOptions":null}\n'

FULL_CONF = """\
[storage]
driver = "overlay2"
graphroot = "/x/graph"
runroot = "/x/run"
imagestore = "/x/images"
rootless_storage_path = "$HOME/.local/share/containers/storage"
driver_priority = ["overlay", "vfs"]
transient_store = true

[storage.options]
additionalimagestores = ["/ro1"]
remap-uids = "0:100000:65536"
remap-gids = "0:200000:1000:1000:300000:5"
root-auto-userns-user = "containers"
auto-userns-min-size = 1024
auto-userns-max-size = 65536
disable-volatile = true
pull_options = {use_hard_links = "true", enable_partial_images = "<&>"}

[storage.options.overlay]
mountopt = "nodev"
"""

FULL_JSON = (
    '{"runroot":"/x/run","root":"/x/graph","imagestore":"/x/images",'
    '"RootlessStoragePath":"$HOME/.local/share/containers/storage",'
    '"driver":"overlay","driver-priority":["overlay","vfs"],'
    '"driver-options":["overlay.imagestore=/ro1","overlay.mountopt=nodev"],'
    '"uidmap":[{"container_id":0,"host_id":100000,"size":65536}],'
    '"gidmap":[{"container_id":0,"host_id":200000,"size":1000},{"container_id":1000,"host_id":300000,"size":5}],'
    '"root_auto_ns_user":"containers","auto_userns_min_size":1024,"auto_userns_max_size":65536,'
    '"PullOptions":{"enable_partial_images":"\\u003c\\u0026\\u003e","use_hard_links":"true"},'
    '"disable-volatile":true,"transient_store":true}\n'
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No system configuration: an empty storage.yaml unless the caller points elsewhere."""
    env = clean_env(tmp_path)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def _run(env: dict[str, str], *args: str) -> Result:
    proc = subprocess.run([*OUR_CLI, "config", *args], capture_output=True, env=env, timeout=60)
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def _ok(env: dict[str, str], *args: str) -> str:
    res = _run(env, *args)
    assert (res.rc, res.err) == (0, ""), res
    return res.out


def test_default_options_are_the_built_ins(tmp_path: Path) -> None:
    assert _ok(_env(tmp_path)) == BUILT_IN


def test_default_options_follow_the_environment(tmp_path: Path) -> None:
    env = _env(tmp_path, STORAGE_DRIVER="vfs", STORAGE_OPTS="vfs.ignore_chown_errors=true")
    out = json.loads(_ok(env))
    assert list(out) == ["runroot", "root", "RootlessStoragePath", "driver", "driver-options", "PullOptions"]
    assert out["driver"] == "vfs"
    assert out["driver-options"] == ["vfs.ignore_chown_errors=true"]


def test_default_options_come_from_storage_conf(tmp_path: Path) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text(FULL_CONF)
    env = _env(tmp_path)
    del env["CONTAINERS_STORAGE_CONFIG"]
    env["CONTAINERS_STORAGE_CONF"] = str(conf)
    assert _ok(env) == FULL_JSON


def test_file_argument_storage_conf_keeps_struct_order(tmp_path: Path) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text(FULL_CONF)
    assert _ok(_env(tmp_path), str(conf)) == FULL_JSON


def test_file_argument_minimal_storage_conf(tmp_path: Path) -> None:
    conf = tmp_path / "min.conf"
    conf.write_text('[storage]\ndriver = "vfs"\n[storage.options]\npull_options = {}\n')
    assert _ok(_env(tmp_path), str(conf)) == (
        '{"runroot":"/run/containers/storage","root":"/var/lib/containers/storage",'
        '"RootlessStoragePath":"","driver":"vfs","PullOptions":{}}\n'
    )


def test_file_argument_storage_yaml(tmp_path: Path) -> None:
    conf = tmp_path / "storage.yaml"
    conf.write_text("driver: vfs\ngraphroot: /y/graph\ntransient_store: true\noptions:\n  vfs:\n    ignore_chown_errors: true\n")
    assert _ok(_env(tmp_path), str(conf)) == (
        '{"runroot":"/run/containers/storage","root":"/y/graph","RootlessStoragePath":"",'
        '"driver":"vfs","driver-options":["vfs.ignore_chown_errors=true"],"PullOptions":null,"transient_store":true}\n'
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.conf", "[storage\n", "invalid TOML"),
        ("remap.conf", '[storage.options]\nremap-uids = "0:1"\n', "remap-uids setting is malformed"),
        ("broken.yaml", "driver: [\n", "invalid YAML"),
        ("unknown.yaml", "bogus: 1\n", "unknown key 'bogus'"),
    ],
)
def test_broken_file_argument_is_a_reload_error(tmp_path: Path, name: str, text: str, message: str) -> None:
    conf = tmp_path / name
    conf.write_text(text)
    res = _run(_env(tmp_path), str(conf))
    assert res.rc == 1
    assert res.out == ""
    assert res.err.startswith("reload: ")
    assert message in res.err
    assert res.err.count("\n") == 1


def test_missing_file_argument_is_a_reload_error(tmp_path: Path) -> None:
    res = _run(_env(tmp_path), str(tmp_path / "nope.conf"))
    assert (res.rc, res.out) == (1, "")
    assert res.err == f"reload: stat {tmp_path / 'nope.conf'}: no such file or directory\n"


def test_broken_default_configuration_is_a_default_error(tmp_path: Path) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text('[storage]\ndriver = "vfs"\n[storage.options]\nremap-gids = "a:b:c"\n')
    env = _env(tmp_path)
    del env["CONTAINERS_STORAGE_CONFIG"]
    env["CONTAINERS_STORAGE_CONF"] = str(conf)
    res = _run(env)
    assert (res.rc, res.out) == (1, "")
    assert res.err.startswith("default: initializing ID mappings: remap-gids setting is malformed")
    # The file argument is only read after the defaults: the same error.
    other = tmp_path / "other.conf"
    other.write_text("[storage]\n")
    assert _run(env, str(other)).err.startswith("default: ")


def test_too_many_arguments(tmp_path: Path) -> None:
    res = _run(_env(tmp_path), "a", "b")
    assert res.rc == 1
    assert res.out.startswith("config: too many arguments")
