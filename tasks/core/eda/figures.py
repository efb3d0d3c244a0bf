"""The EDA figures. Each function returns a matplotlib Figure with titles and axis labels."""

import matplotlib

matplotlib.use("Agg")  # headless: reports are rendered on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mnist_pipeline.tasks.core.digits import NUM_CLASSES, SPLITS, Digits  # noqa: E402
from mnist_pipeline.tasks.core.eda import stats  # noqa: E402
from mnist_pipeline.tasks.core.pages import class_label  # noqa: E402

SPLIT_COLORS = {"train": "#4C72B0", "validation": "#DD8452", "test": "#55A868"}


def _label(class_names: list[str], label: int) -> str:
    return class_label(label, class_names[label])


def class_distribution(class_counts: dict[str, dict[str, int]], class_names: list[str]) -> Figure:
    """Counts (left) and shares (right) of each class per split."""
    rows = [
        {"split": split, "class": _label(class_names, int(label)), "count": count,
         "share": count / max(sum(counts.values()), 1)}
        for split, counts in class_counts.items()
        for label, count in counts.items()
    ]
    frame = pd.DataFrame(rows)
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 4.5), layout="constrained")
    for axis, value, title in ((left, "count", "Images per class"), (right, "share", "Class share per split")):
        sns.barplot(frame, x="class", y=value, hue="split", hue_order=[s for s in SPLITS if s in class_counts],
                    palette=SPLIT_COLORS, ax=axis)
        axis.set(title=title, xlabel="class", ylabel=value)
        axis.tick_params(axis="x", rotation=45)
    right.axhline(1 / NUM_CLASSES, color="black", linestyle=":", linewidth=1, label="uniform")
    right.legend(loc="lower right", fontsize=8)
    figure.suptitle("Class distribution")
    return figure


