"""The overlay graph driver (storage.md 9.2): kernel overlayfs or a FUSE mount program."""

from __future__ import annotations

import os
import stat
import threading
from typing import TYPE_CHECKING, BinaryIO

from cs_core.driver import (
    ApplyDiffOpts,
    CreateOpts,
    DriverOptions,
    FileGetter,
    GraphDriver,
    Mapping,
    MountOpts,
    ensure_dir,
)
from cs_core.errors import DriverNotSupported, InvalidOption, NotFoundError, NotSupported, StorageError
from cs_core.idmap import IDMap, root_id
from cs_core.records import Change
from cs_driver_overlay import layout, mounting, native, probes, syscalls
from cs_driver_overlay.options import OverlayOptions, mount_option_list, parse_options

if TYPE_CHECKING:
    from cs_driver_overlay import quota
    from cs_driver_overlay.whiteouts import OverlayWhiteoutConverter

OVERRIDE_STAT_XATTR = "user.containers.override_stat"
MOUNT_PROGRAM_FLAG = ".has-mount-program"
#: Set to ``yes`` to report no shifting through ID-mapped lowers (as Go HEAD).
DISABLE_IDMAP_ENV = "_CONTAINERS_OVERLAY_DISABLE_IDMAP"


def _contiguous(mapping: Mapping) -> bool:
    ordered = sorted(mapping, key=lambda m: m.container_id)
    for prev, cur in zip(ordered, ordered[1:]):
        if prev.container_id + prev.size != cur.container_id or prev.host_id + prev.size != cur.host_id:
            return False
    return True


def _fuse_mapping(kind: str, mapping: Mapping) -> str:
    if len(mapping) == 1 and mapping[0].size == 1:
        return f"squash_to_{kind}={mapping[0].host_id}"
    return f"{kind}mapping=" + ":".join(f"{m.container_id}:{m.host_id}:{m.size}" for m in mapping)


def _selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def _override_stat(path: str) -> tuple[int, int, int] | None:
    """``(uid, gid, mode)`` from a ``user.containers.override_stat`` xattr, if present."""
    try:
        value = os.getxattr(path, OVERRIDE_STAT_XATTR).decode()
    except OSError:
        return None
    parts = value.split(":")
    try:
        return int(parts[0]), int(parts[1]), int(parts[2], 8)
    except (IndexError, ValueError):
        return None


def _rmtree(path: str, ignore_errors: bool = False) -> None:
    """``shutil.rmtree`` (shutil is imported only once something is deleted)."""
    import shutil

    shutil.rmtree(path, ignore_errors=ignore_errors)


def _remove_tree(path: str) -> None:
    """Detach anything mounted below ``path``, then delete it (missing is fine)."""
    for mount_point in syscalls.mounts_under(path):
        mounting.unmount(mount_point)
    if os.path.lexists(path):
        _rmtree(path)


