"""The handle a run's tasks get to everything it keeps: the storage root and the registry.

A flow builds one :class:`Store` where the run starts (``config.store()``), from its config and
the environment there, and passes it to every task. The handle holds only the resolved URLs,
so it pickles small and means the same on a Dask worker or another machine as where the run
started: a task never looks at ``$MNIST_HOME``, ``$MNIST_REGISTRY_URL`` or ``$MLFLOW_TRACKING_URI`` itself.
"""

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mnist_pipeline.storage.root import REGISTRY_ENV, StorageRoot, resolve_home

if TYPE_CHECKING:
    from mnist_pipeline.storage.registry import Registry

MLFLOW_ENV = "MLFLOW_TRACKING_URI"


def external_registry(url: str | None = None) -> str | None:
    """The registry URL given explicitly or by the environment (None: SQLite in the storage root)."""
    return url or os.environ.get(REGISTRY_ENV) or None


@dataclass(frozen=True)
class Store:
    home: str  # the storage root: an absolute path or an fsspec URL
    registry_url: str | None = None  # the registry database; None: SQLite in the storage root
    # An MLflow tracking server that mirrors the registry's runs, versions and aliases; None: none.
    mlflow_uri: str | None = None

    @classmethod
    def resolve(cls, home: str | None = None, registry_url: str | None = None,
                mlflow_uri: str | None = None) -> "Store":
        """The store named by these settings, else by ``$MNIST_HOME`` / ``$MNIST_REGISTRY_URL`` /
        ``$MLFLOW_TRACKING_URI``, else the defaults (see :func:`resolve_home`, :func:`external_registry`)."""
        return cls(resolve_home(home), external_registry(registry_url),
                   mlflow_uri or os.environ.get(MLFLOW_ENV) or None)

    @property
    def root(self) -> StorageRoot:
        return _root(self.home)

    def existing_root(self) -> StorageRoot:
        """The storage root, which must exist: commands that only read never create one."""
        return self.root.require_existing()

    @contextmanager
    def registry(self, create: bool = True) -> Iterator["Registry"]:
        """The registry, open for the block and closed after it; ``create=False`` for commands
        that read or move aliases, which must never create a registry (or a storage root)."""
        from mnist_pipeline.storage.registry import Registry  # SQLAlchemy: only where it is used

        registry = (Registry.open(self.root, self.registry_url) if create
                    else Registry.open_existing(self.root, self.registry_url))
        try:
            yield registry
        finally:
            registry.close()


@functools.lru_cache(maxsize=16)
def _root(home: str) -> StorageRoot:
    # One StorageRoot (and fsspec filesystem) per root and process, however many tasks use it.
    return StorageRoot(home)
