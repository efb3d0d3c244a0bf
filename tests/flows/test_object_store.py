"""The whole pipeline on a storage root that is not a local disk (fsspec's in-memory filesystem,
which like an object store has no atomic directory rename), with the registry elsewhere."""

import fsspec
import pytest

from mnist_pipeline.flows.config import TrainAllConfig
from mnist_pipeline.flows.mnist import mnist
from mnist_pipeline.storage.registry import Registry, RegistryError
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.predict import load_registered

from .test_train import QUICK

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_train_all_on_an_fsspec_root_with_an_external_registry(tmp_path):
    home, registry_url = "memory://mnist-object-store", f"sqlite:///{tmp_path / 'registry.db'}"
    with pytest.raises(RegistryError, match="MNIST_REGISTRY_URL"):
        Registry.open(StorageRoot(home))  # SQLite cannot live in an object store
    config = TrainAllConfig(home=home, source="mnist-sample", registry_url=registry_url,
                            train={"families": QUICK, "models": ["logreg", "cnn"]},
                            promotion={"min_test_accuracy": 0.5})
    try:
        state = mnist(config, return_state=True)
        assert state.is_completed(), state.message
        result = state.result()
        assert result.eda_report.startswith("memory://")
        fs = fsspec.filesystem("memory")
        areas = {path.rsplit("/", 1)[1] for path in fs.ls("/mnist-object-store", detail=False)}
        assert {"datasets", "reports", "models", "evaluations"} <= areas
        assert not [p for p in fs.find("/mnist-object-store") if "/.staging/" in p]
        registered = load_registered(Store.resolve(home, registry_url), "production")
        assert registered.model_id == result.promotion.challenger
        assert registered.model.predict_proba(__import__("numpy").zeros((2, 28, 28), "uint8")).shape == (2, 10)
    finally:
        fsspec.filesystem("memory").rm("/mnist-object-store", recursive=True)
