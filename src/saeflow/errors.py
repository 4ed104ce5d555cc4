"""One exception type per kind of user mistake; each is caught once at the entry point."""


class SaeflowError(Exception):
    """Base class of user-facing errors (printed as one line, no traceback)."""


class ConfigError(SaeflowError):
    """A config key is missing, unknown or has the wrong type/value."""


class AssetError(SaeflowError):
    """A model or data asset cannot be found, downloaded or verified."""


class DataError(SaeflowError):
    """Input data is malformed or too small for what was asked."""
