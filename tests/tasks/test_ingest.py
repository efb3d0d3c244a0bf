"""The ingest tasks' own policies (the flow tests cover their work end to end)."""

from prefect.states import Completed, Failed

from mnist_pipeline.tasks.ingest import _retry_only_transient
from mnist_pipeline.tasks.core.errors import DownloadError, SourceError, TransientDownloadError


def failed(error):
    return Failed(data=error)


def test_only_transient_download_errors_are_retried():
    assert _retry_only_transient(None, None, failed(TransientDownloadError("timeouts")))
    assert not _retry_only_transient(None, None, failed(DownloadError("checksum mismatch")))
    assert not _retry_only_transient(None, None, failed(SourceError("bad gzip")))
    assert not _retry_only_transient(None, None, Completed(data=1))
