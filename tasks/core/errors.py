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


class TrainingFailed(MnistError, RuntimeError):
    """One model family or more failed; the others went through every stage. A flow run that
    ends this way is Failed with this error, which carries what the run made as ``outcome``."""

    def __init__(self, message: str, outcome: object = None) -> None:
        super().__init__(message)
        self.outcome = outcome

    @staticmethod
    def outcome_of(result: object) -> object:
        """What a flow run made, from its result: the value it returned, or the outcome this
        error carries; any other error is raised (a stage failed before there was an outcome),
        and so is this one when it lost its outcome (read back from Prefect's API: only its type
        and message are kept there)."""
        if isinstance(result, TrainingFailed) and result.outcome is not None:
            return result.outcome
        if isinstance(result, BaseException):
            raise result
        return result
