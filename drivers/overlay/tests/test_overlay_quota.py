"""XFS project quotas of the overlay driver (storage.md 9.2 "Quota" and "Create").

Everything runs on real loop-mounted file systems made in the test's tmp dir. The limit
enforcement tests need an XFS mounted with ``-o pquota``; a kernel built without
``CONFIG_XFS_QUOTA`` refuses that mount, and only then are they skipped (with that reason).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from overlay_testlib import DriverFactory, requires_root_overlay, unmount_all_under

from cs_core.driver import CreateOpts, MountOpts
from cs_core.errors import InvalidOption, NotSupported
from cs_driver_overlay import quota
from cs_driver_overlay.driver import OverlayDriver

GO_CLI = "/usr/bin/containers-storage"
MIB = 1 << 20
QUOTA_ERRNOS = (errno.EDQUOT, errno.ENOSPC)

MakeFs = Callable[..., str]


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check)


def _kernel_says() -> str:
    out = _run("dmesg", check=False).stdout.strip().splitlines()
    return out[-1] if out else ""


@pytest.fixture
def make_fs(tmp_path: Path) -> Iterator[MakeFs]:
    """``make_fs(kind, *mount_options)``: a loop-mounted xfs/ext4 (or a tmpfs); always torn down."""
    mounted: list[tuple[str, str]] = []

    def factory(kind: str, *options: str) -> str:
        if os.geteuid() != 0:
            pytest.skip("loop and tmpfs mounts need root")
        name = f"{kind}{len(mounted)}"
        mnt = tmp_path / f"{name}.mnt"
        mnt.mkdir()
        if kind == "tmpfs":
            _run("mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", str(mnt))
            mounted.append((str(mnt), ""))
            return str(mnt)
        mkfs = shutil.which(f"mkfs.{kind}")
        if mkfs is None:
            pytest.skip(f"mkfs.{kind} is not installed (apt-get install -y xfsprogs)")
        img = tmp_path / f"{name}.img"
        with open(img, "wb") as fh:
            fh.truncate(300 * MIB)
        _run(mkfs, "-q", *(["-F"] if kind == "ext4" else []), str(img))
        result = _run("mount", "-o", ",".join(("loop", *options)), str(img), str(mnt), check=False)
        if result.returncode != 0:
            pytest.skip(
                f"the kernel cannot mount {kind} with -o {','.join(options) or 'defaults'}: "
                f"{_kernel_says() or result.stderr.strip()}"
            )
        mounted.append((str(mnt), str(img)))
        return str(mnt)

    yield factory
    for mnt, img in reversed(mounted):
        unmount_all_under(mnt)
        if img:
            attached = _run("losetup", "-j", img, check=False).stdout
            for line in attached.splitlines():
                _run("losetup", "-d", line.split(":", 1)[0], check=False)


def _fs_driver(make_driver: DriverFactory, root: str, *options: str) -> OverlayDriver:
    return make_driver(*options, graph=os.path.join(root, "g"), run=os.path.join(root, "r"))


@pytest.fixture
def pquota_xfs(make_fs: MakeFs) -> str:
    """An XFS with project quotas enforced (skips where the kernel cannot do that)."""
    return make_fs("xfs", "pquota")


def _write(path: str, size: int) -> None:
    """Write ``size`` bytes of data and make them hit the disk (errors propagate)."""
    chunk = b"\xa5" * MIB
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(chunk[: min(left, MIB)])
            left -= MIB
        fh.flush()
        os.fsync(fh.fileno())


def _assert_quota_error(exc: OSError) -> None:
    assert exc.errno in QUOTA_ERRNOS, exc


# ---- pure parsing ----------------------------------------------------------------------------
def test_storage_opt_parsing() -> None:
    assert quota.parse_storage_opt({"size": "10M"}) == quota.Quota(size=10 * MIB)
    assert quota.parse_storage_opt({"SIZE": "1G", "Inodes": "300"}) == quota.Quota(size=1 << 30, inodes=300)
    assert quota.parse_storage_opt({"size": "1.5k"}) == quota.Quota(size=1536)
    with pytest.raises(InvalidOption, match=r"^unknown option foo$"):
        quota.parse_storage_opt({"foo": "1"})
    with pytest.raises(InvalidOption, match=r'^strconv.ParseUint: parsing "-1": invalid syntax$'):
        quota.parse_storage_opt({"inodes": "-1"})
    with pytest.raises(InvalidOption, match=r"^invalid size: 'big'$"):
        quota.parse_storage_opt({"size": "big"})


def test_struct_layouts_match_kernel_headers(tmp_path: Path) -> None:
    """The ctypes structures and request numbers equal the C UAPI headers' values."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not os.path.exists("/usr/include/linux/dqblk_xfs.h"):
        pytest.skip("no C compiler or kernel UAPI headers to compare against")
    src = tmp_path / "abi.c"
    src.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n#include <sys/quota.h>\n"
        "#include <linux/dqblk_xfs.h>\n#include <linux/fs.h>\n"
        'int main(void){printf("%zu %zu %zu %zu %zu %zu %zu %lu %lu %d %d %d %d %d\\n",'
        "sizeof(struct fs_disk_quota), offsetof(struct fs_disk_quota, d_blk_hardlimit),"
        "offsetof(struct fs_disk_quota, d_ino_hardlimit), offsetof(struct fs_disk_quota, d_bcount),"
        "offsetof(struct fs_disk_quota, d_rtb_hardlimit), sizeof(struct fsxattr),"
        "offsetof(struct fsxattr, fsx_projid), (unsigned long)FS_IOC_FSGETXATTR,"
        "(unsigned long)FS_IOC_FSSETXATTR, QCMD(Q_XSETQLIM, PRJQUOTA), QCMD(Q_XGETQUOTA, PRJQUOTA),"
        "FS_DQ_BHARD|FS_DQ_BSOFT|FS_DQ_IHARD|FS_DQ_ISOFT, FS_XFLAG_PROJINHERIT, FS_PROJ_QUOTA);return 0;}\n"
    )
    exe = tmp_path / "abi"
    _run(cc, "-o", str(exe), str(src))
    got = [int(v) for v in _run(str(exe)).stdout.split()]
    dq = quota.FsDiskQuota
    assert got == [
        ctypes.sizeof(dq),
        dq.d_blk_hardlimit.offset,
        dq.d_ino_hardlimit.offset,
        dq.d_bcount.offset,
        dq.d_rtb_hardlimit.offset,
        ctypes.sizeof(quota.FsXattr),
        quota.FsXattr.fsx_projid.offset,
        quota.FS_IOC_FSGETXATTR,
        quota.FS_IOC_FSSETXATTR,
        quota.qcmd(quota.Q_XSETQLIM, quota.PRJQUOTA),
        quota.qcmd(quota.Q_XGETQUOTA, quota.PRJQUOTA),
        quota.FS_DQ_LIMITS,
        quota.FS_XFLAG_PROJINHERIT,
        quota.FS_PROJ_QUOTA,
    ]


