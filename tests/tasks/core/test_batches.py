"""Batch folders: which files are batches, each decoded on its own, assembled into one source."""

import gzip
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.tasks.core import batches
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.errors import SourceError
from mnist_pipeline.tasks.core.idx import encode_idx
from mnist_pipeline.tasks.core.parquet_digits import decode_parquet_digits
from tests.conftest import kaggle_csv, make_digits


def parquet_bytes(columns: dict) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def as_parquet(digits: Digits, **extra) -> bytes:
    images = pa.array([image.tobytes() for image in digits.images], pa.binary(784))
    return parquet_bytes({"label": digits.labels.astype(np.int64), "image": images, **extra})


def test_batches_are_found_by_their_names_in_name_order():
    names = ["2026-12-03.parquet", "classes.txt", ".upload.csv.part", "2026-12-01.csv",
             "2026-12-02-labels-idx1-ubyte.gz", "2026-12-02-images-idx3-ubyte.gz", "2026-11-30.CSV.gz"]
    found = batches.find_batches(names, "/data/new")
    assert [(b.name, b.kind) for b in found] == [("2026-11-30.CSV.gz", "csv"), ("2026-12-01.csv", "csv"),
                                                 ("2026-12-02", "idx"), ("2026-12-03.parquet", "parquet")]
    assert found[2].roles() == {"batch 2026-12-02 images": "2026-12-02-images-idx3-ubyte.gz",
                                "batch 2026-12-02 labels": "2026-12-02-labels-idx1-ubyte.gz"}


@pytest.mark.parametrize("names, named", [
    (["a.csv", "notes.xlsx"], "notes.xlsx"),
    (["old/", "a.csv"], "old/"),
    (["b-images-idx3-ubyte"], "b-images-idx3-ubyte (no labels file b-labels-idx1-ubyte[.gz] beside it)"),
    (["b-images-idx1-ubyte", "b-labels-idx1-ubyte"], "b-images-idx1-ubyte (images are idx3, labels idx1)"),
])
def test_a_file_that_is_no_batch_is_named_never_skipped(names, named):
    with pytest.raises(SourceError, match="the batch folder /data/new holds ") as caught:
        batches.find_batches(names, "/data/new")
    assert named in str(caught.value) and "which is not a batch" in str(caught.value)


def test_each_kind_of_batch_decodes_to_the_same_digits():
    digits = make_digits(3)
    files = {
        "batch a.csv.gz csv": gzip.compress(kaggle_csv(digits).encode()),
        "batch b images": encode_idx(digits.images), "batch b labels": encode_idx(digits.labels),
        "batch c.parquet parquet": as_parquet(digits, sample_id=np.arange(30) + 100, predicted=np.zeros(30, np.uint8)),
    }
    found = batches.find_batches(["a.csv.gz", "b-images-idx3-ubyte", "b-labels-idx1-ubyte", "c.parquet"], "/x")
    decoded = batches.decode_batches(found, files, max_images=100)
    assert [name for name, _ in decoded] == ["a.csv.gz", "b", "c.parquet"]
    for _, batch in decoded:
        np.testing.assert_array_equal(batch.images, digits.images)
        np.testing.assert_array_equal(batch.labels, digits.labels)
        np.testing.assert_array_equal(batch.sample_ids, np.arange(30))


def test_every_batch_that_cannot_be_decoded_is_named_in_one_line():
    digits = make_digits(1)
    files = {"batch a.csv csv": kaggle_csv(digits).encode()[:-300], "batch b.csv csv": b"label,pixel0\n1,2\n",
             "batch c.parquet parquet": b"not parquet", "batch d.csv csv": kaggle_csv(digits).encode()}
    found = batches.find_batches(["a.csv", "b.csv", "c.parquet", "d.csv"], "/x")
    with pytest.raises(SourceError) as caught:
        batches.decode_batches(found, files, max_images=100)
    message = str(caught.value)
    assert "\n" not in message and "batch d.csv" not in message
    assert "batch b.csv: missing column(s) pixel1" in message and "batch c.parquet is not a readable Parquet" in message
    assert "nothing was published: fix or remove those batches" in message
    too_many = {"batch d.csv csv": files["batch d.csv csv"]}
    with pytest.raises(SourceError, match="batch d.csv: the batch split holds 10 images, more than max_images_per_split = 5"):
        batches.decode_batches([found[3]], too_many, max_images=5)


def test_parquet_batches_need_labels_on_every_row_and_784_pixels():
    digits = make_digits(1)
    pixels = [image.reshape(-1).tolist() for image in digits.images]
    as_lists = decode_parquet_digits(parquet_bytes({"label": digits.labels.astype(np.int64), "image": pixels}), "l")
    np.testing.assert_array_equal(as_lists.images, digits.images)
    unlabelled = parquet_bytes({"label": pa.array([1, None] + [2] * 8), "image": pixels})
    with pytest.raises(SourceError, match=r"row 1 has no label \(null\); every row of a batch needs its label"):
        decode_parquet_digits(unlabelled, "batch x.parquet")
    with pytest.raises(SourceError, match=r"has no `label` column \(columns: image\)"):
        decode_parquet_digits(parquet_bytes({"image": pixels}), "batch x.parquet")
    short = parquet_bytes({"label": np.arange(10), "image": pa.array([b"\x00" * 783] * 10, pa.binary())})
    with pytest.raises(SourceError, match="row 0 of `image` holds 783 bytes, not 784"):
        decode_parquet_digits(short, "batch x.parquet")
    text = parquet_bytes({"label": ["one"] * 10, "image": pixels})
    with pytest.raises(SourceError, match="`label` is string, not a number"):
        decode_parquet_digits(text, "batch x.parquet")


