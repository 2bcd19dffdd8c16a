"""Checking a store for damage and repairing it (``shared/spec/cli.md`` 7.13, storage.md 5.9).

:func:`check_store` walks layers, images and containers through the Store's public methods and
returns a :class:`CheckReport`; :func:`repair` deletes what the report names.  Problems are kept
as their Go-compatible texts (scripts match them), each tagged with a :class:`ProblemKind` so the
repair can tell driver-only directories from damaged layers.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, BinaryIO, cast

from cs_core import gojson
from cs_core.archive.tarstream import TarParser
from cs_core.check_tree import Header, HeaderRecorder, Ignore, compare_trees, expected_tree, mounted_tree
from cs_core.errors import FileDoesNotExist, NotFoundError, NotSupported, StorageError
from cs_core.records import Container, Image, Layer
from cs_core.store import Store

#: The default ``--max``: unreferenced layers younger than this are left alone.
DEFAULT_MAX_AGE_S = 24 * 3600.0

LAYER_DATA_MISSING = "layer data item is missing"
LAYER_BAD_DIGEST = "layer content incorrect digest"
LAYER_BAD_SIZE = "layer content incorrect size"
LAYER_MISSING = "layer is missing"
LAYER_MODIFIED = "layer content modified"
LAYER_UNREFERENCED = "layer not referenced by any images or containers"
LAYER_UNACCOUNTED = "layer in lower level storage driver not accounted for"
IMAGE_DATA_MISSING = "image data item is missing"
IMAGE_DATA_SIZE = "image data item has incorrect size"
IMAGE_LAYER_MISSING = "image layer is missing"
IMAGE_MISSING = "image missing"
CONTAINER_DATA_MISSING = "container data item is missing"
CONTAINER_DATA_SIZE = "container data item has incorrect size"


class ProblemKind(Enum):
    """What sort of damage a problem describes (decides how :func:`repair` treats it)."""

    DAMAGED = "damaged"
    UNREFERENCED = "unreferenced"
    UNACCOUNTED = "unaccounted"


@dataclass(frozen=True)
class Problem:
    """One error of the report: its text and its kind."""

    text: str
    kind: ProblemKind = ProblemKind.DAMAGED

    def __str__(self) -> str:
        return self.text


Section = dict[str, list[Problem]]


@dataclass
class CheckReport:
    """Problems per ID, by category, as Go's ``CheckReport``."""

    layers: Section = field(default_factory=dict)
    ro_layers: Section = field(default_factory=dict)
    images: Section = field(default_factory=dict)
    ro_images: Section = field(default_factory=dict)
    containers: Section = field(default_factory=dict)
    #: Driver listing position (1-based) of each unaccounted driver layer.
    layer_order: dict[str, int] = field(default_factory=dict)

    def sections(self) -> list[tuple[str, Section]]:
        """``(KIND, section)`` in output order; KIND is the word the text output uses."""
        return [
            ("layer", self.layers),
            ("read-only layer", self.ro_layers),
            ("image", self.images),
            ("read-only image", self.ro_images),
            ("container", self.containers),
        ]

    def is_empty(self) -> bool:
        return not any(section for _kind, section in self.sections())

    def to_json(self) -> dict[str, Any]:
        """The report as Go encodes it: every error becomes ``{}``."""
        names = ("Layers", "ROLayers", "Images", "ROImages", "Containers")
        return {
            name: gojson.sorted_map({key: [{} for _ in problems] for key, problems in section.items()})
            for name, (_kind, section) in zip(names, self.sections(), strict=True)
        }

    def text_lines(self) -> list[str]:
        """``KIND ID:`` then `` ERROR`` lines, for every damaged ID."""
        lines: list[str] = []
        for kind, section in self.sections():
            for key, problems in section.items():
                if problems:
                    lines.append(f"{kind} {key}:")
                    lines.extend(f" {problem.text}" for problem in problems)
        return lines

    def counts(self) -> tuple[int, int, int, int, int]:
        """Damaged IDs per category: layers, read-only layers, images, read-only images, containers."""
        return (len(self.layers), len(self.ro_layers), len(self.images), len(self.ro_images), len(self.containers))