# ---- XFS without quota enforcement (project IDs, the device node, Go's errors) ---------------
def test_project_id_assignment_on_xfs(make_fs: MakeFs) -> None:
    mnt = make_fs("xfs")
    layer = os.path.join(mnt, "layer")
    os.mkdir(layer)
    assert quota.get_project_id(layer) == 0
    quota.set_project_id(layer, 3570652705)
    assert quota.get_project_id(layer) == 3570652705
    assert quota.get_xflags(layer) & quota.FS_XFLAG_PROJINHERIT
    os.makedirs(os.path.join(layer, "diff", "sub"))
    assert quota.get_project_id(os.path.join(layer, "diff", "sub")) == 3570652705
    if shutil.which("xfs_io"):
        assert _run("xfs_io", "-c", "lsproj", os.path.join(layer, "diff")).stdout.strip() == "projid = 3570652705"


def test_backing_fs_block_dev(make_fs: MakeFs) -> None:
    mnt = make_fs("xfs")
    home = os.path.join(mnt, "home")
    os.mkdir(home)
    for _ in range(2):  # re-created over an existing node
        path = quota.make_backing_fs_dev(home)
        st = os.lstat(path)
        assert path == os.path.join(home, "backingFsBlockDev")
        assert stat.S_ISBLK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_rdev == os.stat(mnt).st_dev
    assert sorted(os.listdir(home)) == ["backingFsBlockDev"]


