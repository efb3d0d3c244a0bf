"""Errors the pipeline raises for bad input; each message names the value and what to do."""


class SourceError(ValueError):
    """The raw source is malformed: wrong format, truncated, inconsistent, or unreadable."""


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected checksum."""


class TransientDownloadError(DownloadError):
    """Every mirror failed with an error that may go away (timeouts, 5xx, refused connections)."""


class ValidationFailed(ValueError):
    """The dataset failed its Great Expectations suite; nothing was published."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result
