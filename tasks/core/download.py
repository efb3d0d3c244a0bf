"""Downloading a file from a list of mirrors, checked against its known checksum.

Each mirror is tried in order. Transient errors (timeouts, refused or reset connections,
HTTP 408/429/5xx) are retried on the same mirror with exponential backoff; a checksum
mismatch or a permanent error (404, 403, ...) moves on to the next mirror at once.
"""

import hashlib
import http.client
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mnist_pipeline.tasks.core.errors import DownloadError, TransientDownloadError

TRANSIENT_HTTP_CODES = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "mnist-pipeline/0.1 (python urllib)"


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # a hashlib name: "sha256", or "md5" where upstream only publishes MD5
    hexdigest: str

    def of(self, data: bytes) -> str:
        return hashlib.new(self.algorithm, data).hexdigest()

    def matches(self, data: bytes) -> bool:
        return self.of(data) == self.hexdigest

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


@dataclass(frozen=True)
class Attempt:
    url: str
    error: str
    transient: bool


@dataclass(frozen=True)
class Downloaded:
    data: bytes
    url: str


def http_get(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def download(
    filename: str,
    checksum: Checksum,
    mirrors: Sequence[str],
    *,
    attempts_per_mirror: int = 3,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 60.0,
    get: Callable[[str, float], bytes] = http_get,
    sleep: Callable[[float], None] = time.sleep,
) -> Downloaded:
    """Fetch ``filename`` from the first mirror that serves it with the right checksum."""
    if not mirrors:
        raise DownloadError(f"no mirror configured for {filename}")
    tried: list[Attempt] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        for attempt in range(1, attempts_per_mirror + 1):
            try:
                data = get(url, timeout_seconds)
            except Exception as error:  # classified below; anything unknown is permanent
                transient = is_transient(error)
                tried.append(Attempt(url, describe(error), transient))
                if transient and attempt < attempts_per_mirror:
                    sleep(backoff_seconds * 2 ** (attempt - 1))
                    continue
                break
            if checksum.matches(data):
                return Downloaded(data, url)
            tried.append(
                Attempt(
                    url,
                    f"checksum mismatch: expected {checksum}, got "
                    f"{checksum.algorithm}:{checksum.of(data)} ({len(data)} bytes)",
                    transient=False,
                )
            )
            break
    raise _all_failed(filename, tried)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code in TRANSIENT_HTTP_CODES
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        # A name that does not resolve (no DNS, an offline machine, a typo) stays unresolved for
        # the next minute too: move on at once instead of retrying.
        return isinstance(reason, (OSError, TimeoutError)) and not isinstance(
            reason, (FileNotFoundError, socket.gaierror)
        )
    return isinstance(
        error, (TimeoutError, socket.timeout, ConnectionError, http.client.IncompleteRead)
    )


def describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"{type(error.reason).__name__}: {error.reason}"
    return f"{type(error).__name__}: {error}"


def _all_failed(filename: str, tried: list[Attempt]) -> DownloadError:
    lines = "\n".join(f"  - {a.url}: {a.error}" for a in tried)
    message = (
        f"could not download {filename} from any mirror; tried:\n{lines}\n"
        "To use files you already have, point the pipeline at a folder holding the four IDX files "
        "(gzipped or not): --source idx:DIR on the command line; for a deployment, "
        "--param config='{\"source\": \"idx:DIR\"}' on one run, or "
        "`prefect variable set mnist_source idx:DIR` for every run that names no source "
        "(the nightly mnist/train-all). Or try another mirror first with --mirror URL "
        "(ingest.mirrors in a deployment's config); for an offline quickstart use --source mnist-sample."
    )
    if tried and all(a.transient for a in tried):
        return TransientDownloadError(message)
    return DownloadError(message)
