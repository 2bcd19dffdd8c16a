"""The static table of built-in commands: names, aliases, family module and one-line description.

Kept free of imports so that usage errors and command lookup cost nothing: a command's module
(and click) is imported only once that command is about to run.  The order is the order of the
top-level usage text (``shared/spec/cli.md`` section 1).
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    """One built-in command."""

    name: str
    aliases: tuple[str, ...]
    module: str
    description: str


def _e(name: str, module: str, description: str, *aliases: str) -> Entry:
    return Entry(name, aliases, module, description)


COMMANDS: tuple[Entry, ...] = (
    _e("check", "status", "Check storage consistency"),
    _e("config", "status", "Print containers-storage configuration"),
    _e("container", "containers", "Examine a container"),
    _e("list-container-data", "data", "List data items that are attached to an container", "listcontainerdata"),
    _e("get-container-data", "data", "Get data that is attached to an container", "getcontainerdata"),
    _e("get-container-data-size", "data", "Get size of data that is attached to an container", "getcontainerdatasize"),
    _e("get-container-data-digest", "data", "Get digest of data that is attached to an container", "getcontainerdatadigest"),
    _e("set-container-data", "data", "Set data that is attached to an container", "setcontainerdata"),
    _e("get-container-dir", "containers", "Find the container's associated data directory", "getcontainerdir"),
    _e("get-container-run-dir", "containers", "Find the container's associated runtime directory", "getcontainerrundir"),
    _e("container-parent-owners", "containers", "Compute the set of unmapped parent UIDs and GIDs of the container"),
    _e("containers", "containers", "List containers"),
    _e("copy", "mount", "Copy files or directories into a layer, possibly from another layer"),
    _e("create-storage-layer", "layers", "Create a new layer only in the storage driver"),
    _e("create-layer", "layers", "Create a new layer", "createlayer"),
    _e("import-layer", "layers", "Import a new layer", "importlayer"),
    _e("create-image", "images", "Create a new image using layers", "createimage"),
    _e("create-container", "containers", "Create a new container from an image", "createcontainer"),
    _e("dedup", "status", "Dedup all images"),
    _e("delete", "status", "Delete a layer or image or container, with no safety checks"),
    _e("delete-layer", "status", "Delete a layer, with safety checks", "deletelayer"),
    _e("delete-image", "status", "Delete an image, with safety checks", "deleteimage"),
    _e("delete-container", "status", "Delete a container, with safety checks", "deletecontainer"),
    _e("changes", "diff", "Compare two layers"),
    _e("diffsize", "diff", "Compare two layers", "diff-size"),
    _e("diff", "diff", "Compare two layers"),
    _e("applydiff", "diff", "Apply a diff to a layer", "apply-diff"),
    _e("applydiff-using-staging-dir", "diff", "Apply a diff to a layer using a staging directory"),
    _e("exists", "status", "Check if a layer or image or container exists"),
    _e("gc", "status", "Perform garbage collection"),
    _e("image", "images", "Examine an image"),
    _e("list-image-data", "data", "List data items that are attached to an image", "listimagedata"),
    _e("get-image-data", "data", "Get data that is attached to an image", "getimagedata"),
    _e("get-image-data-size", "data", "Get size of data that is attached to an image", "getimagedatasize"),
    _e("get-image-data-digest", "data", "Get digest of data that is attached to an image", "getimagedatadigest"),
    _e("set-image-data", "data", "Set data that is attached to an image", "setimagedata"),
    _e("get-image-dir", "images", "Find the image's associated data directory", "getimagedir"),
    _e("get-image-run-dir", "images", "Find the image's associated runtime directory", "getimagerundir"),
    _e("images", "images", "List images"),
    _e("images-by-digest", "images", "List images by digest"),
    _e("layer", "layers", "Examine a layer"),
    _e("layer-parent-owners", "layers", "Compute the set of unmapped parent UIDs and GIDs of the layer"),
    _e("list-layer-data", "data", "List data items that are attached to a layer", "listlayerdata"),
    _e("get-layer-data", "data", "Get data that is attached to a layer", "getlayerdata"),
    _e("set-layer-data", "data", "Set data that is attached to a layer", "setlayerdata"),
    _e("layers", "layers", "List layers"),
    _e("storage-layers", "layers", "List layers in the storage driver"),
    _e("metadata", "status", "Retrieve layer, image, or container metadata"),
    _e("set-metadata", "status", "Set layer, image, or container metadata", "setmetadata"),
    _e("mount", "mount", "Mount a layer or container"),
    _e("unmount", "mount", "Unmount an image, layer or container", "umount"),
    _e("mounted", "mount", "Check if a file system is mounted"),
    _e("get-names", "names", "Get layer, image, or container name or names", "getnames"),
    _e("add-names", "names", "Add layer, image, or container name or names", "addnames"),
    _e("remove-names", "names", "Remove layer, image, or container name or names", "removenames"),
    _e("set-names", "names", "Set layer, image, or container name or names", "setnames"),
    _e("shutdown", "status", "Shut down layer storage"),
    _e("status", "status", "Check on graph driver status"),
    _e("unshare", "status", "Run a command in a user namespace"),
    _e("version", "status", "Return containers-storage version information"),
    _e("wipe", "status", "Wipe all layers, images, and containers"),
)

_BY_NAME: dict[str, Entry] = {}
for _entry in COMMANDS:
    _BY_NAME[_entry.name] = _entry
    for _alias in _entry.aliases:
        _BY_NAME[_alias] = _entry


def lookup(name: str) -> Entry | None:
    """The built-in command called ``name`` (or aliased so), or ``None``."""
    return _BY_NAME.get(name)
