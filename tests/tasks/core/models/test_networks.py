import tracemalloc

import numpy as np
import pytest
import torch
from mnist_pipeline.tasks.core.dataset import pixel_counts
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.models import catalog as models
from mnist_pipeline.tasks.core.models.base import flat_pixels
from mnist_pipeline.tasks.core.models.cnn import CnnConfig
from mnist_pipeline.tasks.core.models.logreg import LogRegConfig
from mnist_pipeline.tasks.core.models.mlp import MlpConfig


@pytest.mark.parametrize("family, config", [("logreg", LogRegConfig()), ("mlp", MlpConfig()), ("cnn", CnnConfig())])
def test_input_statistics_from_pixel_counts_equal_those_of_the_float_pixels(family, config, fashion_10k):
    images = fashion_10k["train"].images
    mean, std = models.build(family, config).normalization(pixel_counts(images))
    pixels = torch.from_numpy(flat_pixels(images)).double()
    if family == "logreg":  # the pixels and their squares, per pixel
        features = torch.cat([pixels, pixels * pixels], dim=1)
        expected = features.mean(0), features.std(0) + config.std_floor
    elif family == "mlp":  # per pixel
        expected = pixels.mean(0), pixels.std(0) + config.std_floor
    else:  # one mean and std over every pixel
        expected = pixels.mean().reshape(1), pixels.std().reshape(1)
    assert mean.dtype == std.dtype == torch.float32
    torch.testing.assert_close(mean.double(), expected[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(std.double(), expected[1], rtol=0, atol=1e-6)


def test_pixel_counts_do_not_depend_on_how_the_split_is_chunked():
    images = np.random.default_rng(0).integers(0, 256, (5000, 28, 28), dtype=np.uint8)
    counts = pixel_counts(images)
    assert counts.shape == (784, 256) and (counts.sum(1) == 5000).all()
    assert (counts == pixel_counts(images[:2500]) + pixel_counts(images[2500:])).all()
    assert counts[17, images[0].reshape(-1)[17]] >= 1


@pytest.mark.parametrize("family", ["logreg", "mlp"])
def test_torch_training_makes_no_float_copy_of_the_train_split(family):
    rng = np.random.default_rng(0)
    train = Digits(rng.integers(0, 256, (30_000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 30_000).astype(np.uint8),
                   np.arange(30_000))
    validation = Digits(train.images[:200].copy(), train.labels[:200].copy(), np.arange(200))
    config = models.ModelConfigs().of(family).model_copy(update={"steps": 5, "validations": 1})
    models.build(family, config).fit(validation, validation, seed=0)  # imports done before measuring
    tracemalloc.start()
    try:
        models.build(family, config).fit(train, validation, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The split is 23.5 MB of uint8; a float copy of it alone would be 94 MB (and its squares 188 MB).
    assert peak < train.images.nbytes, f"training allocated {peak / 1e6:.0f} MB for a {train.images.nbytes / 1e6:.0f} MB split"
