"""All railwatch errors: one base class, one-line subclasses.

`InvalidInput` and its children are never retried (the input must be fixed);
`TransientError` and its children may be retried (the world may get better).
"""


class RailwatchError(Exception):
    """Base class of every error railwatch raises on purpose."""


class InvalidInput(RailwatchError):
    """Input that must be fixed by the user; retrying cannot help."""


class AOIError(InvalidInput):
    """An AOI file does not follow spec/aoi-format.md."""


class ConfigError(InvalidInput):
    """A setting (store URL, database URL, catalog source) is unusable."""


class SceneError(InvalidInput):
    """A scene or image cannot be used (unreadable, wrong bands, no overlap with the AOI)."""


class CatalogItemError(InvalidInput):
    """A catalog item lacks what railwatch needs (assets, projection, datetime)."""


class TransientError(RailwatchError):
    """A failure of infrastructure that may succeed on retry."""


class StorageError(TransientError):
    """Reading from or writing to the object store failed."""


class CatalogError(TransientError):
    """A catalog could not be searched."""
