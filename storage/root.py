"""The storage root: where the pipeline keeps raw downloads, datasets and (later) models.

The root is a local directory or an fsspec URL. Every file operation in ``storage/`` goes
through :class:`StorageRoot`'s filesystem, so pointing ``MNIST_HOME`` at an object store
later needs no change outside this package.
"""

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem
from mnist_pipeline.tasks.core.errors import InputError

HOME_ENV = "MNIST_HOME"
REGISTRY_ENV = "MNIST_REGISTRY_URL"  # the registry's database, where it is not SQLite in the storage root
# XDG-style default, so a user who never sets MNIST_HOME finds the data in one obvious place.
DEFAULT_HOME = "~/.local/share/mnist-pipeline"


def resolve_home(home: str | os.PathLike | None = None) -> str:
    """Return the storage root: ``home`` if given, else ``$MNIST_HOME``, else the default."""
    chosen = str(home) if home else os.environ.get(HOME_ENV) or DEFAULT_HOME
    if "{{" in chosen:  # prefect.yaml's "{{ $MNIST_HOME }}", left as it was by a shell without it
        raise InputError(
            f"the storage root is {chosen!r}: the deployment was made from a shell without {HOME_ENV}; "
            f"export {HOME_ENV}=DIR and run `prefect --no-prompt deploy ...` again"
        )
    if "://" in chosen:
        return chosen
    return str(Path(chosen).expanduser().resolve())


class StorageUnreachable(InputError):
    """The storage root's server (an S3 endpoint, say) did not answer."""


# What fsspec's object-store backends raise when nothing answers at the endpoint (botocore via
# s3fs, aiohttp via the HTTP-based ones); matched by name so that none of them must be installed.
_CONNECTION_ERRORS = {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError",
                      "ServerDisconnectedError"}


def unreachable(error: BaseException) -> StorageUnreachable | None:
    """A one-line error naming the endpoint, when ``error`` (or its cause) is a connection failure."""
    seen = error
    while seen is not None:
        if {c.__name__ for c in type(seen).__mro__} & _CONNECTION_ERRORS:
            endpoint = getattr(seen, "kwargs", {}).get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
            where = f"the storage endpoint {endpoint}" if endpoint else "the storage root's server"
            return StorageUnreachable(
                f"cannot reach {where} ({' '.join(str(seen).split())}); check that it is running and that "
                "AWS_ENDPOINT_URL (or fsspec's configuration) names it"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def is_directory_url(url: str) -> bool:
    """Whether a path or URL a user gave as an output names a folder (ends in / or is one)."""
    fs, path = fsspec.core.url_to_fs(url)
    return url.endswith("/") or fs.isdir(path)


def write_url_atomic(url: str, data: bytes) -> str:
    """Write ``data`` to a file the user named (a path or fsspec URL) so that readers see the old
    file or the new one, never half; returns ``url``."""
    with open_url_atomic(url) as handle:
        handle.write(data)
    return url


@contextmanager
def open_url_atomic(url: str) -> Iterator[IO[bytes]]:
    """A binary handle on a temporary file beside ``url`` (a path or fsspec URL), moved onto it
    when the block ends without an error and removed when it raises: readers see the old file
    or the whole new one, never a part."""
    fs, path = fsspec.core.url_to_fs(url)
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    fs.makedirs(parent, exist_ok=True)
    temporary = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[-1]}"
    try:
        with fs.open(temporary, "wb") as handle:
            yield handle
        fs.mv(temporary, path)
    finally:
        if fs.exists(temporary):
            fs.rm(temporary)


