"""Errors the pipeline raises for problems a user can act on.

Every such error derives from :class:`MnistError`, and its message names the offending value and
what to do about it. The command line prints an ``MnistError`` as one ``error:`` line; any other
exception is a bug and keeps its traceback.
"""


class MnistError(Exception):
    """A problem with the input, the configuration or the stored data, not with the code."""


class InputError(MnistError, ValueError):
    """A path, reference or value given by the user cannot be used as it is."""


class SourceError(MnistError, ValueError):
    """The raw source is malformed: wrong format, truncated, inconsistent, too large or unreadable."""


class DownloadError(MnistError, RuntimeError):
    """No mirror delivered a file with the expected checksum."""


class TransientDownloadError(DownloadError):
    """Every mirror failed with an error that may go away (timeouts, 5xx, refused connections)."""


class ValidationFailed(MnistError, ValueError):
    """The dataset failed its Great Expectations suite; nothing was published."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result


class ModelFileError(MnistError, ValueError):
    """A stored model is truncated, tampered with, or not a model of this pipeline."""