class OverlayDriver(GraphDriver):
    """Layers as overlayfs upper directories stacked through ``l/`` short links."""

    name = "overlay"

    def __init__(self, options: DriverOptions) -> None:
        super().__init__(options)
        self.opts: OverlayOptions = parse_options(options.options)
        self._lock = threading.Lock()
        if self.opts.use_composefs:
            raise NotSupported("overlay: use_composefs is not supported by this implementation")
        ensure_dir(self.home, 0o700)
        os.makedirs(os.path.join(self.home, layout.LINK_DIR), mode=0o755, exist_ok=True)
        ensure_dir(self.run_home, 0o700)
        for store in self.opts.image_stores:
            os.makedirs(os.path.join(store, "overlay", layout.LINK_DIR), mode=0o755, exist_ok=True)
        self.backing_fs = syscalls.fs_name(syscalls.statfs_type(os.path.dirname(self.home.rstrip("/")) or "/"))
        self.quota_ctl: quota.ProjectQuotaControl | None = None
        self.supports_dtype = probes.supports_dtype(self.home)
        self.mount_program = self.opts.mount_program
        flag = layout.read_text(os.path.join(self.home, MOUNT_PROGRAM_FLAG))
        if flag is None:
            self._write_mount_program_flag("true" if self.mount_program else "false")
            flag = "true" if self.mount_program else "false"
        if not self.mount_program:
            usable, reason = (False, "not running as root")
            if os.geteuid() == 0 and flag.strip() != "true":
                usable, reason = probes.cached(self.run_home, "overlay", lambda: probes.probe_overlay(self.home))
            if not usable:
                import shutil

                program = shutil.which("fuse-overlayfs")
                if not program:
                    raise DriverNotSupported(
                        "'overlay' not found as a supported filesystem on this host. Please ensure kernel is new "
                        f"enough and has overlay support loaded. ({reason}): driver not supported"
                    )
                self.mount_program = program
        if self.mount_program:
            self._write_mount_program_flag("true")
        elif self.backing_fs in syscalls.UNSUPPORTED_BACKING:
            raise DriverNotSupported(
                f"'overlay' is not supported over {self.backing_fs}, a mount_program is required: "
                "backing file system is unsupported for this graph driver"
            )
        self._setup_quota()
        self.userxattr = os.geteuid() != 0 and not self.mount_program
        mountopt = self.opts.mount_options
        if self.mount_program:
            self.native_diff, self.native_diff_reason = False, "using a mount program"
            self.metacopy = False
            self.volatile_ok = True
        else:
            self.native_diff, self.native_diff_reason = probes.cached(
                self.run_home, f"native-diff({mountopt})", lambda: probes.probe_native_diff(self.home, mountopt)
            )
            self.metacopy, _ = probes.cached(
                self.run_home, f"metacopy({mountopt})", lambda: probes.probe_metacopy(self.home, mountopt)
            )
            self.volatile_ok, _ = probes.cached(self.run_home, "volatile", lambda: probes.probe_volatile(self.home))
        #: Whether lowers can be shifted through ID-mapped bind mounts (root only; probed once).
        self.idmapped_lowers = False
        if not self.mount_program and os.geteuid() == 0:
            self.idmapped_lowers, _ = probes.cached(self.run_home, "idmapped-lower-dir", self._probe_idmapped_lowers)
        magics = frozenset({syscalls.FUSE_MAGIC} if self.mount_program else {syscalls.OVERLAY_MAGIC})
        self._refs = mounting.RefCounter(magics)
        if not self.opts.skip_mount_home:
            self._mount_home_private()

    # ---- init helpers ------------------------------------------------------------------------
    def _probe_idmapped_lowers(self) -> str | None:
        from cs_driver_overlay import idmapped

        return idmapped.probe_idmapped_lower(self.home)

    def _setup_quota(self) -> None:
        """On xfs try project quotas; ``size``/``inodes`` options require them (Go's texts)."""
        wanted = bool(self.opts.quota_size) or bool(self.opts.quota_inodes)
        if self.backing_fs != "xfs":
            if wanted:
                raise InvalidOption(
                    "storage option overlay.size and overlay.inodes only supported for backingFS XFS. "
                    f"Found {self.backing_fs}"
                )
            return
        from cs_driver_overlay import quota

        try:
            self.quota_ctl = quota.ProjectQuotaControl(self.home)
        except (NotSupported, OSError) as exc:
            if wanted:
                raise InvalidOption(
                    "storage options overlay.size and overlay.inodes not supported. "
                    f"Filesystem does not support Project Quota: {exc}"
                ) from exc

    def _write_mount_program_flag(self, value: str) -> None:
        path = os.path.join(self.home, MOUNT_PROGRAM_FLAG)
        if layout.read_text(path) != value:
            layout.write_file(path, value, 0o600)

    def _mount_home_private(self) -> None:
        if not syscalls.is_mount_point(self.home):
            syscalls.mount(self.home, self.home, None, syscalls.MS_BIND | syscalls.MS_REC, None)
        syscalls.mount(None, self.home, None, syscalls.MS_PRIVATE, None)

    # ---- paths -------------------------------------------------------------------------------
    def _store_homes(self) -> list[str]:
        return [self.home] + [os.path.join(s, "overlay") for s in self.opts.image_stores]

    def _dir(self, layer_id: str) -> str:
        """The layer directory: the home's, else the first additional store having it."""
        path = os.path.join(self.home, layer_id)
        if os.path.isdir(path):
            return path
        for store_home in self._store_homes()[1:]:
            candidate = os.path.join(store_home, layer_id)
            if os.path.isdir(candidate):
                return candidate
        return path

    def _merged_dir(self, layer_id: str, layer_dir: str) -> str:
        if os.path.dirname(layer_dir) == self.home:
            return os.path.join(layer_dir, "merged")
        return os.path.join(self.run_home, layer_id, "merged")

    def _resolve_lowers(self, layer_dir: str) -> list[tuple[str, str]]:
        """``(absolute path, home-relative path)`` of each lower link of the layer, topmost first."""
        result: list[tuple[str, str]] = []
        homes = self._store_homes()
        for entry in layout.lower_entries(layer_dir):
            path = layout.resolve_lower(homes, entry)
            if path is None:
                layout.recreate_links(self.home)
                path = layout.resolve_lower(homes, entry) or os.path.join(self.home, entry)
            rel = os.path.relpath(path, self.home) if path.startswith(self.home + "/") else path
            result.append((path, rel))
        return result

    def _lower_diff_dirs(self, layer_dir: str) -> list[str]:
        """Real diff directories of the lowers (and their ``diffN``), topmost first."""
        dirs: list[str] = []
        for path, _ in self._resolve_lowers(layer_dir):
            real = os.path.realpath(path)
            dirs.append(real)
            dirs.extend(layout.extra_diffs(os.path.dirname(real)))
        return dirs

    # ---- lifecycle ---------------------------------------------------------------------------
    def create(self, layer_id: str, parent: str, opts: CreateOpts, read_write: bool) -> None:
        """Create the layer directory, its short link, and ``lower``/``empty``."""
        limits = self._layer_quota(opts.storage_opt, read_write)
        if read_write and self.opts.force_mask is not None and not self.mount_program:
            raise InvalidOption(
                "overlay: force_mask option for writeable layers is only supported with a mount_program"
            )
        layer_dir = os.path.join(self.home, layer_id)
        if os.path.lexists(layer_dir):
            self.remove(layer_id)
        uid, gid = root_id(opts.uidmap), root_id(opts.gidmap)
        mode = 0o555
        lower = ""
        if parent:
            parent_dir = self._dir(parent)
            parent_diff = os.path.join(parent_dir, "diff")
            try:
                st = os.stat(parent_diff)
            except FileNotFoundError:
                raise NotFoundError(f"stat {parent_diff}: no such file or directory") from None
            uid, gid, mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
            override = _override_stat(parent_diff)
            if override is not None:
                uid, gid, mode = override
            lower = self._lower_for_child(parent_dir)
            if len(lower.split(":")) > layout.MAX_DEPTH:
                raise StorageError("max depth exceeded")
        short = layout.new_short_name()
        link_path = os.path.join(self.home, layout.LINK_DIR, short)
        try:
            os.mkdir(layer_dir, 0o700)
            os.chown(layer_dir, uid, gid)
            if self.quota_ctl is not None and (limits.size or limits.inodes):
                self.quota_ctl.set_quota(layer_dir, limits)
            diff = os.path.join(layer_dir, "diff")
            os.mkdir(diff)
            os.chown(diff, uid, gid)
            if self.opts.force_mask is not None:
                os.chmod(diff, self.opts.force_mask)
                os.setxattr(diff, OVERRIDE_STAT_XATTR, f"{uid}:{gid}:{mode:04o}:dir".encode())
            else:
                os.chmod(diff, mode)
            os.symlink(f"../{layer_id}/diff", link_path)
            layout.write_file(os.path.join(layer_dir, "link"), short, 0o644)
            for sub in ("work", "merged"):
                os.mkdir(os.path.join(layer_dir, sub), 0o700)
                os.chown(os.path.join(layer_dir, sub), uid, gid)
            if parent:
                layout.write_file(os.path.join(layer_dir, "lower"), lower, 0o666)
            else:
                os.mkdir(os.path.join(layer_dir, "empty"), 0o700)
                os.chown(os.path.join(layer_dir, "empty"), uid, gid)
        except BaseException:
            if os.path.lexists(link_path):
                os.unlink(link_path)
            _rmtree(layer_dir, ignore_errors=True)
            raise

    def _layer_quota(self, storage_opt: dict[str, str], read_write: bool) -> quota.Quota:
        """Validate per-layer storage options; RW layers default to the driver's size/inodes."""
        from cs_driver_overlay import quota

        if not read_write:
            for key in ("size", "inodes"):
                if key in storage_opt:
                    raise InvalidOption(f"--storage-opt {key} is only supported for ReadWrite Layers")
            return quota.parse_storage_opt(storage_opt)
        if storage_opt and self.quota_ctl is None:
            raise NotSupported("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
        merged = dict(storage_opt)
        merged.setdefault("size", str(self.opts.quota_size or 0))
        merged.setdefault("inodes", str(self.opts.quota_inodes or 0))
        return quota.parse_storage_opt(merged)

    def _lower_for_child(self, parent_dir: str) -> str:
        short = layout.read_text(os.path.join(parent_dir, "link"))
        if not short or not os.path.lexists(os.path.join(os.path.dirname(parent_dir), layout.LINK_DIR, short)):
            layout.recreate_links(os.path.dirname(parent_dir))
            short = layout.read_text(os.path.join(parent_dir, "link"))
            if not short:
                raise StorageError(f"reading link of {parent_dir}: missing link file")
        parent_lower = layout.read_text(os.path.join(parent_dir, "lower"))
        lower = f"{layout.LINK_DIR}/{short.strip()}"
        return f"{lower}:{parent_lower.strip()}" if parent_lower else lower

    def remove(self, layer_id: str) -> None:
        """Delete the layer's short link and directory; a missing layer is fine."""
        layer_dir = os.path.join(self.home, layer_id)
        short = layout.read_text(os.path.join(layer_dir, "link")) if os.path.isdir(layer_dir) else None
        if short and "/" not in short.strip() and short.strip():
            try:
                os.unlink(os.path.join(self.home, layout.LINK_DIR, short.strip()))
            except FileNotFoundError:
                pass
        self._refs.forget(os.path.join(layer_dir, "merged"))
        _remove_tree(layer_dir)
        if self.quota_ctl is not None:
            self.quota_ctl.clear_quota(layer_dir)

    def exists(self, layer_id: str) -> bool:
        """Whether a layer directory exists (home or an additional store)."""
        return os.path.isdir(self._dir(layer_id))

    def list_layers(self) -> list[str]:
        """IDs of the directories in the home that carry a ``link`` file."""
        result = []
        for entry in sorted(os.scandir(self.home), key=lambda e: e.name):
            if entry.name in layout.RESERVED or not entry.is_dir(follow_symlinks=False):
                continue
            if os.path.isfile(os.path.join(entry.path, "link")):
                result.append(entry.name)
        return result

    # ---- mounting ----------------------------------------------------------------------------
    def _ensure_layer_dirs(self, layer_dir: str, merged: str, uid: int, gid: int) -> None:
        """Recovery (9.2.5): re-create missing ``work``/``merged`` and lost links."""
        in_home = os.path.dirname(layer_dir) == self.home
        if in_home:
            short = layout.read_text(os.path.join(layer_dir, "link"))
            if not short or not os.path.lexists(os.path.join(self.home, layout.LINK_DIR, short.strip())):
                layout.recreate_links(self.home)
                if layout.read_text(os.path.join(layer_dir, "link")) is None:
                    short = layout.new_short_name()
                    os.symlink(
                        f"../{os.path.basename(layer_dir)}/diff", os.path.join(self.home, layout.LINK_DIR, short)
                    )
                    layout.write_file(os.path.join(layer_dir, "link"), short, 0o644)
            work = os.path.join(layer_dir, "work")
            if not os.path.isdir(work):
                os.mkdir(work, 0o700)
                os.chown(work, uid, gid)
            stale = os.path.join(work, "work", "incompat", "volatile")
            if os.path.isdir(stale):
                _rmtree(stale, ignore_errors=True)
        if not os.path.isdir(merged):
            os.makedirs(merged, mode=0o700, exist_ok=True)
            os.chown(merged, uid, gid)

    def _mount_options(self, opts: MountOpts) -> list[str]:
        configured = mount_option_list(self.opts.mount_options)
        options = list(opts.options) if opts.options else list(configured)
        if opts.options and "metacopy=on" in configured and "metacopy=on" not in options:
            options.append("metacopy=on")
        if not self.metacopy:
            options = [o for o in options if not o.startswith("metacopy")]
        if self.userxattr and "userxattr" not in options:
            options.append("userxattr")
        if opts.volatile and self.volatile_ok:
            options.append("volatile")
        if opts.mount_label and _selinux_enabled():
            options.append(f'context="{opts.mount_label}"')
        return options

    def get(self, layer_id: str, opts: MountOpts) -> str:
        """Mount the layer (once per process per mount path) and return the merged directory."""
        layer_dir = self._dir(layer_id)
        if not os.path.isdir(layer_dir):
            raise NotFoundError(f"stat {layer_dir}: no such file or directory")
        merged = self._merged_dir(layer_id, layer_dir)
        in_additional = os.path.dirname(layer_dir) != self.home
        uid, gid = root_id(opts.uidmap), root_id(opts.gidmap)
        with self._lock:
            if self._refs.increment(merged) > 1:
                return merged
            try:
                self._ensure_layer_dirs(layer_dir, merged, uid, gid)
                self._mount(layer_dir, merged, opts, in_additional)
            except BaseException:
                self._refs.forget(merged)
                raise
        return merged

    def _mount(self, layer_dir: str, merged: str, opts: MountOpts, in_additional: bool) -> None:
        options = self._mount_options(opts)
        read_only = in_additional or "ro" in options
        if in_additional and "ro" not in options:
            options.append("ro")
        diff = os.path.join(layer_dir, "diff")
        lowers: list[tuple[str, str]] = []

        def add(path: str) -> None:
            lowers.append((path, os.path.relpath(path, self.home) if path.startswith(self.home + "/") else path))

        if read_only:
            add(diff)
        for extra in layout.extra_diffs(layer_dir):
            add(extra)
        for path, rel in self._resolve_lowers(layer_dir):
            lowers.append((path, rel))
            for extra in layout.extra_diffs(os.path.dirname(os.path.realpath(path))):
                add(extra)
        if len(lowers) > layout.MAX_DEPTH:
            raise StorageError("max depth exceeded")
        if not lowers or (read_only and len(lowers) == 1):
            add(os.path.join(layer_dir, "empty"))
            os.makedirs(lowers[-1][0], mode=0o700, exist_ok=True)
        mapped: list[str] = []
        if self._shift_with_idmapped_lowers(opts):
            lowers, mapped = self._map_lowers(layer_dir, lowers, opts)
        try:
            self._mount_spec(layer_dir, merged, opts, lowers, options, read_only, diff)
        finally:
            # The overlay keeps what it uses: the ID-mapped binds can go (like Go, lazily).
            from cs_driver_overlay import idmapped

            for target in reversed(mapped):
                try:
                    idmapped.detach(target)
                except OSError:
                    pass

    def _shift_with_idmapped_lowers(self, opts: MountOpts) -> bool:
        return (
            self.idmapped_lowers
            and not self.mount_program
            and not opts.disable_shifting
            and bool(opts.uidmap or opts.gidmap)
            and os.environ.get(DISABLE_IDMAP_ENV) != "yes"
        )

    def _map_lowers(
        self, layer_dir: str, lowers: list[tuple[str, str]], opts: MountOpts
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """Present the lowers through ID-mapped binds of their store directories (``<id>/mapped/<n>``).

        Each store directory holding lowers (this home, additional image stores) is bound once
        with the mount's mappings; the lowers are rewritten to paths inside those binds.  Returns
        the new lowers and the bind targets (to detach once the overlay is mounted).
        """
        from cs_driver_overlay import idmapped

        roots = [self.home, *(os.path.join(store, "overlay") for store in self.opts.image_stores)]
        identity = (IDMap(0, 0, 0xFFFFFFFF),)
        userns = idmapped.user_namespace(opts.uidmap or identity, opts.gidmap or identity)
        binds: dict[str, str] = {}
        result: list[tuple[str, str]] = []
        try:
            for path, _rel in lowers:
                root = next((r for r in roots if path.startswith(r.rstrip("/") + "/")), os.path.dirname(path))
                target = binds.get(root)
                if target is None:
                    target = os.path.join(layer_dir, "mapped", str(len(binds)))
                    os.makedirs(target, mode=0o700, exist_ok=True)
                    idmapped.idmapped_bind(root, target, userns)
                    binds[root] = target
                new_path = os.path.join(target, os.path.relpath(path, root))
                rel = os.path.relpath(new_path, self.home)
                result.append((new_path, rel))
        except BaseException:
            for target in reversed(binds.values()):
                try:
                    idmapped.detach(target)
                except OSError:
                    pass
            raise
        finally:
            os.close(userns)
        return result, list(binds.values())

    def _mount_spec(
        self,
        layer_dir: str,
        merged: str,
        opts: MountOpts,
        lowers: list[tuple[str, str]],
        options: list[str],
        read_only: bool,
        diff: str,
    ) -> None:
        spec = mounting.OverlaySpec(
            target=merged,
            lowers=[p for p, _ in lowers],
            rel_lowers=[r for _, r in lowers],
            home=self.home,
            upper="" if read_only else diff,
            work="" if read_only else os.path.join(layer_dir, "work"),
            options=options,
        )
        if self.mount_program:
            program_opts: list[str] = []
            if not opts.disable_shifting and (opts.uidmap or opts.gidmap):
                if opts.uidmap:
                    program_opts.append(_fuse_mapping("uid", opts.uidmap))
                if opts.gidmap:
                    program_opts.append(_fuse_mapping("gid", opts.gidmap))
            if self.opts.force_mask is not None:
                program_opts.append("xattr_permissions=2")
            mounting.mount_with_program(self.mount_program, spec, program_opts)
        else:
            mounting.mount_overlay(spec)

    def put(self, layer_id: str) -> None:
        """Drop one reference; at zero unmount and leave a fresh empty ``merged``."""
        layer_dir = self._dir(layer_id)
        if not os.path.isdir(layer_dir):
            raise NotFoundError(f"stat {layer_dir}: no such file or directory")
        merged = self._merged_dir(layer_id, layer_dir)
        with self._lock:
            if self._refs.decrement(merged) > 0:
                return
            if self.mount_program and syscalls.is_mount_point(merged):
                mounting.unmount_fuse(merged)
            else:
                mounting.unmount(merged)
            self._detach_mapped(layer_dir)
            if os.path.dirname(layer_dir) != self.home:
                _rmtree(os.path.join(self.run_home, layer_id), ignore_errors=True)
                return
            try:
                st = os.stat(merged)
                fresh = merged + ".1"
                if os.path.isdir(fresh):
                    os.rmdir(fresh)
                os.mkdir(fresh, 0o700)
                os.chown(fresh, st.st_uid, st.st_gid)
                os.rename(fresh, merged)
            except FileNotFoundError:
                os.mkdir(merged, 0o700)
            except OSError:
                pass

    @staticmethod
    def _detach_mapped(layer_dir: str) -> None:
        """Detach ID-mapped binds left under ``<layer>/mapped`` (normally gone right after mounting)."""
        mapped = os.path.join(layer_dir, "mapped")
        if not os.path.isdir(mapped):
            return
        for target in syscalls.mounts_under(mapped):
            try:
                syscalls.umount(target, syscalls.MNT_DETACH)
            except OSError:
                pass

    def cleanup(self) -> None:
        """Unmount the home's private bind mount, unless layers are still mounted below it."""
        if self.opts.skip_mount_home or not syscalls.is_mount_point(self.home):
            return
        if syscalls.mounts_under(self.home):
            return
        mounting.unmount(self.home)

    # ---- information -------------------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        """Backing fs, d_type, native diff, metacopy, shifting, volatile."""
        return [
            ("Backing Filesystem", self.backing_fs),
            ("Supports d_type", str(self.supports_dtype).lower()),
            ("Native Overlay Diff", str(self._native_diff_usable()).lower()),
            ("Using metacopy", str(self.metacopy and "metacopy=on" in self.opts.mount_options).lower()),
            ("Supports shifting", str(self.supports_shifting((), ())).lower()),
            ("Supports volatile", str(self.volatile_ok).lower()),
        ]

    def metadata(self, layer_id: str) -> dict[str, str] | None:
        """``WorkDir``, ``MergedDir``, ``UpperDir`` and (if any) ``LowerDir``."""
        layer_dir = self._dir(layer_id)
        if not os.path.isdir(layer_dir):
            raise NotFoundError(f"stat {layer_dir}: no such file or directory")
        result = {
            "WorkDir": os.path.join(layer_dir, "work"),
            "MergedDir": self._merged_dir(layer_id, layer_dir),
            "UpperDir": os.path.join(layer_dir, "diff"),
        }
        lowers = [os.path.realpath(p) for p, _ in self._resolve_lowers(layer_dir)]
        if lowers:
            result["LowerDir"] = ":".join(lowers)
        return result

    def additional_image_stores(self) -> list[str]:
        """The configured ``imagestore`` paths."""
        return list(self.opts.image_stores)

    def supports_shifting(self, uidmap: Mapping, gidmap: Mapping) -> bool:
        """With a mount program: iff both maps are contiguous; else iff ID-mapped lowers work here.

        ``_CONTAINERS_OVERLAY_DISABLE_IDMAP=yes`` turns the kernel way off.
        """
        if self.mount_program:
            return _contiguous(uidmap) and _contiguous(gidmap)
        return self.idmapped_lowers and os.environ.get(DISABLE_IDMAP_ENV) != "yes"

    def read_write_disk_usage(self, layer_id: str) -> tuple[int, int]:
        """Usage of the layer's ``diff`` directory."""
        return native.tree_usage(os.path.join(self._dir(layer_id), "diff"))

    def diff_getter(self, layer_id: str) -> FileGetter | None:
        """Look names up in ``diff/``, ``diffN/``, then each lower's diff dirs."""
        layer_dir = self._dir(layer_id)
        roots = [os.path.join(layer_dir, "diff"), *layout.extra_diffs(layer_dir), *self._lower_diff_dirs(layer_dir)]

        def getter(name: str) -> str:
            rel = os.path.normpath("/" + name).lstrip("/")
            for root in roots:
                candidate = os.path.join(root, rel)
                try:
                    st = os.lstat(candidate)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if native.is_whiteout(st):
                    break
                return candidate
            raise FileNotFoundError(2, "no such file or directory", name)

        return getter

    # ---- diffs -------------------------------------------------------------------------------
    def _native_diff_usable(self) -> bool:
        return self.native_diff and not self.mount_program

    def _is_parent(self, layer_id: str, parent: str) -> bool:
        layer_dir = self._dir(layer_id)
        lowers = self._resolve_lowers(layer_dir)
        if not lowers:
            return parent == ""
        if parent == "":
            return False
        first = os.path.dirname(os.path.realpath(lowers[0][0]))
        return first == os.path.realpath(self._dir(parent))

    def _use_native(self, layer_id: str, parent: str) -> bool:
        if not self._native_diff_usable():
            return False
        layer_dir = self._dir(layer_id)
        if layout.extra_diffs(layer_dir):
            return False
        return self._is_parent(layer_id, parent)

    def _converter(self, layer_id: str) -> OverlayWhiteoutConverter:
        from cs_driver_overlay.whiteouts import OverlayWhiteoutConverter

        layer_dir = self._dir(layer_id)
        return OverlayWhiteoutConverter(self._lower_diff_dirs(layer_dir), userxattr=self.userxattr)

    def diff(
        self,
        layer_id: str,
        maps: tuple[Mapping, Mapping],
        parent: str,
        parent_maps: tuple[Mapping, Mapping],
        mount_label: str,
        out: BinaryIO,
    ) -> None:
        """Native: tar ``diff/`` through the whiteout converter; else the naive diff."""
        if not self._use_native(layer_id, parent):
            return super().diff(layer_id, maps, parent, parent_maps, mount_label, out)
        from cs_core import archive

        diff = os.path.join(self._dir(layer_id), "diff")
        archive.write_tree_tar(out, diff, maps, converter=self._converter(layer_id))

    def changes(
        self,
        layer_id: str,
        maps: tuple[Mapping, Mapping],
        parent: str,
        parent_maps: tuple[Mapping, Mapping],
        mount_label: str,
    ) -> list[Change]:
        """Native: walk ``diff/`` against the lowers; else the naive comparison."""
        if not self._use_native(layer_id, parent):
            return super().changes(layer_id, maps, parent, parent_maps, mount_label)
        layer_dir = self._dir(layer_id)
        return native.native_changes(os.path.join(layer_dir, "diff"), self._lower_diff_dirs(layer_dir))

    def diff_size(
        self,
        layer_id: str,
        maps: tuple[Mapping, Mapping],
        parent: str,
        parent_maps: tuple[Mapping, Mapping],
        mount_label: str,
    ) -> int:
        """Native: the size of ``diff/``; else the naive size of the changes."""
        if not self._use_native(layer_id, parent):
            return super().diff_size(layer_id, maps, parent, parent_maps, mount_label)
        return native.tree_size(os.path.join(self._dir(layer_id), "diff"))

    def apply_diff(self, layer_id: str, parent: str, opts: ApplyDiffOpts) -> int:
        """Native: unpack into ``diff/`` converting whiteouts; returns the size of ``diff/``."""
        ignore = opts.ignore_chown_errors or self.opts.ignore_chown_errors
        mask = opts.force_mask if opts.force_mask is not None else self.opts.force_mask
        if not self._use_native(layer_id, parent):
            naive = ApplyDiffOpts(
                stream=opts.stream,
                uidmap=opts.uidmap,
                gidmap=opts.gidmap,
                mount_label=opts.mount_label,
                ignore_chown_errors=ignore,
                force_mask=mask,
            )
            return super().apply_diff(layer_id, parent, naive)
        from cs_core import archive

        diff = os.path.join(self._dir(layer_id), "diff")
        archive.unpack(
            diff,
            opts.stream,
            maps=(opts.uidmap, opts.gidmap),
            converter=self._converter(layer_id),
            ignore_chown_errors=ignore,
            force_mask=mask,
        )
        return native.tree_size(diff)

    def update_layer_id_map(
        self,
        layer_id: str,
        to_container: tuple[Mapping, Mapping],
        to_host: tuple[Mapping, Mapping],
        mount_label: str,
    ) -> None:
        """Storage.md 9.2.8: chown through the mount, then push ``diff`` down to ``diff1``."""
        if self.mount_program:
            return super().update_layer_id_map(layer_id, to_container, to_host, mount_label)
        from cs_core import archive

        layer_dir = self._dir(layer_id)
        path = self.get(layer_id, MountOpts(mount_label=mount_label, disable_shifting=True))
        try:
            archive.chown_by_maps(path, to_container, to_host)
        finally:
            self.put(layer_id)
        diff = os.path.join(layer_dir, "diff")
        mode = stat.S_IMODE(os.stat(diff).st_mode)
        extras = layout.extra_diffs(layer_dir)
        for n in range(len(extras), 0, -1):
            os.rename(os.path.join(layer_dir, f"diff{n}"), os.path.join(layer_dir, f"diff{n + 1}"))
        os.rename(diff, os.path.join(layer_dir, "diff1"))
        uid, gid = root_id(to_host[0]), root_id(to_host[1])
        work = os.path.join(layer_dir, "work")
        _rmtree(work, ignore_errors=True)
        os.mkdir(work)
        os.chmod(work, 0o555)
        os.chown(work, uid, gid)
        os.mkdir(diff)
        os.chmod(diff, self.opts.force_mask if self.opts.force_mask is not None else mode)
        os.chown(diff, uid, gid)

    def dedup_dirs(self, layer_ids: list[str]) -> list[str]:
        """The ``diff`` directories of the given layers kept in the home, not in additional stores (``dedup``)."""
        dirs = []
        for layer_id in layer_ids:
            layer_dir = os.path.join(self.home, layer_id)
            if os.path.isdir(layer_dir):
                dirs.append(os.path.join(layer_dir, "diff"))
        return dirs
