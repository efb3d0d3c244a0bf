"""Raw inputs: reading the files a source points at, and the immutable store of downloads.

Downloads are kept under ``raw/<algorithm>/<checksum>/<filename>``: the key is the checksum the
file was verified against, so a stored file never changes and is never fetched twice.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import fsspec

from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.errors import InputError


def read_input(uri: str) -> bytes:
    """The bytes of an input file: a local path or any fsspec URL (InputError if it is not one)."""
    try:
        with fsspec.open(uri, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        raise _unreadable(uri, error) from error


@contextmanager
def open_input(uri: str) -> Iterator[IO[bytes]]:
    """An input file opened for reading in parts (a local path or any fsspec URL; InputError if
    it is not one)."""
    try:
        handle = fsspec.open(uri, "rb").open()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        raise _unreadable(uri, error) from error
    with handle:
        yield handle


def is_file(uri: str) -> bool:
    """Whether an input file exists (a local path or any fsspec URL)."""
    fs, path = fsspec.core.url_to_fs(uri)
    return bool(fs.isfile(path))


def size_of(uri: str) -> int:
    """The size in bytes of an input file, without reading it."""
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if fs.isdir(path):
            raise IsADirectoryError(uri)
        return int(fs.size(path))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        raise _unreadable(uri, error) from error


def _unreadable(uri: str, error: OSError) -> InputError:
    problem = {
        FileNotFoundError: "does not exist", IsADirectoryError: "is a directory, not a file",
        NotADirectoryError: "has a file where its path expects a folder", PermissionError: "is not readable (permission denied)",
    }[type(error)]
    return InputError(f"{uri} {problem}")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_path(root: StorageRoot, algorithm: str, hexdigest: str, filename: str) -> str:
    return root.join("raw", algorithm, hexdigest, filename)


def find_raw(root: StorageRoot, algorithm: str, hexdigest: str, filename: str) -> str | None:
    """The URL of the stored copy of a download, if there is one."""
    path = raw_path(root, algorithm, hexdigest, filename)
    return root.url_of(path) if root.exists(path) else None


def store_raw(root: StorageRoot, algorithm: str, hexdigest: str, filename: str, data: bytes) -> str:
    """Keep a verified download and return its URL; an existing copy is left untouched."""
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != hexdigest:
        raise ValueError(f"refusing to store {filename}: {algorithm} is {actual}, not {hexdigest}")
    path = raw_path(root, algorithm, hexdigest, filename)
    if not root.exists(path):
        root.write_bytes_atomic(path, data)
    return root.url_of(path)