@requires_root_overlay
def test_xfs_without_pquota(make_fs: MakeFs, make_driver: DriverFactory) -> None:
    mnt = make_fs("xfs")
    drv = _fs_driver(make_driver, mnt)
    assert drv.backing_fs == "xfs" and drv.quota_ctl is None
    assert stat.S_ISBLK(os.lstat(os.path.join(drv.home, "backingFsBlockDev")).st_mode)
    drv.create("rw", "", CreateOpts(), True)
    assert quota.get_project_id(os.path.join(drv.home, "rw")) == 0
    with pytest.raises(NotSupported) as info:
        drv.create("rw2", "", CreateOpts(storage_opt={"size": "10M"}), True)
    assert str(info.value) == "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
    assert not drv.exists("rw2")

    home2 = os.path.join(mnt, "g2", "g", "overlay")
    os.makedirs(home2)
    expected_id = 10000 + os.stat(home2).st_ino * 10000 % (0xFFFFFFFF - 10000)
    with pytest.raises(InvalidOption) as err:
        _fs_driver(make_driver, os.path.join(mnt, "g2"), "overlay.size=10M")
    assert str(err.value) == (
        "storage options overlay.size and overlay.inodes not supported. Filesystem does not support "
        f"Project Quota: failed to set quota limit for projid {expected_id} on {home2}/backingFsBlockDev: "
        "function not implemented"
    )


@requires_root_overlay
@pytest.mark.skipif(not os.path.exists(GO_CLI), reason="the Go reference CLI is not installed")
def test_xfs_without_pquota_error_matches_go(make_fs: MakeFs) -> None:
    mnt = make_fs("xfs")
    outputs = []
    for name, cli in (("go", [GO_CLI]), ("py", [sys.executable, "-m", "cs_core.cli"])):
        graph, run = os.path.join(mnt, name, "g"), os.path.join(mnt, name, "r")
        res = _run(*cli, "--graph", graph, "--run", run, "-s", "overlay", "--storage-opt", "overlay.size=10M",
                   "create-layer", check=False)  # fmt: skip
        home = os.path.join(graph, "overlay")
        projid = 10000 + os.stat(home).st_ino * 10000 % (0xFFFFFFFF - 10000)
        outputs.append((res.returncode, (res.stdout + res.stderr).replace(graph, "<g>").replace(str(projid), "<id>")))
        assert sorted(os.listdir(home)) == [".has-mount-program", "backingFsBlockDev", "l"]
    assert outputs[0] == outputs[1]
    assert outputs[1][0] == 1
    assert outputs[1][1] == (
        "error initializing: storage options overlay.size and overlay.inodes not supported. Filesystem does "
        "not support Project Quota: failed to set quota limit for projid <id> on <g>/overlay/backingFsBlockDev: "
        "function not implemented\n"
    )


# ---- the error texts off XFS and for read-only layers -----------------------------------------
@requires_root_overlay
@pytest.mark.parametrize(("kind", "fs_name"), [("ext4", "extfs"), ("tmpfs", "tmpfs")])
def test_size_and_inodes_need_xfs(make_fs: MakeFs, make_driver: DriverFactory, kind: str, fs_name: str) -> None:
    mnt = make_fs(kind)
    for option in ("overlay.size=10M", "overlay.inodes=100"):
        with pytest.raises(InvalidOption) as info:
            _fs_driver(make_driver, mnt, option)
        assert str(info.value) == (
            f"storage option overlay.size and overlay.inodes only supported for backingFS XFS. Found {fs_name}"
        )
    drv = _fs_driver(make_driver, mnt)
    assert drv.quota_ctl is None
    assert not os.path.lexists(os.path.join(drv.home, "backingFsBlockDev"))
    with pytest.raises(NotSupported) as err:
        drv.create("rw", "", CreateOpts(storage_opt={"inodes": "10"}), True)
    assert str(err.value) == "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
    drv.create("rw", "", CreateOpts(), True)  # no options: fine
    assert drv.exists("rw")


