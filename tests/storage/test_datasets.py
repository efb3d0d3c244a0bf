import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from mnist_pipeline.storage import datasets
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core import dataset
from mnist_pipeline.tasks.core.records import Manifest, Source

from tests.conftest import dataset_entries, make_digits

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


MEANING = {"known_dataset": None, "class_names": [str(d) for d in range(10)], "named_by": "the labels"}


def splits():
    official = {"train": make_digits(20, seed=1), "test": make_digits(5, seed=2, first_id=200)}
    return dataset.split_source(official, 0.1, 0.1, seed=0)


def publish(root, data=None, created_at="2026-01-01T00:00:00+00:00", fingerprint="f1"):
    data = data or splits()
    version = dataset.content_version(data, MEANING)
    manifest = Manifest(version=version, format_version=dataset.DATASET_FORMAT_VERSION, created_at=created_at,
                        source=Source(spec="test"), source_fingerprint=fingerprint,
                        rows={name: len(d) for name, d in data.items()})
    status = datasets.publish_dataset(root, version, data, manifest, {"ok": True}, {"images": "<html/>"})
    return version, status


def test_split_round_trips_exactly(home):
    root = StorageRoot(home)
    data = splits()
    version, status = publish(root, data)
    assert status == datasets.PUBLISHED
    for name in ("train", "validation", "test"):
        back = datasets.read_split(root, version, name)
        assert back.images.dtype == np.uint8 and back.images.shape[1:] == (28, 28)
        np.testing.assert_array_equal(back.images, data[name].images)
        np.testing.assert_array_equal(back.labels, data[name].labels)
        np.testing.assert_array_equal(back.sample_ids, data[name].sample_ids)


def test_parquet_bytes_are_reproducible(home):
    """Writing the same split twice, or writing back what was read, gives the same bytes."""
    root = StorageRoot(home)
    data = splits()["train"]
    first, second = f"{home}/a.parquet", f"{home}/b.parquet"
    datasets.write_split_file(root, first, data)
    with open(first, "rb") as handle:
        read_back = datasets.from_table(pq.read_table(io.BytesIO(handle.read())))
    datasets.write_split_file(root, second, read_back)
    assert open(first, "rb").read() == open(second, "rb").read()


def test_parquet_schema_is_what_other_tools_expect(home):
    root = StorageRoot(home)
    version, _ = publish(root)
    schema = pq.read_schema(f"{home}/datasets/{version}/train.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("sample_id", "int64"), ("label", "uint8"), ("image", "fixed_size_binary[784]")
    ]
    assert schema.metadata[b"mnist.image_shape"] == b"28,28"
    metadata = pq.read_metadata(f"{home}/datasets/{version}/train.parquet")
    assert metadata.row_group(0).column(2).compression == "ZSTD"


def test_publishing_an_existing_version_writes_nothing(home):
    root = StorageRoot(home)
    version, status = publish(root)
    before = {p: os.stat(os.path.join(home, "datasets", p)).st_mtime_ns for p in dataset_entries(home)}
    again, status_again = publish(root)
    assert (again, status, status_again) == (version, datasets.PUBLISHED, datasets.UNCHANGED)
    after = {p: os.stat(os.path.join(home, "datasets", p)).st_mtime_ns for p in dataset_entries(home)}
    assert before == after


def test_unvalidated_pixels_are_refused(home):
    data = splits()
    train = data["train"]
    data["train"] = type(train)(train.images.astype(np.int64), train.labels, train.sample_ids)
    with pytest.raises(ValueError, match="only validated uint8"):
        publish(StorageRoot(home), data)
    assert dataset_entries(home) == []


def test_versions_are_listed_resolved_and_found_by_fingerprint(home):
    root = StorageRoot(home)
    old, _ = publish(root, created_at="2026-01-01T00:00:00+00:00", fingerprint="old")
    other = dataset.split_source({"train": make_digits(20, seed=7), "test": make_digits(5, seed=8)}, 0.1, 0.1, 0)
    new, _ = publish(root, other, created_at="2026-02-01T00:00:00+00:00", fingerprint="new")
    assert [m.version for m in datasets.list_manifests(root)] == [old, new]
    assert datasets.resolve_version(root) == new
    assert datasets.resolve_version(root, old[:6]) == old
    assert datasets.find_by_fingerprint(root, "old") == old
    assert datasets.find_by_fingerprint(root, "nope") is None
    with pytest.raises(datasets.DatasetNotFound, match="matches no version"):
        datasets.resolve_version(root, "zzz")
    with pytest.raises(datasets.DatasetNotFound, match="not in"):
        datasets.read_split(root, "zzz", "train")


