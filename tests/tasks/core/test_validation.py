import re
from dataclasses import replace

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
        {"images": dataset.image_profile(splits)},
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
    official = {"train": make_digits(50, seed=1), "test": make_digits(100, seed=2, first_id=500)}
    splits = dataset.split_source(official, 0.1, 0.1, seed=0)
    labels = splits["test"].labels.copy()
    labels[labels >= 8] = 0  # class 0 takes 30% of the 1,000 test images, classes 8 and 9 vanish
    text = failure_text(run(with_test(splits, labels=labels), source_rows={"train": 500, "test": 1000},
                            bounds=replace(BOUNDS, expected_source_rows={})))
    assert "classes_present_test" in text
    assert "class_share_max_test" in text and "class_share_min_test" in text


def test_class_share_bounds_allow_a_small_splits_sampling_noise_not_a_skewed_dataset():
    # A split of 100 images drawn from balanced data may hold 17 of one class by chance...
    lowest, highest = validation.share_bounds(BOUNDS, rows=100)
    assert lowest == 0 and 0.35 < highest < 0.37
    # ...while 60,000 images keep close to the bounds, and the whole dataset must keep to them exactly.
    assert validation.share_bounds(BOUNDS, rows=60_000) == pytest.approx((0.0464, 0.2065), abs=1e-4)
    assert validation.share_bounds(BOUNDS) == (0.05, 0.2)
    splits = good_splits()
    skewed = {name: Digits(d.images, np.where(d.labels == 9, 0, d.labels), d.sample_ids) for name, d in splits.items()}
    text = failure_text(run(skewed))  # class 0 holds a fifth of everything, class 9 nothing
    assert "class_share_min_all" in text and "classes_present_train" in text


def test_a_batch_that_fails_is_named_in_one_line_even_when_it_is_the_only_one():
    from mnist_pipeline.tasks.core.batches import Part

    digits = make_digits(100)
    labels = digits.labels.astype(np.int64)
    labels[7] = 11
    splits = dataset.split_source({"train": Digits(digits.images, labels, digits.sample_ids)}, 0.1, 0.1, seed=0)
    part = Part("batch 2026-12-01.csv", 0, 1000, batch=True)
    checked = validation.check_splits(splits, {"train": 1000}, replace(BOUNDS, expected_source_rows={}), (part,))
    message = failure_text(checked.report)
    assert "\n" not in message and message.startswith("batch 2026-12-01.csv failed validation (column 'label'")
    assert "e.g. [11]" in message and "its rows 1 to 1,000 are sample ids 0 to 999" in message
    assert [row["images checked"] for row in validation.parts_table(checked).records()] == ["FAILED"]
    # a folder whose batches pass is checked in one run of the image suite, whatever their number
    good = dataset.split_source({"train": digits}, 0.1, 0.1, seed=0)
    parts = (Part("batch a.csv", 0, 500, batch=True), Part("batch b.csv", 500, 500, batch=True))
    passed = validation.check_splits(good, {"train": 1000}, replace(BOUNDS, expected_source_rows={}), parts)
    assert passed.report.success and set(passed.report.results) == {"images", "summary"}
    assert [row["images checked"] for row in validation.parts_table(passed).records()] == ["passed", "passed"]