@requires_root_overlay
def test_read_only_layers_reject_size_and_inodes(make_driver: DriverFactory) -> None:
    drv = make_driver()
    for key in ("size", "inodes"):
        with pytest.raises(InvalidOption) as info:
            drv.create(f"ro-{key}", "", CreateOpts(storage_opt={key: "10"}), False)
        assert str(info.value) == f"--storage-opt {key} is only supported for ReadWrite Layers"
    with pytest.raises(InvalidOption, match="^unknown option bogus$"):
        drv.create("ro", "", CreateOpts(storage_opt={"bogus": "1"}), False)
    assert drv.list_layers() == []


# ---- enforcement on XFS with pquota -----------------------------------------------------------
@requires_root_overlay
def test_rw_layer_size_limit(pquota_xfs: str, make_driver: DriverFactory) -> None:
    drv = _fs_driver(make_driver, pquota_xfs)
    assert drv.quota_ctl is not None
    drv.create("rw", "", CreateOpts(storage_opt={"size": "10M"}), True)
    layer_dir = os.path.join(drv.home, "rw")
    project_id = quota.get_project_id(layer_dir)
    assert project_id > 0 and quota.get_project_id(os.path.join(layer_dir, "diff")) == project_id
    assert drv.quota_ctl.get_quota(layer_dir).size_limit == 10 * MIB
    merged = drv.get("rw", MountOpts())
    try:
        _write(os.path.join(merged, "small"), 5 * MIB)
        assert os.path.getsize(os.path.join(layer_dir, "diff", "small")) == 5 * MIB
        os.unlink(os.path.join(merged, "small"))
        with pytest.raises(OSError) as info:
            _write(os.path.join(merged, "big"), 20 * MIB)
        _assert_quota_error(info.value)
    finally:
        drv.put("rw")


@requires_root_overlay
def test_driver_default_size_and_overrides(pquota_xfs: str, make_driver: DriverFactory) -> None:
    drv = _fs_driver(make_driver, pquota_xfs, "overlay.size=10M")
    assert drv.quota_ctl is not None
    drv.create("base", "", CreateOpts(), False)  # read-only: no project
    assert quota.get_project_id(os.path.join(drv.home, "base")) == 0
    drv.create("dflt", "base", CreateOpts(), True)
    drv.create("big", "base", CreateOpts(storage_opt={"size": "20M"}), True)
    ids = {quota.get_project_id(os.path.join(drv.home, n)) for n in ("dflt", "big")}
    assert len(ids) == 2 and 0 not in ids
    assert drv.quota_ctl.get_quota(os.path.join(drv.home, "dflt")).size_limit == 10 * MIB
    assert drv.quota_ctl.get_quota(os.path.join(drv.home, "big")).size_limit == 20 * MIB
    merged = drv.get("dflt", MountOpts())
    try:
        with pytest.raises(OSError) as info:
            _write(os.path.join(merged, "f"), 20 * MIB)
        _assert_quota_error(info.value)
    finally:
        drv.put("dflt")
    merged = drv.get("big", MountOpts())
    try:
        _write(os.path.join(merged, "f"), 15 * MIB)
    finally:
        drv.put("big")


@requires_root_overlay
def test_inodes_limit(pquota_xfs: str, make_driver: DriverFactory) -> None:
    drv = _fs_driver(make_driver, pquota_xfs)
    drv.create("rw", "", CreateOpts(storage_opt={"inodes": "40"}), True)
    assert drv.quota_ctl is not None
    assert drv.quota_ctl.get_quota(os.path.join(drv.home, "rw")).inode_limit == 40
    merged = drv.get("rw", MountOpts())
    try:
        created = 0
        with pytest.raises(OSError) as info:
            for n in range(200):
                with open(os.path.join(merged, f"f{n}"), "w"):
                    pass
                created += 1
        _assert_quota_error(info.value)
        assert 10 <= created < 40
    finally:
        drv.put("rw")


