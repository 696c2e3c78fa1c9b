"""Errors that tuijian raises for bad input: each carries one line that says what and where."""


class TuijianError(Exception):
    """Base of every error tuijian raises on purpose; the CLI prints it as one line."""


class DataError(TuijianError):
    """A file, table or column is missing, malformed or empty."""


class UnknownIdError(TuijianError, KeyError):
    """An external user or item id is not in the vocabulary."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown id"


class ConfigError(TuijianError):
    """An unknown model, parameter or an invalid value."""


class NotFittedError(TuijianError):
    """A model was used before `fit` or `load`."""
