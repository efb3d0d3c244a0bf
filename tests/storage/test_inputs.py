"""Files to score: the format is found in storage, dataset images come back as they are."""

import gzip
import io

import numpy as np
import pytest
from mnist_pipeline.storage import datasets
from mnist_pipeline.storage.inputs import read_images_to_score
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.errors import InputError
from mnist_pipeline.tasks.core.idx import encode_idx
from PIL import Image

from tests.conftest import make_digits


def test_parquet_and_idx_files_are_collections_of_dataset_images(tmp_path):
    digits = make_digits(2)
    datasets.write_split_file(StorageRoot(str(tmp_path)), str(tmp_path / "some.parquet"), digits)
    (tmp_path / "images.gz").write_bytes(gzip.compress(encode_idx(digits.images)))
    from_parquet = read_images_to_score(str(tmp_path / "some.parquet"))
    from_idx = read_images_to_score(str(tmp_path / "images.gz"))
    for found in (from_parquet, from_idx):
        np.testing.assert_array_equal(found.images, digits.images)
        assert found.picture is None and len(found.names) == len(digits)
    assert from_idx.names[0] == "images.gz[0]"
    assert from_parquet.names[0] == f"some.parquet[{digits.sample_ids[0]}]"


def test_any_other_file_is_one_picture_returned_as_bytes(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((40, 30), np.uint8)).save(buffer, format="PNG")
    for name in ("digit.png", "digit-without-suffix"):
        (tmp_path / name).write_bytes(buffer.getvalue())
        found = read_images_to_score(str(tmp_path / name))
        assert found.names == [name] and found.images is None and found.picture == buffer.getvalue()


def test_an_idx_file_of_other_sizes_is_refused(tmp_path):
    (tmp_path / "big-idx").write_bytes(encode_idx(np.zeros((2, 32, 32), np.uint8)))
    with pytest.raises(InputError, match="holds 32x32 images; 28x28 are expected"):
        read_images_to_score(str(tmp_path / "big-idx"))