def test_batches_are_assembled_on_a_base_with_ids_that_continue_and_copies_left_out():
    base = {"train": make_digits(5, seed=1), "test": make_digits(2, seed=2, first_id=50)}
    first = make_digits(2, seed=3)
    # the second batch repeats two images (same labels): one of the base's, one of the first batch's
    images, labels = make_digits(3, seed=4).images.copy(), make_digits(3, seed=4).labels.copy()
    images[0], labels[0] = base["test"].images[5], base["test"].labels[5]
    images[1], labels[1] = first.images[7], first.labels[7]
    second = Digits(images, labels, np.arange(30))
    assembled = batches.assemble(base, "mnist", [("a.csv", first), ("b.parquet", second)])
    assert [(p.name, p.first_id, p.rows, p.duplicates, p.kept) for p in assembled.parts] == [
        ("mnist", 0, 70, 0, 70), ("batch a.csv", 70, 20, 0, 20), ("batch b.parquet", 90, 30, 2, 28)]
    added = assembled.official["added"]
    assert list(added.sample_ids) == list(range(70, 90)) + list(range(92, 120))  # ids of the left-out rows stay unused
    assert assembled.official["train"] is base["train"] and assembled.official["test"] is base["test"]
    alone = batches.assemble(None, "batches:/x", [("a.csv", first)])
    assert set(alone.official) == {"train"} and list(alone.official["train"].sample_ids) == list(range(20))


def test_the_same_image_with_two_labels_names_both_batches():
    first = make_digits(2, seed=3)
    images, labels = make_digits(1, seed=4).images.copy(), make_digits(1, seed=4).labels.copy()
    images[3] = first.images[12]
    labels[3] = (first.labels[12] + 1) % 10
    with pytest.raises(SourceError) as caught:
        batches.assemble(None, "batches:/x", [("a.csv", first), ("b.csv", Digits(images, labels, np.arange(10)))])
    assert str(caught.value) == (
        f"the same image has label {first.labels[12]} in batch a.csv (row 13) and label {labels[3]} in batch b.csv "
        "(row 4); correct the wrong one (or remove it) and run again")


def test_the_same_image_twice_in_one_batch_with_two_labels_is_an_error_too():
    digits = make_digits(2, seed=3)
    images, labels = digits.images.copy(), digits.labels.copy()
    images[9], labels[9] = images[2], (labels[2] + 1) % 10
    with pytest.raises(SourceError, match=r"in batch a.csv \(row 3\) and label .* in batch a.csv \(row 10\)"):
        batches.assemble(None, "batches:/x", [("a.csv", Digits(images, labels, np.arange(20)))])
    images[9], labels[9] = images[2], labels[2]  # a plain duplicate: kept, for validation to count
    assert batches.assemble(None, "x", [("a.csv", Digits(images, labels, np.arange(20)))]).parts[0].duplicates == 0


def test_a_batch_of_valid_pixels_is_uint8_and_one_with_bad_values_is_never_a_copy():
    digits = make_digits(2)
    files = {"batch a.csv csv": kaggle_csv(digits).encode()}
    [(_, decoded)] = batches.decode_batches(batches.find_batches(["a.csv"], "/x"), files, 100)
    assert decoded.images.dtype == np.uint8  # a CSV's int64: one byte a pixel once it is known to be pixels
    bad = digits.images.astype(np.int64)
    bad[4, 0, 0] = 256  # not a pixel: kept as it is, for validation to name...
    found = batches.decode_batches(batches.find_batches(["b.csv"], "/x"),
                                   {"batch b.csv csv": kaggle_csv(Digits(bad, digits.labels, digits.sample_ids)).encode()}, 100)
    assert found[0][1].images.dtype == np.int64 and found[0][1].images[4, 0, 0] == 256
    # ...and never left out as a copy of the image it equals once clipped
    clipped = digits.images.copy()
    clipped[4, 0, 0] = 255
    assembled = batches.assemble(None, "x", [("a.csv", Digits(clipped, digits.labels, np.arange(20))), found[0]])
    assert assembled.parts[1].duplicates == 0 and len(assembled.official["train"]) == 40


def test_a_file_both_plain_and_gzipped_is_named():
    with pytest.raises(SourceError, match=r"b-images-idx3-ubyte.gz \(beside b-images-idx3-ubyte: keep one of them\)"):
        batches.find_batches(["b-images-idx3-ubyte", "b-images-idx3-ubyte.gz", "b-labels-idx1-ubyte"], "/x")
