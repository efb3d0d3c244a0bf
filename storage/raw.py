"""Raw inputs: reading the files a source points at, and the immutable store of downloads.

Downloads are kept under ``raw/<algorithm>/<checksum>/<filename>``: the key is the checksum the
file was verified against, so a stored file never changes and is never fetched twice.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem

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


def list_folder(uri: str) -> list[str]:
    """The names of what a folder (or object-store prefix) holds directly; a name that is itself a
    folder ends in ``/``. InputError when a local ``uri`` is not a folder; an object-store prefix
    that holds nothing yet holds no names."""
    fs, path = fsspec.core.url_to_fs(uri)
    fs.invalidate_cache(path)  # a long-lived worker must see tonight's batches, not a cached listing
    if not isinstance(fs, LocalFileSystem) and not fs.exists(path):
        return []  # an object store's prefix exists once its first object does
    if not fs.isdir(path):
        problem = "is a file" if fs.exists(path) else "does not exist"
        raise InputError(f"{uri} {problem}; a batch source names the folder (or object-store prefix) its batches "
                         "are put in: create it and put the first batch there")
    entries = fs.ls(path, detail=True)
    return sorted(entry["name"].rstrip("/").rsplit("/", 1)[-1] + ("/" if entry["type"] == "directory" else "")
                  for entry in entries if entry["name"].rstrip("/") != path.rstrip("/"))


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

