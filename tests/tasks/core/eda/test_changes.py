"""What a version changed against the previous one: images added by pixels, class shares, drift."""

import json

import numpy as np
import pytest

from mnist_pipeline.tasks.core.dataset import split_source
from mnist_pipeline.tasks.core.digits import DIGIT_NAMES, SPLITS, Digits
from mnist_pipeline.tasks.core.eda.changes import DataChanges, data_changes
from mnist_pipeline.tasks.core.tables import changes_table
from tests.conftest import make_digits, mnist_sample_digits

NAMES = list(DIGIT_NAMES)


def versions(digits: Digits, before: int):
    """The splits of a version of the first ``before`` images, and of one of them all."""
    old = split_source({"train": digits.take(np.arange(before))}, 0.1, 1 / 7, seed=0)
    new = split_source({"train": digits}, 0.1, 1 / 7, seed=0)
    return [old[s] for s in SPLITS], [new[s] for s in SPLITS]


def test_a_grown_version_adds_exactly_the_new_images_and_they_look_like_the_old():
    digits = mnist_sample_digits()
    digits = digits.take(np.random.default_rng(0).permutation(len(digits)))
    old, new = versions(digits, 4000)
    changes = data_changes("v1", old, new, NAMES)
    assert changes.rows_added == 1000 and changes.removed == 0
    assert changes.added == tuple(np.bincount(digits.labels[4000:], minlength=10))
    assert changes.chi2_p > 0.05  # the same class shares, as far as 1,000 images can tell
    assert 0.4 < changes.domain_auc < 0.6 and changes.domain_images == 1000  # indistinguishable
    assert changes.hold(0.7) is None and changes.hold(None) is None
    table = changes_table(changes).records()
    assert [row["added"] for row in table] == [f"{n:,}" for n in changes.added]
    assert DataChanges.from_json(json.loads(json.dumps(changes.as_json()))) == changes
    assert "1,000 image(s) added and 0 removed since dataset v1" in changes.describe()


def test_new_images_of_another_kind_are_told_apart_and_can_hold_a_promotion():
    digits = make_digits(100)  # bright bars on noise...
    drifted = Digits(255 - make_digits(10, seed=9).images, make_digits(10, seed=9).labels,
                     np.arange(1000, 1100))  # ...and inverted ones
    changes = data_changes("v1", [digits], [digits, drifted], NAMES)
    assert changes.rows_added == 100 and changes.domain_auc > 0.95
    hold = changes.hold(0.8)
    assert hold.startswith("the 100 image(s) added since dataset v1 are distinguishable from the earlier ones "
                           "(domain classifier ROC AUC")


def test_skewed_new_images_show_in_the_class_shares_and_few_tell_nothing_about_drift():
    digits = make_digits(100)
    zeros = make_digits(30, seed=5)
    zeros = zeros.take(np.flatnonzero(zeros.labels == 0))  # 30 new images, all of class 0
    changes = data_changes("v1", [digits], [digits, Digits(zeros.images, zeros.labels, zeros.sample_ids + 1000)], NAMES)
    assert changes.added == (30,) + (0,) * 9
    assert changes.chi2_p < 1e-6
    assert changes.share_change[0] == pytest.approx(130 / 1030 - 0.1)
    assert changes.domain_auc is None and changes.hold(0.5) is None  # under 50 added images
    assert "too few added images" in changes.describe()
    nothing = data_changes("v1", [digits], [digits.take(np.arange(990))], NAMES)
    assert nothing.rows_added == 0 and nothing.removed == 10 and nothing.chi2_p is None