def test_empty_root_says_how_to_fill_it(home):
    with pytest.raises(datasets.DatasetNotFound, match="run `mnist ingest` first"):
        datasets.resolve_version(StorageRoot(home))


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {project!r})
    sys.path.insert(0, {tests!r})
    from mnist_pipeline.storage import datasets
    from mnist_pipeline.storage.root import StorageRoot
    from tests.storage.test_datasets import publish

    write = datasets.write_split_file
    def write_then_hang(root, path, digits):
        recorded = write(root, path, digits)
        if path.endswith("validation.parquet"):  # two of three splits on disk: stop here
            open({marker!r}, "w").close()
            time.sleep(120)
        return recorded
    datasets.write_split_file = write_then_hang
    publish(StorageRoot({home!r}))
    """
)


def test_a_writer_killed_mid_write_leaves_no_version(home, tmp_path):
    marker = tmp_path / "halfway"
    script = KILLED_WRITER.format(
        project=PROJECT, tests=os.path.dirname(PROJECT), marker=str(marker), home=home
    )
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert writer.poll() is None, "the writer exited before reaching the kill point"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert any(".staging" in p for p in dataset_entries(home))  # it was mid-write
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
    root = StorageRoot(home)
    assert datasets.list_manifests(root) == []
    assert [p for p in os.listdir(f"{home}/datasets") if not p.startswith(".")] == []
    # The next writer publishes normally, whatever the dead one left in staging.
    version, status = publish(root)
    assert status == datasets.PUBLISHED
    assert datasets.read_split(root, version, "test").images.shape == (50, 28, 28)


def rewrite_labels(path: str, label: int) -> None:
    """A valid Parquet file with every label replaced: the edit a checksum has to catch."""
    import pyarrow as pa

    table = pq.read_table(path)
    labels = pa.array(np.full(table.num_rows, label, np.uint8))
    pq.write_table(table.set_column(1, table.schema.field("label"), labels), path, compression="zstd")


@pytest.mark.parametrize("damage", ["truncated", "labels rewritten", "deleted"])
def test_a_damaged_split_is_a_clear_error_and_publishing_again_repairs_it(home, damage):
    root = StorageRoot(home)
    data = splits()
    version, _ = publish(root, data)
    manifest = datasets.read_manifest(root, version)
    recorded = manifest.split_files["test.parquet"]
    assert recorded.rows == len(data["test"]) and len(recorded.sha256) == 64
    path = f"{home}/datasets/{version}/test.parquet"
    if damage == "truncated":
        with open(path, "r+b") as handle:
            handle.truncate(recorded.bytes // 2)
    elif damage == "labels rewritten":
        rewrite_labels(path, 0)
    else:
        os.remove(path)

    with pytest.raises(datasets.DatasetDamaged) as caught:
        datasets.read_split(root, version, "test")
    message = str(caught.value)
    assert path in message and "--force" in message and "\n" not in message
    assert datasets.read_split(root, version, "train").labels.tolist() == data["train"].labels.tolist()
    assert [p.split(" ")[0] for p in datasets.verify_dataset(root, version)] == [path]

    again, status = publish(root, data, created_at="2026-06-01T00:00:00+00:00")
    assert (again, status) == (version, datasets.REPAIRED)
    repaired = datasets.read_manifest(root, version)
    assert repaired.created_at == manifest.created_at  # still sorts where it was created
    assert repaired.repaired.problems and datasets.verify_dataset(root, version) == []
    np.testing.assert_array_equal(datasets.read_split(root, version, "test").labels, data["test"].labels)


def test_a_version_published_without_checksums_must_be_repaired_before_use(home):
    import json

    root = StorageRoot(home)
    version, _ = publish(root)
    manifest_path = f"{home}/datasets/{version}/manifest.json"
    legacy = {k: v for k, v in json.load(open(manifest_path)).items() if k != "split_files"}
    json.dump(legacy, open(manifest_path, "w"))
    with pytest.raises(datasets.DatasetDamaged, match="has no checksum in the manifest"):
        datasets.read_split(root, version, "train")
    assert publish(root)[1] == datasets.REPAIRED
    assert datasets.verify_dataset(root, version) == []


def test_a_version_of_an_earlier_format_is_refused_with_the_way_to_repair_it(home):
    """Before format 2, the same images ingested as idx:DIR and as fashion-mnist shared one version,
    whose class names were those of the first ingest: such a version is never silently reused."""
    root = StorageRoot(home)
    current, _ = publish(root)
    old = splits()
    old["train"] = old["train"].take(np.arange(1, len(old["train"])))
    legacy = dataset.content_version(old, MEANING)
    manifest = Manifest(version=legacy, format_version=1, created_at="2026-06-01T00:00:00+00:00",
                        source=Source(spec="idx:/usr/share/datasets/fashion-mnist"),
                        class_names=tuple(str(d) for d in range(10)), rows={name: len(d) for name, d in old.items()})
    datasets.publish_dataset(root, legacy, old, manifest, {"ok": True}, {"images": "<html/>"})
    with pytest.raises(datasets.DatasetOutdated) as raised:
        datasets.read_split(root, legacy, "train")
    message = str(raised.value)
    assert f"dataset version {legacy} was published by an earlier release (format 1)" in message
    assert "class names (0, 1, 2, ...)" in message and "mnist ingest --source idx:/usr/share/datasets/fashion-mnist" in message
    # the newest version of the current format is the default, even when an outdated one is newer
    assert datasets.resolve_version(root) == current and datasets.resolve_version(root, legacy[:8]) == legacy
    # Format 2 drew its splits from row positions: refused too, in one line that says why, yet
    # readable for promotion to tell which images a model of it has seen.
    positional = manifest.model_copy(update={"version": "0" * 16, "format_version": 2,
                                             "source": Source(spec="csv:/data/train.csv")})
    datasets.publish_dataset(root, positional.version, old, positional, {"ok": True}, {"images": "<html/>"})
    with pytest.raises(datasets.DatasetOutdated) as raised:
        datasets.read_split(root, positional.version, "test")
    message = str(raised.value)
    assert "\n" not in message and "(format 2), and its splits were drawn from row positions" in message
    assert "class names" not in message and "Run `mnist ingest --source csv:/data/train.csv`" in message
    assert len(datasets.read_split(root, positional.version, "test", outdated_ok=True)) == len(old["test"])
