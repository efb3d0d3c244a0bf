"""The one handle tasks get to a run's storage: resolved once, small, the registry opened for a block."""

import pickle

import pytest

from mnist_pipeline.storage.registry import RegistryError
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.core.errors import InputError


def test_a_store_resolves_its_urls_once_and_travels_as_two_strings(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_HOME", str(tmp_path / "from-env"))
    monkeypatch.setenv("MNIST_REGISTRY_URL", "postgresql+psycopg://db/registry")
    store = Store.resolve()
    assert store == Store(str(tmp_path / "from-env"), "postgresql+psycopg://db/registry")
    assert Store.resolve(str(tmp_path / "given"), "sqlite:////r.db") == Store(str(tmp_path / "given"), "sqlite:////r.db")
    assert pickle.loads(pickle.dumps(store)) == store and len(pickle.dumps(store)) < 300
    assert store.root is Store.resolve().root  # one StorageRoot per root and process


def test_the_registry_is_open_for_the_block_and_closed_after(home):
    store = Store.resolve(home)
    with store.registry() as registry:
        assert registry.list_versions() == []
        engine = registry.engine
    assert engine.pool.checkedout() == 0  # disposed


def test_a_store_that_only_reads_never_creates_a_registry_or_a_root(tmp_path):
    store = Store.resolve(str(tmp_path / "typo"))
    with pytest.raises(InputError, match="does not exist"):
        store.existing_root()
    with pytest.raises(InputError, match="does not exist"):
        with store.registry(create=False):
            pass
    with pytest.raises(RegistryError, match="no model registry"):  # a root, but no registry in it
        (tmp_path / "root").mkdir()
        with Store.resolve(str(tmp_path / "root")).registry(create=False):
            pass
    assert not (tmp_path / "typo").exists()


def test_a_store_means_the_same_registry_wherever_it_is_opened(monkeypatch, home, tmp_path):
    """Resolved where the run started without a registry URL (SQLite in the root), it stays that on
    a worker whose environment names another registry."""
    store = Store.resolve(home)
    assert store.registry_url is None
    monkeypatch.setenv("MNIST_REGISTRY_URL", f"sqlite:///{tmp_path / 'the-workers-own.db'}")
    with store.registry() as registry:
        assert registry.location == f"{home}/registry.db"
    assert not (tmp_path / "the-workers-own.db").exists()
