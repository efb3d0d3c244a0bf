"""The in-memory form of labelled digit images that every stage passes around."""

from dataclasses import dataclass

import numpy as np

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
SPLITS = ("train", "validation", "test")
# The class names of a digit dataset (MNIST and its kin); other datasets name their classes.
DIGIT_NAMES = tuple(str(d) for d in range(NUM_CLASSES))


@dataclass(frozen=True)
class Digits:
    """Images with their labels and stable ids.

    ``images`` is ``(n, height, width)``: ``uint8`` once validated, any numeric dtype before
    (a CSV may hold -1, 256, NaN or 3.5, which validation reports). ``sample_ids`` are the
    rows' positions in the source, so they survive re-splitting and re-ingesting.
    """

    images: np.ndarray
    labels: np.ndarray
    sample_ids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        assert self.images.ndim == 3, self.images.shape
        assert len(self.labels) == n and len(self.sample_ids) == n

    def __len__(self) -> int:
        return len(self.images)

    def take(self, indices: np.ndarray) -> "Digits":
        return Digits(self.images[indices], self.labels[indices], self.sample_ids[indices])

    def class_counts(self) -> dict[int, int]:
        """Rows per class, for every class 0..9 (zero where absent)."""
        valid = self.labels[np.isin(self.labels, np.arange(NUM_CLASSES))].astype(np.int64)
        counts = np.bincount(valid, minlength=NUM_CLASSES)
        return {label: int(count) for label, count in enumerate(counts)}


def concat(parts: list[Digits]) -> Digits:
    return Digits(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.sample_ids for p in parts]),
    )


def rows_of(parts: list[Digits], rows: np.ndarray) -> Digits:
    """Rows ``rows`` (in that order) of ``parts`` taken as one sequence, without concatenating
    the parts (that would copy every image)."""
    starts = np.cumsum([0, *(len(p) for p in parts)])
    owner = np.searchsorted(starts, rows, side="right") - 1
    grouped = concat([part.take(rows[owner == i] - starts[i]) for i, part in enumerate(parts)])
    return grouped.take(np.argsort(np.argsort(owner, kind="stable"), kind="stable"))