def error_text(exc: BaseException) -> str:
    """Go-like text of an error met while checking."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
        return f"open {exc.filename}: {reason}" if exc.filename is not None else reason
    return str(exc)


class _DigestWriter(io.RawIOBase):
    """A sink that hashes and counts what is written to it, and parses it as tar."""

    def __init__(self, algorithm: str) -> None:
        super().__init__()
        self.hasher = hashlib.new(algorithm)
        self.count = 0
        self.recorder = HeaderRecorder()
        self.parser = TarParser([self.recorder])

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hasher.update(view)
        self.count += view.nbytes
        self.parser.feed(view)
        return view.nbytes


def _add(section: Section, key: str, problem: Problem) -> None:
    section.setdefault(key, []).append(problem)


def _check_data_items(
    section: Section,
    item_id: str,
    head: str,
    names: Iterable[str],
    open_item: Callable[[str, str], ContextManager[BinaryIO]],
    missing: str,
    sizes: dict[str, int] | None = None,
    wrong_size: str = "",
) -> None:
    """Read each big-data item of one layer, image or container through; record what fails.

    ``sizes`` (images and containers) also checks each item's recorded size.
    """
    for key in names:
        where = f'{head}: data item "{key}"'
        try:
            with open_item(item_id, key) as fh:
                size = 0
                while chunk := fh.read(1 << 20):
                    size += len(chunk)
        except FileDoesNotExist:
            _add(section, item_id, Problem(f"{where}: {missing}"))
            continue
        except (StorageError, OSError) as exc:
            _add(section, item_id, Problem(f"{where}: {error_text(exc)}"))
            continue
        if sizes is not None and size != sizes.get(key, 0):
            _add(section, item_id, Problem(f"{where}: {wrong_size}"))


class _Checker:
    """One run of the checks over one store."""

    def __init__(self, store: Store, max_age_s: float, quick: bool) -> None:
        self.store = store
        self.max_age_ns = int(max_age_s * 1_000_000_000)
        self.quick = quick
        self.report = CheckReport()
        self.layers: dict[str, Layer] = {}
        self.referenced: dict[str, bool] = {}
        #: Diff headers of the layers whose regenerated diff matched its record.
        self.headers: dict[str, list[Header]] = {}
        self.ignore = self._ignore_settings()

    def run(self) -> CheckReport:
        for layer in self.store.layers():
            self.layers[layer.id] = layer
            self.referenced[layer.id] = False
        for layer in self.layers.values():
            self._check_layer_data(layer)
            if layer.uncompressed_digest:
                self._check_layer_digest(layer)
        for layer in self.layers.values():
            if not layer.read_only:
                self._check_mountable(layer)
        for layer in self.layers.values():
            if layer.parent and layer.parent not in self.layers:
                prefix, section = self._layer_target(layer)
                _add(section, layer.id, Problem(f"{prefix}layer {layer.parent}: {LAYER_MISSING}"))
        images = self._check_images()
        self._check_containers(images)
        self._check_unreferenced()
        self._check_driver_layers()
        return self.report

    # ---- layers -------------------------------------------------------------------------
    def _layer_target(self, layer: Layer) -> tuple[str, Section]:
        if layer.read_only:
            return "read-only ", self.report.ro_layers
        return "", self.report.layers

    def _check_layer_data(self, layer: Layer) -> None:
        prefix, section = self._layer_target(layer)
        _check_data_items(section, layer.id, f"{prefix}layer {layer.id}", layer.big_data_names,
                          self.store.layer_big_data, LAYER_DATA_MISSING)

    def _check_layer_digest(self, layer: Layer) -> None:
        from cs_core.digests import validate_digest

        prefix, section = self._layer_target(layer)
        head = f"{prefix}layer {layer.id}"
        try:
            validate_digest(layer.uncompressed_digest)
        except StorageError as exc:
            _add(section, layer.id, Problem(f"{head}: {exc}"))
            return
        algorithm, _, expected = layer.uncompressed_digest.partition(":")
        sink = _DigestWriter(algorithm)
        try:
            self.store.recorded_diff(layer.id, cast(BinaryIO, sink))
            sink.parser.close()
        except (StorageError, OSError) as exc:
            _add(section, layer.id, Problem(f"{head}: {error_text(exc)}"))
            return
        ok = True
        if sink.hasher.hexdigest() != expected:
            _add(section, layer.id, Problem(f"{head}: {LAYER_BAD_DIGEST}"))
            ok = False
        if layer.uncompressed_size != -1 and sink.count != layer.uncompressed_size:
            text = f"{head}: read {sink.count} bytes instead of {layer.uncompressed_size} bytes: {LAYER_BAD_SIZE}"
            _add(section, layer.id, Problem(text))
            ok = False
        if ok:
            self.headers[layer.id] = sink.recorder.headers

    def _ignore_settings(self) -> Ignore:
        """What the store's driver and pull options say not to compare (storage.md 5.9)."""
        from cs_core.config import plugin_driver_options

        options = plugin_driver_options(self.store.options, self.store.driver_name) + list(self.store.driver_options)
        force_mask = any("force_mask=" in option for option in options)
        chown = any("ignore_chown_errors=true" in option for option in options)
        hard_links = self.store.options.pull_options.get("use_hard_links", "") == "true"
        return Ignore(ownership=chown or force_mask, permissions=force_mask, timestamps=hard_links)

    def _header_chain(self, layer: Layer) -> list[list[Header]] | None:
        """The diff headers of ``layer``'s chain, base first; None if any diff is unknown."""
        chain: list[list[Header]] = []
        current: Layer | None = layer
        seen: set[str] = set()
        while current is not None:
            if current.id in seen or current.id not in self.headers:
                return None
            seen.add(current.id)
            chain.append(self.headers[current.id])
            if not current.parent:
                break
            current = self.layers.get(current.parent)
            if current is None:
                return None
        chain.reverse()
        return chain

    def _check_mountable(self, layer: Layer) -> None:
        """Check 2: mount the layer and, unless quick, compare its tree with its diffs'."""
        head = f"layer {layer.id}"
        try:
            path = self.store.mount(layer.id, options=["ro"])
        except (StorageError, OSError) as exc:
            _add(self.report.layers, layer.id, Problem(f"{head}: {error_text(exc)}"))
            return
        try:
            chain = None if self.quick else self._header_chain(layer)
            if chain is not None:
                for diff in compare_trees(expected_tree(chain), mounted_tree(path), layer.uidmap, layer.gidmap, self.ignore):
                    _add(self.report.layers, layer.id, Problem(f"{head}: {diff}, {LAYER_MODIFIED}"))
        except OSError as exc:
            _add(self.report.layers, layer.id, Problem(f"{head}: {error_text(exc)}"))
        finally:
            try:
                self.store.unmount(layer.id)
            except (StorageError, OSError) as exc:
                _add(self.report.layers, layer.id, Problem(f"{head}: {error_text(exc)}"))

    # ---- images and containers ----------------------------------------------------------
    def _check_images(self) -> set[str]:
        examined: set[str] = set()
        for image in self.store.images():
            if image.id in examined:
                continue
            examined.add(image.id)
            self._check_image(image)
        return examined

    def _check_image(self, image: Image) -> None:
        prefix, section = ("read-only ", self.report.ro_images) if image.read_only else ("", self.report.images)
        _check_data_items(section, image.id, f"{prefix}image {image.id}", image.big_data_names,
                          self.store.image_big_data, IMAGE_DATA_MISSING, image.big_data_sizes, IMAGE_DATA_SIZE)
        walked: set[str] = set()
        for top in [image.top_layer, *image.mapped_top_layers]:
            if not top or top in walked:
                continue
            walked.add(top)
            current = top
            seen_in_chain: set[str] = set()
            while current and current not in seen_in_chain:
                seen_in_chain.add(current)
                layer = self.layers.get(current)
                if layer is None:
                    text = f"{prefix}image {image.id}: layer {current}: {IMAGE_LAYER_MISSING}"
                    _add(section, image.id, Problem(text))
                else:
                    self.referenced[current] = True
                for layer_section in (self.report.layers, self.report.ro_layers):
                    if layer_section.get(current):
                        section.setdefault(image.id, []).extend(layer_section[current])
                current = layer.parent if layer is not None else ""

    def _check_containers(self, images: set[str]) -> None:
        for container in self.store.containers():
            self._check_container(container, images)

    def _check_container(self, container: Container, images: set[str]) -> None:
        section = self.report.containers
        _check_data_items(section, container.id, f"container {container.id}", container.big_data_names,
                          self.store.container_big_data, CONTAINER_DATA_MISSING, container.big_data_sizes,
                          CONTAINER_DATA_SIZE)
        if container.image_id:
            if container.image_id not in images:
                _add(section, container.id, Problem(f"image {container.image_id}: {IMAGE_MISSING}"))
            for image_section in (self.report.images, self.report.ro_images):
                if image_section.get(container.image_id):
                    section.setdefault(container.id, []).extend(image_section[container.image_id])
        if container.layer_id:
            self.referenced[container.layer_id] = True

    # ---- leftovers ----------------------------------------------------------------------
    def _check_unreferenced(self) -> None:
        now_ns = time.time_ns()
        zero_ns = gojson.parse_time_ns(gojson.ZERO_TIME)
        for layer in self.layers.values():
            if layer.read_only or self.referenced.get(layer.id):
                continue
            created = gojson.parse_time_ns(layer.created)
            if created <= zero_ns or created + self.max_age_ns < now_ns:
                _add(self.report.layers, layer.id, Problem(f"layer {layer.id}: {LAYER_UNREFERENCED}", ProblemKind.UNREFERENCED))

    def _check_driver_layers(self) -> None:
        try:
            listed = self.store.storage_layers()
        except NotSupported:
            return
        for position, layer_id in enumerate(listed, start=1):
            if layer_id not in self.layers:
                problem = Problem(f"layer {layer_id}: {LAYER_UNACCOUNTED}", ProblemKind.UNACCOUNTED)
                _add(self.report.layers, layer_id, problem)
                self.report.layer_order[layer_id] = position


