"""Typed errors of the store.

Every error carries the exact message text of the Go implementation where scripts match it
(``layer not known``, ``that name is already in use`` ...).  Wrapping follows Go's
``"<context>: <base message>"`` convention: :meth:`StorageError.wrap` returns a new error of the
same class whose message is prefixed, so ``isinstance`` checks keep working on wrapped errors.

Errors become messages and exit codes only in :mod:`cs_core.cli`.
"""

from __future__ import annotations

from typing import TypeVar

_E = TypeVar("_E", bound="StorageError")


class StorageError(Exception):
    """Base class of every error raised by the store, its plugins and the archive engine."""

    default_message = "storage error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message if message is not None else self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])

    def wrap(self: _E, context: str) -> _E:
        """Return a copy of this error with ``context: `` prefixed to its message."""
        err = type(self).__new__(type(self))
        StorageError.__init__(err, f"{context}: {self.message}")
        err.__cause__ = self
        return err

    def __str__(self) -> str:
        return self.message


class NotFoundError(StorageError):
    """Something that was looked up does not exist."""

    default_message = "not known"


class LayerUnknown(NotFoundError):
    """``layer not known``"""

    default_message = "layer not known"

class ImageUnknown(NotFoundError):
    """``image not known``"""

    default_message = "image not known"

class ContainerUnknown(NotFoundError):
    """``container not known``"""

    default_message = "container not known"

class ParentUnknown(NotFoundError):
    """``parent of layer not known``"""

    default_message = "parent of layer not known"

class NotALayer(NotFoundError):
    """``identifier is not a layer``"""

    default_message = "identifier is not a layer"

class NotAnImage(NotFoundError):
    """``identifier is not an image``"""

    default_message = "identifier is not an image"

class NotAContainer(NotFoundError):
    """``identifier is not a container``"""

    default_message = "identifier is not a container"

class NotLayerImageOrContainer(NotFoundError):
    """``identifier is not a layer, image, or container``"""

    default_message = "identifier is not a layer, image, or container"

class FileDoesNotExist(NotFoundError):
    """``file does not exist``"""

    default_message = "file does not exist"


class DuplicateID(StorageError):
    """``that ID is already in use``"""

    default_message = "that ID is already in use"

class DuplicateName(StorageError):
    """``that name is already in use``"""

    default_message = "that name is already in use"

class LayerHasChildren(StorageError):
    """``layer has children``"""

    default_message = "layer has children"

class LayerUsedByImage(StorageError):
    """``layer is in use by an image``"""

    default_message = "layer is in use by an image"

class LayerUsedByContainer(StorageError):
    """``layer is in use by a container``"""

    default_message = "layer is in use by a container"

class ImageUsedByContainer(StorageError):
    """``image is in use by a container``"""

    default_message = "image is in use by a container"

class ParentIsContainer(StorageError):
    """``would-be parent layer is a container``"""

    default_message = "would-be parent layer is a container"

class LayerNotMounted(StorageError):
    """``layer is not mounted``"""

    default_message = "layer is not mounted"

class ReadOnlyStore(StorageError):
    """``called a write method on a read-only store``"""

    default_message = "called a write method on a read-only store"

class SizeUnknown(StorageError):
    """``size is not known``"""

    default_message = "size is not known"

class DigestUnknown(StorageError):
    """``could not compute digest of item``"""

    default_message = "could not compute digest of item"

class InvalidBigDataName(StorageError):
    """``not a valid name for a big data item``"""

    default_message = "not a valid name for a big data item"

class InvalidNameOperation(StorageError):
    """``invalid update name operation``"""

    default_message = "invalid update name operation"

class InvalidMappings(StorageError):
    """``invalid mappings specified``"""

    default_message = "invalid mappings specified"

class NotSupported(StorageError):
    """``not supported``"""

    default_message = "not supported"

class IncompleteLayer(StorageError):
    """``an incomplete layer exists and can't be cleaned up``"""

    default_message = "an incomplete layer exists and can't be cleaned up"

class InvalidDigest(StorageError):
    """``invalid checksum digest format``"""

    default_message = "invalid checksum digest format"

class InvalidOption(StorageError):
    """``invalid option``"""

    default_message = "invalid option"

class StoreMetadataError(StorageError):
    """``error loading storage metadata``"""

    default_message = "error loading storage metadata"



class ConfigError(StorageError):
    """Invalid configuration: the message names the file and the key."""

    default_message = "invalid configuration"


class PluginError(StorageError):
    """A plugin is unknown, broken, or two plugins claim one name."""

    default_message = "plugin error"


class DriverNotSupported(NotSupported):
    """The selected graph driver cannot run here (wrong file system, missing kernel feature)."""

    default_message = "driver not supported"


class ArchiveError(StorageError):
    """A tar stream is malformed, hostile, or could not be reproduced."""

    default_message = "invalid tar header"


class UnexpectedEOF(ArchiveError):
    """The tar stream ended in the middle of a header or a member."""

    default_message = "unexpected EOF"


class InvalidTarHeader(ArchiveError):
    """The input is not a tar stream."""

    default_message = "invalid tar header"


class ChecksumMismatch(ArchiveError):
    """A file changed since its layer was applied, so its diff cannot be reproduced."""

    default_message = "file integrity checksum failed"


class UnsupportedCompression(ArchiveError):
    """Output compression that diffs cannot be written with (bzip2, xz)."""

    default_message = "unsupported compression format"


class UsageError(StorageError):
    """Bad command-line input detected below the CLI (e.g. a malformed ID map)."""

    default_message = "usage error"