@requires_root_overlay
def test_remove_clears_quota_and_ids_survive_restart(pquota_xfs: str, make_driver: DriverFactory) -> None:
    drv = _fs_driver(make_driver, pquota_xfs)
    ctl = drv.quota_ctl
    assert ctl is not None
    drv.create("a", "", CreateOpts(storage_opt={"size": "10M", "inodes": "100"}), True)
    drv.create("b", "", CreateOpts(storage_opt={"size": "12M"}), True)
    id_a = quota.get_project_id(os.path.join(drv.home, "a"))
    id_b = quota.get_project_id(os.path.join(drv.home, "b"))
    assert id_b == id_a + 1
    drv.remove("a")
    usage = ctl.usage(id_a)
    assert (usage.size_limit, usage.inode_limit) == (0, 0)
    assert ctl.usage(id_b).size_limit == 12 * MIB
    again = _fs_driver(make_driver, pquota_xfs)  # a new process-like instance: continues above b
    assert again.quota_ctl is not None
    again.create("c", "", CreateOpts(storage_opt={"size": "10M"}), True)
    assert quota.get_project_id(os.path.join(again.home, "c")) == id_b + 1
    assert again.quota_ctl.project_id(os.path.join(again.home, "b")) == id_b


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "-m", "cs_core.cli", *args, check=False)


@requires_root_overlay
def test_cli_size_limit(pquota_xfs: str) -> None:
    base = ["--graph", os.path.join(pquota_xfs, "g"), "--run", os.path.join(pquota_xfs, "r"), "-s", "overlay",
            "--storage-opt", "overlay.size=10M"]  # fmt: skip
    created = _cli(*base, "create-layer")
    assert created.returncode == 0, created.stderr
    layer = created.stdout.strip()
    mounted = _cli(*base, "mount", layer)
    assert mounted.returncode == 0, mounted.stderr
    merged = mounted.stdout.strip()
    try:
        _write(os.path.join(merged, "ok"), 5 * MIB)
        with pytest.raises(OSError) as info:
            _write(os.path.join(merged, "big"), 20 * MIB)
        _assert_quota_error(info.value)
    finally:
        _cli(*base, "unmount", layer)
        _cli(*base, "shutdown")


def _project_hard_limits(mnt: str, kind: str) -> dict[int, int]:
    """``project id -> hard limit`` (KiB for ``-b``, count for ``-i``) from ``xfs_quota ... report -p``."""
    out = _run("xfs_quota", "-x", "-c", f"report -p {kind} -N -n", mnt).stdout
    result: dict[int, int] = {}
    for line in out.splitlines():
        fields = line.split()  # #ID used soft hard warn/grace
        if len(fields) >= 4 and fields[0].startswith("#") and fields[0][1:].isdigit() and fields[0] != "#0":
            result[int(fields[0][1:])] = int(fields[3])
    return result


def _project_limits(mnt: str) -> dict[int, tuple[int, int]]:
    """``project id -> (block hard KiB, inode hard)`` as ``xfs_quota`` reports them."""
    blocks, inodes = _project_hard_limits(mnt, "-b"), _project_hard_limits(mnt, "-i")
    return {pid: (blocks.get(pid, 0), inodes.get(pid, 0)) for pid in blocks.keys() | inodes.keys()}


@requires_root_overlay
@pytest.mark.skipif(not os.path.exists(GO_CLI) or not shutil.which("xfs_quota"), reason="needs Go CLI and xfs_quota")
def test_on_disk_quota_matches_go(pquota_xfs: str) -> None:
    limits = {}
    for name, cli in (("go", [GO_CLI]), ("py", [sys.executable, "-m", "cs_core.cli"])):
        graph = os.path.join(pquota_xfs, name)
        base = ["--graph", graph, "--run", graph + ".run", "-s", "overlay", "--storage-opt", "overlay.size=10M"]
        before = set(_project_limits(pquota_xfs))
        res = _run(*cli, *base, "create-layer", check=False)
        assert res.returncode == 0, res.stderr
        layer_dir = os.path.join(graph, "overlay", res.stdout.strip())
        project_id = quota.get_project_id(layer_dir)
        home_id = 10000 + os.stat(os.path.join(graph, "overlay")).st_ino * 10000 % (0xFFFFFFFF - 10000)
        assert project_id == home_id + 1  # first layer: right above the probed base ID
        assert quota.get_xflags(layer_dir) & quota.FS_XFLAG_PROJINHERIT
        new = {k: v for k, v in _project_limits(pquota_xfs).items() if k not in before}
        assert set(new) == {project_id}
        limits[name] = new[project_id]
        _run(*cli, *base, "shutdown", check=False)
    assert limits["py"] == limits["go"] == (10240, 0)


