"""Each figure function on small synthetic data: titled, labelled, and showing the data."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mnist_pipeline.tasks.core.dataset import split_source
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core import dataset
from mnist_pipeline.tasks.core.eda import figures, stats
from tests.conftest import make_digits

NAMES = [str(d) for d in range(10)]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def titled(figure):
    single_titled = len(figure.axes) == 1 and figure.axes[0].get_title()
    assert single_titled or (figure._suptitle is not None and figure._suptitle.get_text())
    for axis in figure.axes:
        # Plots need a title or axis label; cells of an image grid are captioned by the grid.
        if axis.has_data() and not axis.images and axis.get_label() != "<colorbar>":
            assert axis.get_title() or axis.get_ylabel(), axis
    return figure


def test_class_distribution_bars_hold_the_counts():
    counts = {"train": {str(c): 10 + c for c in range(10)}, "test": {str(c): 5 for c in range(10)}}
    figure = titled(figures.class_distribution(counts, NAMES))
    count_axis = figure.axes[0]
    heights = sorted(round(p.get_height()) for p in count_axis.patches if p.get_height() > 0)
    assert heights == sorted([10 + c for c in range(10)] + [5] * 10)
    assert count_axis.get_xlabel() == "class" and count_axis.get_ylabel() == "count"


def test_sample_grid_shows_per_class_images_with_labels():
    digits = make_digits(5)
    figure = titled(figures.sample_grid(digits, NAMES, per_class=4))
    assert len(figure.axes) == 40
    shown = [axis for axis in figure.axes if axis.images]
    assert len(shown) == 40
    assert [figure.axes[4 * c].get_ylabel() for c in range(10)] == NAMES
    first_row_images = {tuple(a.images[0].get_array().ravel()[:50]) for a in figure.axes[:4]}
    assert len(first_row_images) == 4  # four different images


def test_mean_and_std_images_match_numpy():
    digits = make_digits(6)
    means, stds = stats.class_mean_std(digits)
    np.testing.assert_allclose(means[3], digits.images[digits.labels == 3].mean(axis=0), rtol=1e-5)
    figure = titled(figures.mean_and_std_images(means, stds, NAMES))
    np.testing.assert_allclose(figure.axes[3].images[0].get_array(), means[3])


def test_pixel_histogram_counts_every_pixel():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[0, 0, :10] = 255
    figure = titled(figures.pixel_histogram(stats.pixel_value_counts([images])))
    bars = figure.axes[0].patches
    assert len(bars) == 256 and bars[255].get_height() == 10 and bars[0].get_height() == 2 * 784 - 10
    assert figure.axes[0].get_xlabel().startswith("intensity")


def test_ink_and_bounding_boxes():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[0, 5:9, 10:20] = 255
    heights, widths = stats.bounding_boxes(images)
    assert heights.tolist() == [4, 0] and widths.tolist() == [10, 0]
    assert stats.ink(images).tolist() == [40.0, 0.0]
    figure = titled(figures.ink_and_bounding_box(make_digits(4), NAMES))
    assert [a.get_ylabel() for a in figure.axes] == [
        "ink (full-white pixels)", "bounding-box height (px)", "bounding-box width (px)"
    ]


def test_projection_plots_every_point_by_class():
    points = np.random.default_rng(0).normal(size=(100, 2))
    labels = np.repeat(np.arange(10), 10)
    figure = figures.projection(points, labels, np.array([0.3, 0.1]), NAMES)
    axis = figure.axes[0]
    assert sum(len(c.get_offsets()) for c in axis.collections) == 100
    assert "30.0%" in axis.get_xlabel() and axis.get_title().startswith("PCA")
    assert len(axis.get_legend().get_texts()) == 10


def test_duplicate_groups_within_and_across_splits():
    official = {"train": make_digits(10, seed=1), "test": make_digits(3, seed=2, first_id=100)}
    splits = split_source(official, 0.1, 0.1, 0)
    test = splits["test"]
    images = test.images.copy()
    images[0] = splits["train"].images[4]
    images[1] = images[2]
    splits["test"] = Digits(images, test.labels, test.sample_ids)
    groups = dataset.duplicate_groups(splits)
    assert sorted(sorted(g.members) for g in groups) == sorted(
        [sorted([("train", 4), ("test", 0)]), sorted([("test", 1), ("test", 2)])]
    )
    figure = titled(figures.duplicate_examples([(images[0], "train#4, test#0")], len(groups)))
    assert "2 group(s)" in figure._suptitle.get_text()


def test_no_duplicates_says_so():
    figure = figures.duplicate_examples([], 0)
    assert "no exact duplicates" in [t.get_text() for t in figure.axes[0].texts]


def test_drift_figure_and_numbers():
    change = np.r_[0.1 - 20 / 110, np.full(9, (0.9 - 90 / 110) / 9)]
    mean_now, mean_before = np.full((28, 28), 10.0), np.full((28, 28), 8.0)
    drift = stats.drift("abc", change, mean_now, mean_before)
    assert drift.share_change[0] == pytest.approx(0.1 - 20 / 110)
    assert drift.mean_abs_pixel_difference == pytest.approx(2.0)
    figure = titled(figures.drift_figure(drift, NAMES))
    assert "abc" in figure._suptitle.get_text()
    assert len(figure.axes[0].patches) == 10
