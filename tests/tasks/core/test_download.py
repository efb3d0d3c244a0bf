import hashlib
import socket

import pytest

from mnist_pipeline.tasks.core.download import Checksum, download
from mnist_pipeline.tasks.core.errors import DownloadError, TransientDownloadError
from tests.http_server import MirrorServer

GOOD = b"the real file" * 1000
CHECKSUM = Checksum("sha256", hashlib.sha256(GOOD).hexdigest())
NO_SLEEP = {"sleep": lambda seconds: None}


@pytest.fixture
def server():
    with MirrorServer() as running:
        yield running


def test_corrupt_mirror_falls_back_to_the_next(server):
    server.routes["/bad/f.gz"] = [(200, b"corrupt bytes")]
    server.routes["/good/f.gz"] = [(200, GOOD)]
    got = download("f.gz", CHECKSUM, [f"{server.url}/bad/", f"{server.url}/good/"], **NO_SLEEP)
    assert got.data == GOOD and got.url == f"{server.url}/good/f.gz"
    assert server.hits["/bad/f.gz"] == 1  # a checksum mismatch is not retried


def test_dead_mirror_404_moves_on_without_retrying(server):
    server.routes["/good/f.gz"] = [(200, GOOD)]
    got = download("f.gz", CHECKSUM, [f"{server.url}/gone", f"{server.url}/good"], **NO_SLEEP)
    assert got.data == GOOD
    assert server.hits["/gone/f.gz"] == 1


def test_transient_errors_are_retried_with_backoff(server):
    server.routes["/m/f.gz"] = [(503, b"busy"), (500, b"oops"), (200, GOOD)]
    waits = []
    got = download("f.gz", CHECKSUM, [f"{server.url}/m"], backoff_seconds=0.5, sleep=waits.append)
    assert got.data == GOOD
    assert server.hits["/m/f.gz"] == 3
    assert waits == [0.5, 1.0]


def test_all_mirrors_failing_lists_every_attempt_and_the_way_out(server):
    server.routes["/bad/f.gz"] = [(200, b"corrupt")]
    with pytest.raises(DownloadError) as caught:
        download("f.gz", CHECKSUM, [f"{server.url}/bad", f"{server.url}/gone"], **NO_SLEEP)
    message = str(caught.value)
    assert not isinstance(caught.value, TransientDownloadError)
    assert f"{server.url}/bad/f.gz: checksum mismatch: expected sha256:{CHECKSUM.hexdigest}" in message
    assert f"{server.url}/gone/f.gz: HTTP 404" in message
    assert "--source idx:DIR" in message and "--source mnist-sample" in message
    # the deployment forms too: one run's parameters, or the Variable the nightly run reads
    assert """--param config='{"source": "idx:DIR"}'""" in message
    assert "prefect variable set mnist_source idx:DIR" in message


def test_only_transient_failures_raise_the_retryable_error():
    with socket.socket() as probe:  # a port that nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientDownloadError, match="ConnectionRefusedError"):
        download("f.gz", CHECKSUM, [f"http://127.0.0.1:{port}/"], attempts_per_mirror=2, **NO_SLEEP)


def test_md5_checksums_are_supported(server):
    server.routes["/m/f.gz"] = [(200, GOOD)]
    md5 = Checksum("md5", hashlib.md5(GOOD).hexdigest())
    assert download("f.gz", md5, [f"{server.url}/m"], **NO_SLEEP).data == GOOD


def test_a_name_that_does_not_resolve_is_not_retried():
    attempts = []
    with pytest.raises(DownloadError) as caught:  # .invalid never resolves (RFC 2606)
        download("f.gz", CHECKSUM, ["http://mirror.invalid/"], attempts_per_mirror=3, sleep=attempts.append)
    assert not isinstance(caught.value, TransientDownloadError)
    assert attempts == [] and "gaierror" in str(caught.value)
