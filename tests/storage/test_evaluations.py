"""Prediction files: images read from Parquet a batch at a time, predictions written atomically."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.storage.evaluations import iter_images_parquet, prediction_writer, read_images_parquet
from mnist_pipeline.tasks.core.errors import InputError
from tests.conftest import make_digits


def test_a_parquet_file_is_read_in_batches_that_add_up_to_the_whole_file(tmp_path):
    digits = make_digits(5)
    lists = [image.reshape(-1).tolist() for image in digits.images]  # the other accepted form, without ids
    pq.write_table(pa.table({"image": lists}), tmp_path / "lists.parquet", row_group_size=10)
    batches = list(iter_images_parquet(str(tmp_path / "lists.parquet"), batch_rows=7))
    assert [len(b) for b in batches][:-1] == [7] * (len(batches) - 1) and 1 <= len(batches[-1]) <= 7
    np.testing.assert_array_equal(np.concatenate([b.images for b in batches]), digits.images)
    # Rows without sample ids are numbered through the whole file, not per batch.
    assert np.concatenate([b.sample_ids for b in batches]).tolist() == list(range(len(digits)))
    whole = read_images_parquet(str(tmp_path / "lists.parquet"))
    np.testing.assert_array_equal(whole.images, digits.images)


def test_an_empty_parquet_file_is_one_empty_batch(tmp_path):
    pq.write_table(pa.table({"image": pa.array([], pa.binary(784))}), tmp_path / "empty.parquet")
    (batch,) = iter_images_parquet(str(tmp_path / "empty.parquet"))
    assert batch.images.shape == (0, 28, 28) and len(batch.sample_ids) == 0


def test_a_bad_row_is_named_by_its_place_in_the_file_not_in_its_batch(tmp_path):
    digits = make_digits(3)
    images = [None if i == 23 else image.tobytes() for i, image in enumerate(digits.images)]
    pq.write_table(pa.table({"image": pa.array(images, pa.binary(784))}), tmp_path / "holes.parquet")
    with pytest.raises(InputError, match=r"row 23 \(sample_id 23\) has no image"):
        list(iter_images_parquet(str(tmp_path / "holes.parquet"), batch_rows=10))
    (tmp_path / "not.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        list(iter_images_parquet(str(tmp_path / "not.parquet")))
    with pytest.raises(InputError, match="does not exist"):
        list(iter_images_parquet(str(tmp_path / "missing.parquet")))


def test_a_null_sample_id_is_refused_naming_its_row(tmp_path):
    digits = make_digits(2)
    ids = pa.array([None if i == 12 else i for i in range(len(digits))], pa.int64())
    pq.write_table(pa.table({"sample_id": ids, "image": pa.array([i.tobytes() for i in digits.images], pa.binary(784))}),
                   tmp_path / "ids.parquet")
    with pytest.raises(InputError, match=r"row 12 has no sample_id \(null\)"):
        list(iter_images_parquet(str(tmp_path / "ids.parquet"), batch_rows=5))


def test_predictions_appear_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out.parquet"
    columns = {"sample_id": np.arange(3), "predicted": np.array([1, 2, 3], np.uint8)}
    probabilities = np.full((3, 10), 0.1, np.float32)
    images = make_digits(1).images[:3]
    with prediction_writer(str(out)) as write:
        write(columns, probabilities, images)
        write({k: v + 3 if k == "sample_id" else v for k, v in columns.items()}, probabilities, images)
        assert not out.exists()  # only the temporary file, until the block ends
    table = pq.read_table(out)
    assert table.column("sample_id").to_pylist() == list(range(6)) and table.column("probabilities").type.list_size == 10
    # the images scored, as this pipeline stores them: a corrected file is a batch of labelled data
    assert table.schema.field("image").type == pa.binary(784)
    assert table.column("image").to_pylist()[4] == images[1].tobytes()
    with pytest.raises(RuntimeError, match="scoring failed"):
        with prediction_writer(str(out)) as write:
            write({k: v + 6 if k == "sample_id" else v for k, v in columns.items()}, probabilities, images)
            raise RuntimeError("scoring failed")
    assert pq.read_table(out).column("sample_id").to_pylist() == list(range(6))  # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]
    with pytest.raises(ValueError, match="no predictions were written"):
        with prediction_writer(str(tmp_path / "none.parquet")):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]