class StorageRoot:
    """A storage root and its filesystem; all paths are ``/``-joined below ``self.path``."""

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.url = resolve_home(home)
        self.fs, self.path = fsspec.core.url_to_fs(self.url)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local and os.path.exists(self.path) and not os.path.isdir(self.path):
            raise InputError(
                f"the storage root {self.path} is a file, not a folder; pass --home DIR "
                f"(or set {HOME_ENV}) to a folder"
            )

    def require_existing(self) -> "StorageRoot":
        """This root, if it exists: commands that only read must not create one by mistake."""
        if not self.fs.exists(self.path):
            raise InputError(
                f"the storage root {self.url} does not exist (nothing was created); check --home "
                f"or {HOME_ENV}, or run `mnist ingest` / `mnist train-all` to start one there"
            )
        return self

    def __repr__(self) -> str:
        return f"StorageRoot({self.url!r})"

    def join(self, *parts: str) -> str:
        return "/".join([self.path.rstrip("/"), *parts])

    def url_of(self, path: str) -> str:
        """A URL for ``path`` that fsspec (and, on a local disk, anything else) can open."""
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def read_bytes(self, path: str) -> bytes:
        return self.fs.cat_file(path)

    def write_bytes_atomic(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
        write_url_atomic(self.url_of(path), data)

    def read_commit_files(self, area: str, commit_file: str) -> list[bytes]:
        """The commit file of every complete directory in ``area`` (staging and retired skipped)."""
        folder = self.join(area)
        if not self.exists(folder):
            return []
        found = []
        for entry in self.fs.ls(folder, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[1]
            if not name.startswith(".") and self.exists(f"{entry}/{commit_file}"):
                found.append(self.read_bytes(f"{entry}/{commit_file}"))
        return found

    def remove_stale_staging(self, area: str, older_than_seconds: float = 3600) -> None:
        """Delete staging directories left by writers that were killed (local disks only)."""
        staging_root = self.join(area, ".staging")
        if not self.is_local or not os.path.isdir(staging_root):
            return
        cutoff = time.time() - older_than_seconds
        for entry in os.scandir(staging_root):
            try:
                modified = entry.stat().st_mtime
            except FileNotFoundError:  # its writer (a task beside this one) published or removed it
                continue
            if modified < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)

    @contextmanager
    def staging_dir(self, area: str) -> Iterator[str]:
        """A private directory under ``area/.staging`` that is removed afterwards, whatever happens.

        Writers fill it and then :meth:`publish_dir` it; a process killed mid-write leaves only a
        staging directory behind, which readers never look at.
        """
        staging = self.join(area, ".staging", f"{os.getpid()}-{uuid.uuid4().hex}")
        self.fs.makedirs(staging, exist_ok=True)
        try:
            yield staging
        finally:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)

    def publish_dir(self, staging: str, final: str, commit_file: str, replace: bool = False) -> bool:
        """Move a filled staging directory to ``final`` in one step.

        ``commit_file`` is the file whose presence marks the directory as complete.
        Returns False (and publishes nothing) when ``final`` already exists, which happens when
        a concurrent writer published the same content first, unless ``replace`` is set: then
        the old directory is moved aside first and deleted after the new one is in place. On a
        local disk each move is one ``rename``, so the directory appears whole or not at all.
        """
        # On an object store a directory without its commit file is incomplete: a writer killed
        # mid-publish left it, or one is publishing the same content right now. Readers ignore it,
        # and the copy below overwrites its objects one by one (same bytes: no harm to either).
        if self.fs.exists(final) and (self.is_local or self.fs.exists(f"{final}/{commit_file}")):
            if not replace:
                return False
            retired = f"{final.rsplit('/', 1)[0]}/.retired-{uuid.uuid4().hex}"
            self.fs.mv(final, retired, recursive=True)
            try:
                return self.publish_dir(staging, final, commit_file)
            except BaseException:
                self.fs.mv(retired, final, recursive=True)  # put the old one back
                raise
            finally:
                if self.fs.exists(retired):
                    self.fs.rm(retired, recursive=True)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        if self.is_local:
            try:
                os.rename(staging, final)
            except OSError:
                if os.path.isdir(final):
                    return False
                raise
            return True
        # Object stores have no atomic directory rename: readers treat a directory as present
        # only once its commit file exists, so that file is copied last. Files are copied one by
        # one (a recursive copy onto an existing folder would nest it inside).
        files = sorted(path[len(staging) + 1:] for path in self.fs.find(staging))
        for name in [n for n in files if n != commit_file] + [commit_file]:
            self.fs.copy(f"{staging}/{name}", f"{final}/{name}")
        return True
