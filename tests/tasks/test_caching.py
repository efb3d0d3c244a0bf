"""The cache policy of stored results, and the cache-entry check that lets only plain JSON through."""

import json

import pytest
from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from prefect.serializers import JSONSerializer, PickleSerializer

from mnist_pipeline.tasks.caching import (
    CacheKeyStorage, UntrustedResult, check_entry, key_while_stored, results_folder,
)


class Payload:
    """Stands for any object a pickle could carry."""


@pytest.fixture
def entries(tmp_path):
    """Writes cache entries the way Prefect does with a key storage: metadata and result apart."""
    folder = results_folder() / f"test-{tmp_path.name}"
    folder.mkdir(parents=True)

    def write(name, result, serializer=None, **metadata_changes):
        path = folder / name
        record = ResultRecord(metadata=ResultRecordMetadata(serializer=serializer or JSONSerializer(),
                                                            storage_key=str(path)), result=result)
        path.write_bytes(record.serialize_result())
        metadata = json.loads(record.serialize_metadata())
        metadata["serializer"].update(metadata_changes.pop("serializer_changes", {}))
        metadata.update(metadata_changes)
        return json.dumps(metadata).encode()

    return write


def test_keys_exist_only_while_stored_and_are_plain_file_names():
    assert key_while_stored(False, "train", "/root", "cnn-1") is None
    key = key_while_stored(True, "train", "memory://root/x", "cnn-1")
    assert key.startswith("train-") and "/" not in key and ":" not in key
    assert key == key_while_stored(True, "train", "memory://root/x", "cnn-1")
    assert key != key_while_stored(True, "train", "memory://root/y", "cnn-1")


def test_plain_json_entries_are_read_back(entries):
    summary = entries("summary", {"model_id": "cnn-1", "validation_accuracy": 0.9, "history": [1, 2]})
    assert check_entry(summary, lambda p: p.read_bytes()) == summary
    failure = entries("failure", ValueError("n_components=200 is too many"))  # a failed task's exception
    assert check_entry(failure, lambda p: p.read_bytes()) == failure


HOSTILE = {
    "pickle": lambda write: write("e", Payload(), PickleSerializer()),
    "decoder swapped": lambda write: write("e", {"a": 1}, serializer_changes={"object_decoder": "os.system"}),
    "jsonlib swapped": lambda write: write("e", {"a": 1}, serializer_changes={"jsonlib": "pickle"}),
    "object in result": lambda write: write("e", {"x": {"__class__": "subprocess.Popen", "data": ["id"]}}),
    "unimported exception": lambda write: write("e", {"__exc_type__": "antigravity.Fly", "message": "x"}),
    "result elsewhere": lambda write: write("e", {"a": 1}, storage_key="/etc/passwd"),
    "not metadata": lambda write: b"\x80\x04\x95 a raw pickle",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_anything_that_would_run_or_import_code_is_refused(case, entries):
    with pytest.raises(UntrustedResult):
        check_entry(HOSTILE[case](entries), lambda p: p.read_bytes())


def test_the_key_storage_refuses_on_read_what_the_check_refuses(entries):
    storage = CacheKeyStorage()
    storage.write_path("good", entries("good", {"a": 1}))
    storage.write_path("bad", entries("bad", Payload(), PickleSerializer()))
    assert json.loads(storage.read_path("good"))["serializer"]["type"] == "json"
    with pytest.raises(UntrustedResult, match="names the serializer"):
        storage.read_path("bad")