# ---- bookkeeping on a real XFS with quotactl recorded -----------------------------------------
@requires_root_overlay
def test_project_id_bookkeeping_with_recorded_quotactl(
    make_fs: MakeFs, make_driver: DriverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Project IDs are really set on XFS; only ``quotactl`` (absent without CONFIG_XFS_QUOTA) is recorded.

    This runs everywhere, so the ID allocation, the inheritance into ``diff``/``work``/``merged``,
    the defaults and the Q_XSETQLIM arguments (512-byte blocks, all four limits) are checked even
    where the enforcement tests above must skip.
    """
    calls: list[tuple[int, str, int, int, int, int]] = []

    def recorder(cmd: int, device: str, qid: int, addr: object) -> None:
        assert isinstance(addr, quota.FsDiskQuota)
        assert addr.d_version == quota.FS_DQUOT_VERSION and addr.d_flags == quota.FS_PROJ_QUOTA
        assert addr.d_id == qid
        assert (addr.d_blk_softlimit, addr.d_ino_softlimit) == (addr.d_blk_hardlimit, addr.d_ino_hardlimit)
        calls.append((cmd, device, qid, addr.d_fieldmask, addr.d_blk_hardlimit, addr.d_ino_hardlimit))

    monkeypatch.setattr(quota, "_quotactl", recorder)
    mnt = make_fs("xfs")
    drv = _fs_driver(make_driver, mnt, "overlay.size=10M")
    ctl = drv.quota_ctl
    assert ctl is not None
    device = os.path.join(drv.home, "backingFsBlockDev")
    base_id = 10000 + os.stat(drv.home).st_ino * 10000 % (0xFFFFFFFF - 10000)
    assert calls == [(quota.Q_XSETQLIM, device, base_id, 0, 0, 0)]  # Go's probe: empty field mask
    calls.clear()

    drv.create("ro", "", CreateOpts(), False)
    drv.create("rw", "ro", CreateOpts(), True)
    drv.create("rw2", "ro", CreateOpts(storage_opt={"size": "1G", "inodes": "500"}), True)
    assert calls == [
        (quota.Q_XSETQLIM, device, base_id + 1, quota.FS_DQ_LIMITS, 10 * MIB // 512, 0),
        (quota.Q_XSETQLIM, device, base_id + 2, quota.FS_DQ_LIMITS, (1 << 30) // 512, 500),
    ]
    assert quota.get_project_id(os.path.join(drv.home, "ro")) == 0
    for sub in ("", "diff", "work", "merged"):
        assert quota.get_project_id(os.path.join(drv.home, "rw", sub)) == base_id + 1
    merged = drv.get("rw", MountOpts())
    try:
        with open(os.path.join(merged, "file"), "w") as fh:
            fh.write("x")
    finally:
        drv.put("rw")
    assert quota.get_project_id(os.path.join(drv.home, "rw", "diff", "file")) == base_id + 1

    calls.clear()
    drv.remove("rw")
    assert calls == [(quota.Q_XSETQLIM, device, base_id + 1, quota.FS_DQ_LIMITS, 0, 0)]
    assert ctl.project_id(os.path.join(drv.home, "rw")) is None

    again = _fs_driver(make_driver, mnt)  # restart: existing IDs are found, new ones go above them
    assert again.quota_ctl is not None
    assert again.quota_ctl.project_id(os.path.join(again.home, "rw2")) == base_id + 2
    calls.clear()
    again.create("rw3", "", CreateOpts(storage_opt={"inodes": "7"}), True)
    assert calls == [(quota.Q_XSETQLIM, device, base_id + 3, quota.FS_DQ_LIMITS, 0, 7)]
    assert quota.get_project_id(os.path.join(again.home, "rw3")) == base_id + 3
