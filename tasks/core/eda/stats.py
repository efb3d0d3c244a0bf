"""The numbers behind the EDA report."""

from dataclasses import dataclass

import numpy as np

from mnist_pipeline.tasks.core.dataset import pixel_counts
from mnist_pipeline.tasks.core.digits import NUM_CLASSES, Digits


def ink(images: np.ndarray) -> np.ndarray:
    """Sum of intensities per image, in units of full-white pixels (0..784)."""
    return images.reshape(len(images), -1).sum(axis=1, dtype=np.int64) / 255.0


def pixel_value_counts(images: list[np.ndarray]) -> np.ndarray:
    """How many pixels of all ``images`` (uint8 arrays) take each value 0..255, counted a chunk of
    rows at a time (bincount of them all at once would widen every pixel to 64 bits)."""
    return sum((pixel_counts(array).sum(axis=0) for array in images), np.zeros(256, np.int64))


def bounding_boxes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height and width (pixels) of the box around each image's non-zero pixels; 0 if blank."""
    rows = images.any(axis=2)
    cols = images.any(axis=1)

    def extent(mask: np.ndarray) -> np.ndarray:
        size = mask.shape[1]
        first = mask.argmax(axis=1)
        last = size - 1 - mask[:, ::-1].argmax(axis=1)
        return np.where(mask.any(axis=1), last - first + 1, 0)

    return extent(rows), extent(cols)


def class_mean_std(digits: Digits) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean and standard deviation images, each ``(10, 28, 28)`` float32."""
    means = np.zeros((NUM_CLASSES, *digits.images.shape[1:]), dtype=np.float32)
    stds = np.zeros_like(means)
    for label in range(NUM_CLASSES):
        members = digits.images[digits.labels == label].astype(np.float32)
        if len(members):
            means[label], stds[label] = members.mean(axis=0), members.std(axis=0)
    return means, stds


@dataclass(frozen=True)
class Drift:
    """What the drift figure draws: each class's share change and the mean image's difference."""

    previous_version: str
    share_change: np.ndarray  # per class, current minus previous share of all rows
    mean_image_difference: np.ndarray  # current minus previous mean image (28, 28)
    mean_abs_pixel_difference: float


def drift(previous_version: str, share_change: np.ndarray, current_mean: np.ndarray,
          previous_mean: np.ndarray) -> Drift:
    difference = current_mean.astype(np.float32) - previous_mean.astype(np.float32)
    return Drift(previous_version, np.asarray(share_change), difference, float(np.abs(difference).mean()))
