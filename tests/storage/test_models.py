import hashlib
import os

import pytest
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.errors import ModelFileError

from tests.conftest import record as training_record

FILES = {"model.json": b'{"family": "mlp"}', "weights.safetensors": b"\x00" * 1000}


def trained_at(when: str):
    return training_record("unnamed").model_copy(update={"trained_at": when})


def test_write_find_and_read_back(home):
    root = StorageRoot(home)
    assert model_store.find_trained(root, "mlp-1") is None
    record = model_store.write_trained(root, "mlp-1", FILES, training_record("unnamed", "mlp"))
    assert record.model_id == "mlp-1"
    assert record.files["weights.safetensors"].sha256 == hashlib.sha256(FILES["weights.safetensors"]).hexdigest()
    assert model_store.find_trained(root, "mlp-1") == record
    assert model_store.read_model_files(root, "mlp-1") == FILES
    assert [r.model_id for r in model_store.list_trained(root)] == ["mlp-1"]
    assert sorted(os.listdir(os.path.join(home, "models"))) == [".staging", "mlp-1"] or \
        sorted(os.listdir(os.path.join(home, "models"))) == ["mlp-1"]


def test_an_existing_model_is_kept_unless_replaced(home):
    root = StorageRoot(home)
    first = model_store.write_trained(root, "mlp-1", FILES, trained_at("first"))
    again = model_store.write_trained(root, "mlp-1", {**FILES, "model.json": b"{}"}, trained_at("second"))
    assert again == first
    replaced = model_store.write_trained(root, "mlp-1", {**FILES, "model.json": b"{}"}, trained_at("second"), force=True)
    assert replaced.trained_at == "second"
    assert model_store.read_model_files(root, "mlp-1")["model.json"] == b"{}"
    assert [e for e in os.listdir(os.path.join(home, "models")) if e.startswith(".retired")] == []


@pytest.mark.parametrize("damage", ["truncate", "tamper", "delete"])
def test_damaged_files_are_reported_not_loaded(home, damage):
    root = StorageRoot(home)
    model_store.write_trained(root, "mlp-1", FILES, trained_at("t"))
    path = os.path.join(home, "models", "mlp-1", "weights.safetensors")
    if damage == "truncate":
        open(path, "wb").write(FILES["weights.safetensors"][:10])
    elif damage == "tamper":
        open(path, "wb").write(b"\x01" * 1000)
    else:
        os.remove(path)
    with pytest.raises(ModelFileError, match="weights.safetensors"):
        model_store.read_model_files(root, "mlp-1")


def test_unknown_model_is_a_clear_error(home):
    with pytest.raises(model_store.ModelNotFound, match="mnist train-all"):
        model_store.read_record(StorageRoot(home), "cnn-0")
