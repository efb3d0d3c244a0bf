import re

import numpy as np
import pytest

from mnist_pipeline.tasks.core import dataset, validation
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.errors import ValidationFailed
from tests.conftest import make_digits

BOUNDS = validation.Bounds(
    expected_source_rows={"train": 500, "test": 100},
    min_rows_per_split=10,
    min_class_share=0.05,
    max_class_share=0.2,
    max_test_duplicate_share=0.01,
)


def run(splits, bounds=BOUNDS, source_rows=None):
    source_rows = source_rows or {"train": 500, "test": 100}
    duplicates = dataset.count_duplicates(splits)
    report = validation.validate(
        dataset.image_profile(splits),
        dataset.split_summary(splits, source_rows, duplicates),
        bounds,
    )
    return report


def good_splits():
    official = {"train": make_digits(50, seed=1), "test": make_digits(10, seed=2, first_id=500)}
    return dataset.split_source(official, 0.1, 0.1, seed=0)


def with_test(splits, images=None, labels=None):
    test = splits["test"]
    splits = dict(splits)
    splits["test"] = Digits(
        test.images if images is None else images,
        test.labels if labels is None else labels,
        test.sample_ids,
    )
    return splits


def failure_text(report):
    with pytest.raises(ValidationFailed) as caught:
        validation.check(report, "test-source")
    return str(caught.value)


def test_clean_data_passes_and_renders_data_docs():
    report = run(good_splits())
    assert report.success, report.failures()
    validation.check(report, "src")  # does not raise
    statistics = report.results["images"]["statistics"]
    assert statistics["evaluated_expectations"] == statistics["successful_expectations"] >= 10
    assert "<html" in report.data_docs["images"].lower()
    assert "values must belong to this set: 0 1 2 3 4 5 6 7 8 9" in " ".join(
        re.sub(r"<[^>]+>", " ", report.data_docs["images"]).split()
    )


def test_label_outside_0_9_is_named_with_its_value_and_row():
    splits = good_splits()
    labels = splits["test"].labels.astype(np.int64)
    labels[3] = 12
    report = run(with_test(splits, labels=labels))
    text = failure_text(report)
    assert "column 'label': expect_column_values_to_be_in_set" in text
    assert "e.g. [12]" in text
    assert f"'sample_id': {splits['test'].sample_ids[3]}" in text
    assert "nothing was published" in text


def test_pixel_out_of_range_fails():
    splits = good_splits()
    images = splits["test"].images.astype(np.int64)
    images[0, 5, 5] = 256
    images[1, 5, 5] = -1
    text = failure_text(run(with_test(splits, images=images)))
    assert "column 'pixel_max'" in text and "e.g. [256]" in text
    assert "column 'pixel_min'" in text and "e.g. [-1]" in text


def test_nan_fails_as_null():
    splits = good_splits()
    images = splits["test"].images.astype(np.float64)
    images[2, 0, 0] = np.nan
    text = failure_text(run(with_test(splits, images=images)))
    assert "column 'n_null'" in text


def test_images_that_are_not_28x28_fail():
    splits = good_splits()
    images = np.zeros((len(splits["test"]), 32, 32), dtype=np.uint8)
    images[:, :, 0] = np.arange(len(images))[:, None]  # distinct images
    text = failure_text(run(with_test(splits, images=images)))
    assert "column 'height'" in text and "e.g. [32" in text
    assert "column 'width'" in text


def test_wrong_official_row_count_fails():
    text = failure_text(run(good_splits(), source_rows={"train": 499, "test": 100}))
    assert "column 'source_rows_train'" in text and "499" in text


def test_test_images_copied_from_train_fail_above_the_threshold():
    splits = good_splits()
    images = splits["test"].images.copy()
    images[:5] = splits["train"].images[:5]
    report = run(with_test(splits, images=images))
    text = failure_text(report)
    assert "column 'test_duplicate_share'" in text and "0.05" in text


def test_missing_class_and_skewed_shares_fail():
    splits = good_splits()
    labels = splits["test"].labels.copy()
    labels[labels >= 8] = 0  # class 0 takes 30%, classes 8 and 9 vanish
    text = failure_text(run(with_test(splits, labels=labels)))
    assert "classes_present_test" in text
    assert "class_share_max_test" in text and "class_share_min_test" in text
