"""Plugin discovery and registration: selection, broken and duplicate plugins, hooks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cs_core import hookspecs


def make_dist(site: Path, dist: str, group: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """Write an installed distribution (dist-info + modules) into ``site``."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [f"[{group}]"] + [f"{name} = {target}" for name, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def run_py(site: Path, code: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)


OPEN = """
from cs_core import open_store, load_options
from cs_core.errors import StorageError
try:
    s = open_store(load_options(graph_root={g!r}, run_root={r!r}, driver={d!r}))
    print("OK", s.driver_name)
except StorageError as exc:
    print("ERR", exc)
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


def test_broken_unselected_plugin_is_harmless_and_selected_one_is_named(site: Path, tmp_path: Path) -> None:
    make_dist(site, "cs-fake-broken", "cs_core.graphdrivers", {"broken": "cs_fake_broken"}, {"cs_fake_broken": "raise ImportError('boom')\n"})
    g, r = str(tmp_path / "g"), str(tmp_path / "r")
    ok = run_py(site, OPEN.format(g=g, r=r, d="vfs"), tmp_path)
    assert ok.stdout.strip() == "OK vfs", ok.stderr
    bad = run_py(site, OPEN.format(g=g, r=r, d="broken"), tmp_path)
    assert "ERR" in bad.stdout and "cs-fake-broken" in bad.stdout and "boom" in bad.stdout, bad.stdout + bad.stderr


def test_duplicate_driver_name_names_both_distributions(site: Path, tmp_path: Path) -> None:
    make_dist(
        site,
        "cs-fake-dup",
        "cs_core.graphdrivers",
        {"vfs": "cs_fake_dup"},
        {"cs_fake_dup": "from cs_driver_vfs import cs_graphdrivers\n"},
    )
    res = run_py(site, OPEN.format(g=str(tmp_path / "g"), r=str(tmp_path / "r"), d="vfs"), tmp_path)
    assert "ERR" in res.stdout, res.stdout + res.stderr
    assert "cs-driver-vfs" in res.stdout and "cs-fake-dup" in res.stdout


def test_unknown_backend_lists_installed(tmp_path: Path) -> None:
    from cs_core.errors import PluginError
    from cs_core.plugins import load_plugins

    with pytest.raises(PluginError) as info:
        load_plugins("nosuch", ["id"], [])
    assert "json" in str(info.value) and "yaml" in str(info.value) and "may not be installed" in str(info.value)


def test_unknown_driver_is_driver_not_supported(tmp_path: Path) -> None:
    res = run_py(tmp_path, OPEN.format(g=str(tmp_path / "g"), r=str(tmp_path / "r"), d="bogus"), tmp_path)
    assert f"ERR failed to GetDriver graph bogus {tmp_path / 'g'}: driver not supported\n" in res.stdout


def test_misspelled_hook_is_caught(site: Path, tmp_path: Path) -> None:
    make_dist(
        site,
        "cs-fake-ext",
        "cs_core.extensions",
        {"typo": "cs_fake_ext"},
        {"cs_fake_ext": "from cs_core import hookimpl\n@hookimpl\ndef cs_layer_craeted(store, layer):\n    pass\n"},
    )
    code = "from cs_core.plugins import load_plugins\ntry:\n    load_plugins('json', ['id'], ['typo'])\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    res = run_py(site, code, tmp_path)
    assert "PluginError" in res.stdout and "cs_layer_craeted" in res.stdout, res.stdout + res.stderr


def test_events_reach_an_extension(site: Path, tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    make_dist(
        site,
        "cs-fake-observer",
        "cs_core.extensions",
        {"observer": "cs_fake_observer"},
        {
            "cs_fake_observer": f"""
            from cs_core import hookimpl
            LOG = {str(log)!r}
            def _w(line):
                with open(LOG, 'a') as fh:
                    fh.write(line + '\\n')
            @hookimpl
            def cs_layer_created(store, layer):
                _w('created ' + layer.id)
            @hookimpl
            def cs_names_changed(store, kind, record_id, names):
                _w('names ' + kind + ' ' + ','.join(names))
            @hookimpl
            def cs_layer_deleted(store, layer_id):
                _w('deleted ' + layer_id)
            @hookimpl
            def cs_image_created(store, image):
                _w('image ' + image.id)
            @hookimpl
            def cs_image_deleted(store, image_id):
                _w('image-deleted ' + image_id)
            @hookimpl
            def cs_container_created(store, container):
                _w('container ' + container.id)
            @hookimpl
            def cs_container_deleted(store, container_id):
                _w('container-deleted ' + container_id)
            @hookimpl
            def cs_layer_mounted(store, layer, path):
                _w('mounted ' + layer.id)
            @hookimpl
            def cs_layer_unmounted(store, layer, still_mounted):
                _w('unmounted ' + layer.id + ' ' + str(still_mounted))
            @hookimpl
            def cs_metadata_changed(store, kind, record_id):
                _w('metadata ' + kind + ' ' + record_id)
            """
        },
    )
    conf = tmp_path / "storage.yaml"
    conf.write_text("extensions: [observer]\n")
    code = f"""
    import os
    os.environ['CONTAINERS_STORAGE_CONFIG'] = {str(conf)!r}
    from cs_core import open_store, load_options
    s = open_store(load_options(graph_root={str(tmp_path / 'g')!r}, run_root={str(tmp_path / 'r')!r}, driver='vfs'))
    layer = s.create_layer(layer_id='l1')
    s.add_names('l1', ['n1'])
    s.mount('l1')
    s.unmount('l1')
    s.set_metadata('l1', 'md')
    s.delete_layer('l1')
    s.create_image(image_id='i1')
    s.create_container('i1', container_id='c1')
    s.delete_container('c1')
    s.delete_image('i1')
    """
    res = run_py(site, code, tmp_path)
    assert res.returncode == 0, res.stderr
    lines = log.read_text().splitlines()
    assert lines[:6] == ["created l1", "names layer n1", "mounted l1", "unmounted l1 False", "metadata layer l1", "deleted l1"]
    assert lines[6:8] == ["image i1", lines[7]] and lines[7].startswith("created ")
    assert lines[8:] == ["container c1", f"deleted {lines[7][8:]}", "container-deleted c1", "image-deleted i1"]


def test_every_hook_is_documented() -> None:
    hooks = [name for name in dir(hookspecs.HookSpecs) if name.startswith("cs_")]
    assert len(hooks) >= 10
    for name in hooks:
        doc = getattr(hookspecs.HookSpecs, name).__doc__
        assert doc and len(doc.strip()) > 10, f"{name} has no documentation"


def test_import_cs_core_imports_no_plugin() -> None:
    code = "import sys, cs_core; print(sorted(m for m in sys.modules if m.startswith(('cs_driver', 'cs_metadata', 'stevedore'))))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr


def test_store_imports_only_selected_plugins(tmp_path: Path) -> None:
    code = f"""
    import sys
    from cs_core import open_store, load_options
    s = open_store(load_options(graph_root={str(tmp_path / 'g')!r}, run_root={str(tmp_path / 'r')!r}, driver='vfs'))
    print(sorted({{m.split('.')[0] for m in sys.modules if m.startswith(('cs_driver', 'cs_metadata'))}}))
    """
    res = run_py(tmp_path, code, tmp_path)
    assert res.stdout.strip() == "['cs_driver_vfs', 'cs_metadata_json']", res.stdout + res.stderr


def _open_with(tmp_path: Path, yaml_text: str, driver: str | None = None) -> str:
    conf = tmp_path / "sel.yaml"
    conf.write_text(yaml_text)
    code = f"""
    import os
    os.environ['CONTAINERS_STORAGE_CONFIG'] = {str(conf)!r}
    from cs_core import open_store, load_options
    from cs_core.errors import StorageError
    opts = load_options()
    opts.graph_root, opts.run_root = {str(tmp_path / 'g')!r}, {str(tmp_path / 'r')!r}
    opts.driver = {driver or ''!r} or opts.driver
    try:
        print(open_store(opts).driver_name)
    except StorageError as exc:
        print('ERR', exc)
    """
    return run_py(tmp_path, code, tmp_path).stdout.strip()


def test_driver_selection_rules(tmp_path: Path) -> None:
    # Nothing under the root: the first supported driver of the priority list.
    assert _open_with(tmp_path, "driver_priority: [notinstalled, vfs]\n") == "vfs"
    # Explicit name wins over everything.
    assert _open_with(tmp_path, "driver: vfs\ndriver_priority: [overlay]\n") == "vfs"
    # A driver with state under the root is chosen again.
    (tmp_path / "g" / "vfs").mkdir(parents=True, exist_ok=True)
    assert _open_with(tmp_path, "driver_priority: [overlay, vfs]\n") == "vfs"
    # State of two drivers: refuse to guess.
    (tmp_path / "g" / "overlay").mkdir(parents=True, exist_ok=True)
    out = _open_with(tmp_path, "driver_priority: [overlay, vfs]\n")
    if "overlay" in {p.name for p in __import__("cs_core.plugins").plugins.installed_plugins("cs_core.graphdrivers")}:
        assert out.startswith("ERR") and "contains several valid graphdrivers: overlay, vfs" in out


EXTENSION_COMMANDS = """
import click