def check_store(store: Store, *, max_age_s: float = DEFAULT_MAX_AGE_S, quick: bool = False) -> CheckReport:
    """Run the checks of cli.md 7.13 on ``store`` and return what they found.

    ``quick`` drops the comparison of mounted trees with the trees their diffs imply (check 2's
    content walk); digests are still verified.
    """
    return _Checker(store, max_age_s, quick).run()


def _is_unaccounted(problems: list[Problem]) -> bool:
    return any(p.kind is ProblemKind.UNACCOUNTED for p in problems)


def _repair_order(store: Store, report: CheckReport) -> list[str]:
    """Known layers deepest-first, then driver-only layers in the driver's listing order."""
    parents = {layer.id: layer.parent for layer in store.layers()}

    def depth(layer_id: str) -> int:
        count, current, seen = 0, layer_id, set()
        while current and current not in seen:
            seen.add(current)
            count += 1
            current = parents.get(current, "")
        return count

    known = [i for i, problems in report.layers.items() if not _is_unaccounted(problems)]
    driver_only = [i for i, problems in report.layers.items() if _is_unaccounted(problems)]
    known.sort(key=depth, reverse=True)
    driver_only.sort(key=lambda i: report.layer_order.get(i, 0))
    return known + driver_only


def repair(store: Store, report: CheckReport, *, remove_containers: bool = False) -> list[str]:
    """Delete what ``report`` names (cli.md 7.13 "Repair"); return the failures' texts.

    Damaged containers go first (only with ``remove_containers``), then damaged read-write
    images with their layers, then the remaining damaged layers deepest-first, and last the
    driver directories no layer store knows.  "Not found" errors are ignored.
    """
    failures: list[str] = []

    def attempt(kind: str, item_id: str, delete: Callable[[str], Any]) -> Any:
        try:
            return delete(item_id)
        except NotFoundError:
            return None
        except (StorageError, OSError) as exc:
            failures.append(f"deleting {kind} {item_id}: {error_text(exc)}")
            return None

    if remove_containers:
        for container_id in report.containers:
            attempt("container", container_id, store.delete_container)
    deleted: set[str] = set()
    for image_id in report.images:
        deleted.update(attempt("image", image_id, store.delete_image) or ())
    for layer_id in _repair_order(store, report):
        if layer_id in deleted:
            continue
        if _is_unaccounted(report.layers[layer_id]):
            attempt("layer", layer_id, store.remove_driver_layer)
        else:
            attempt("layer", layer_id, store.delete_layer)
    return failures


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (``0``, ``300ms``, ``1h30m``, ``-1.5h``); ValueError if malformed."""
    units = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    rest = text
    sign = 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        number = rest[:i]
        if not number or number == "." or number.count(".") > 1:
            raise ValueError(f'time: invalid duration "{text}"')
        rest = rest[i:]
        j = 0
        while j < len(rest) and not (rest[j].isdigit() or rest[j] == "."):
            j += 1
        unit = rest[:j]
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in units:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(number) * units[unit]
        rest = rest[j:]
    return sign * total


__all__ = [
    "DEFAULT_MAX_AGE_S",
    "CheckReport",
    "Problem",
    "ProblemKind",
    "check_store",
    "error_text",
    "parse_go_duration",
    "repair",
]
