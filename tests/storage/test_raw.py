import hashlib

import pytest

from mnist_pipeline.storage import raw
from mnist_pipeline.storage.root import StorageRoot, resolve_home


def test_downloads_are_kept_by_checksum_and_never_rewritten(home):
    root = StorageRoot(home)
    data = b"payload"
    digest = hashlib.md5(data).hexdigest()
    assert raw.find_raw(root, "md5", digest, "f.gz") is None
    path = raw.store_raw(root, "md5", digest, "f.gz", data)
    assert path == f"{home}/raw/md5/{digest}/f.gz"
    assert raw.find_raw(root, "md5", digest, "f.gz") == path
    mtime = __import__("os").stat(path).st_mtime_ns
    raw.store_raw(root, "md5", digest, "f.gz", data)
    assert __import__("os").stat(path).st_mtime_ns == mtime
    assert raw.read_input(path) == data


def test_a_file_that_does_not_match_its_key_is_refused(home):
    with pytest.raises(ValueError, match="refusing to store f.gz"):
        raw.store_raw(StorageRoot(home), "md5", "0" * 32, "f.gz", b"other")


def test_home_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_HOME", str(tmp_path / "env"))
    assert resolve_home() == str(tmp_path / "env")
    assert resolve_home(tmp_path / "arg") == str(tmp_path / "arg")
    assert resolve_home("memory://bucket/root") == "memory://bucket/root"
    monkeypatch.delenv("MNIST_HOME")
    assert resolve_home().endswith(".local/share/mnist-pipeline")


def test_an_fsspec_url_works_as_root():
    root = StorageRoot("memory://mnist-test-root")
    root.write_bytes_atomic(root.join("a", "b.txt"), b"hello")
    assert root.read_bytes(root.join("a", "b.txt")) == b"hello"
    assert not root.is_local


def test_a_folder_of_batches_is_listed_afresh_folders_marked_and_a_missing_one_named(tmp_path):
    import fsspec

    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "b.csv").write_text("x")
    (folder / "old").mkdir()
    assert raw.list_folder(str(folder)) == ["b.csv", "old/"]
    with pytest.raises(raw.InputError, match="does not exist; a batch source names the folder"):
        raw.list_folder(str(tmp_path / "missing"))
    with pytest.raises(raw.InputError, match="is a file"):
        raw.list_folder(str(folder / "b.csv"))
    # an object store's prefix exists once its first object does: until then it holds no batch
    memory = fsspec.filesystem("memory")
    try:
        assert raw.list_folder("memory://batches-test/incoming") == []
        memory.pipe("/batches-test/incoming/a.csv", b"x")
        assert raw.list_folder("memory://batches-test/incoming") == ["a.csv"]
        memory.pipe("/batches-test/incoming/c.parquet", b"y")  # a listing is never answered from a cache
        assert raw.list_folder("memory://batches-test/incoming/") == ["a.csv", "c.parquet"]
    finally:
        memory.rm("/batches-test", recursive=True)