def sample_grid(digits: Digits, class_names: list[str], per_class: int = 8, seed: int = 0) -> Figure:
    """``per_class`` random images of each class, one row per class."""
    rng = np.random.default_rng(seed)
    figure, axes = plt.subplots(
        NUM_CLASSES, per_class, figsize=(per_class * 0.9 + 1.6, NUM_CLASSES * 0.95), layout="constrained"
    )
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(digits.labels == label)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for column in range(per_class):
            axis = axes[label, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(chosen):
                axis.imshow(digits.images[chosen[column]], cmap="gray_r", vmin=0, vmax=255)
            if column == 0:
                axis.set_ylabel(_label(class_names, label), rotation=0, ha="right", va="center", fontsize=9)
    figure.suptitle(f"Sample images per class (train, {per_class} each, seed {seed})")
    return figure


def mean_and_std_images(means: np.ndarray, stds: np.ndarray, class_names: list[str]) -> Figure:
    """Per-class mean image (top row) and pixel-wise standard deviation (bottom row)."""
    figure, axes = plt.subplots(2, NUM_CLASSES, figsize=(16, 4), layout="constrained")
    for label in range(NUM_CLASSES):
        for row, (images, cmap, vmax) in enumerate(((means, "viridis", 255), (stds, "magma", 128))):
            axis = axes[row, label]
            shown = axis.imshow(images[label], cmap=cmap, vmin=0, vmax=vmax)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(_label(class_names, label), fontsize=9)
        axes[0, 0].set_ylabel("mean")
        axes[1, 0].set_ylabel("std")
    figure.colorbar(shown, ax=axes[1, :], shrink=0.8, label="std of intensity")
    figure.suptitle("Mean and standard-deviation image per class (train)")
    return figure


def pixel_histogram(counts: np.ndarray) -> Figure:
    """Distribution of pixel intensities (log counts of each value 0..255, from
    :func:`~mnist_pipeline.tasks.core.eda.stats.pixel_value_counts`), with the share of zero pixels."""
    figure, axis = plt.subplots(figsize=(8, 4), layout="constrained")
    axis.bar(np.arange(256), counts, width=1.0, color="#4C72B0")
    axis.set_yscale("log")
    axis.set(title="Pixel intensity histogram (all splits)", xlabel="intensity (0-255)",
             ylabel="number of pixels (log scale)")
    zero_share = counts[0] / max(counts.sum(), 1)
    axis.text(0.98, 0.95, f"{zero_share:.1%} of pixels are 0", transform=axis.transAxes, ha="right", va="top")
    return figure


def ink_and_bounding_box(digits: Digits, class_names: list[str]) -> Figure:
    """Per class: total ink, and the height and width of the digit's bounding box."""
    heights, widths = stats.bounding_boxes(digits.images)
    frame = pd.DataFrame({
        "class": [_label(class_names, int(label)) for label in digits.labels],
        "ink (full-white pixels)": stats.ink(digits.images),
        "bounding-box height (px)": heights,
        "bounding-box width (px)": widths,
    })
    order = [_label(class_names, label) for label in range(NUM_CLASSES)]
    figure, axes = plt.subplots(1, 3, figsize=(17, 4.5), layout="constrained")
    for axis, column in zip(axes, frame.columns[1:]):
        sns.boxplot(frame, x="class", y=column, order=order, ax=axis, color="#8DA0CB", fliersize=1)
        axis.set(title=column.split(" (")[0].capitalize() + " per class", xlabel="class", ylabel=column)
        axis.tick_params(axis="x", rotation=45)
    figure.suptitle("Ink and bounding box per class (train)")
    return figure


def projection(points: np.ndarray, labels: np.ndarray, explained: np.ndarray, class_names: list[str]) -> Figure:
    """2-D PCA projection coloured by class."""
    figure, axis = plt.subplots(figsize=(8, 7), layout="constrained")
    palette = sns.color_palette("tab10", NUM_CLASSES)
    for label in range(NUM_CLASSES):
        mask = labels == label
        axis.scatter(points[mask, 0], points[mask, 1], s=3, alpha=0.5, color=palette[label],
                     label=_label(class_names, label))
    axis.set(title=f"PCA projection of {len(points):,} images",
             xlabel=f"PC 1 ({explained[0]:.1%} of variance)", ylabel=f"PC 2 ({explained[1]:.1%} of variance)")
    axis.legend(markerscale=4, fontsize=8, title="class", loc="best")
    return figure


def duplicate_examples(pairs: list[tuple[np.ndarray, str]], total_groups: int) -> Figure:
    """A few duplicated images, each captioned with where its copies are."""
    shown = max(len(pairs), 1)
    figure, axes = plt.subplots(1, shown, figsize=(max(2.2 * shown + 1, 6), 2.8), layout="constrained", squeeze=False)
    for axis, (image, caption) in zip(axes[0], pairs):
        axis.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        axis.set_title(caption, fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
    if not pairs:
        axes[0, 0].text(0.5, 0.5, "no exact duplicates", ha="center", va="center")
        axes[0, 0].set_axis_off()
    figure.suptitle(f"Exact duplicate images: {total_groups} group(s); first {len(pairs)} shown")
    return figure


def drift_figure(drift: stats.Drift, class_names: list[str]) -> Figure:
    """Class-share change and mean-image difference against the previous version."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    names = [_label(class_names, label) for label in range(NUM_CLASSES)]
    left.bar(names, drift.share_change * 100, color=["#C44E52" if v < 0 else "#55A868" for v in drift.share_change])
    left.axhline(0, color="black", linewidth=0.8)
    left.set(title="Class share change (percentage points)", xlabel="class", ylabel="current - previous (pp)")
    left.tick_params(axis="x", rotation=45)
    limit = max(float(np.abs(drift.mean_image_difference).max()), 1e-6)
    shown = right.imshow(drift.mean_image_difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    right.set(title="Mean image difference (current - previous)", xlabel="pixel column", ylabel="pixel row")
    figure.colorbar(shown, ax=right, label="intensity difference")
    figure.suptitle(f"Drift against previous version {drift.previous_version}")
    return figure