from cs_core import hookimpl
from cs_core.cli.base import command, json_option


@command("hello", min_args=1, max_args=1, usage="NAME", help="Say hello", needs_store=False)
@json_option
@click.option("--shout", "-s", "shout", is_flag=True, help="Louder")
@click.pass_obj
def hello(inv, args, json, shout):
    text = f"hello {args[0]}"
    if json:
        inv.print_json({"greeting": text})
    else:
        inv.print(text.upper() if shout else text)
    return 0


@click.command("layer-count")
@click.option("--plus", "-p", "plus", default="0", help="Added to the count")
@click.argument("extra", nargs=-1)
@click.pass_obj
def layer_count(inv, plus, extra):
    inv.print(f"{len(inv.store.layers()) + int(plus)} {' '.join(extra)}".strip())
    return 3


@hookimpl
def cs_add_commands(cli):
    cli.add_command(hello)
    cli.add_command(layer_count)
"""


def test_extension_commands_run_through_the_cli(site: Path, tmp_path: Path) -> None:
    """Commands added by ``cs_add_commands``: one declared like the built-ins and a plain click command."""
    make_dist(site, "cs-fake-cmds", "cs_core.extensions", {"cmds": "cs_fake_cmds"}, {"cs_fake_cmds": EXTENSION_COMMANDS})
    conf = tmp_path / "storage.yaml"
    conf.write_text("extensions: [cmds]\n")
    env = dict(os.environ)
    env.update(PYTHONPATH=str(site) + os.pathsep + env.get("PYTHONPATH", ""), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["CONTAINERS_STORAGE_CONFIG"] = str(conf)
    store = ["--graph", str(tmp_path / "g"), "--run", str(tmp_path / "r"), "-s", "vfs"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cs_core.cli", *store, *args], capture_output=True, text=True, env=env)

    assert cli("create-layer").returncode == 0
    res = cli("hello", "-s", "world")
    assert (res.returncode, res.stdout, res.stderr) == (0, "HELLO WORLD\n", "")
    assert cli("hello", "--json", "world").stdout == '{"greeting":"hello world"}\n'
    assert cli("hello").returncode == 1 and "hello: more arguments required." in cli("hello").stdout
    res = cli("layer-count", "--plus=2", "a", "b")
    assert (res.returncode, res.stdout) == (3, "3 a b\n"), res.stderr
    assert cli("no-such-command").stdout == "no-such-command: unrecognized command.\n"
