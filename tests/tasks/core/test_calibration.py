"""Temperatures and calibration error, against hand-made numbers."""

import numpy as np
import pytest
from scipy.special import softmax

from mnist_pipeline.tasks.core.calibration import (
    calibrate, expected_calibration_error, fit_temperature, reliability, with_temperature,
)


def test_expected_calibration_error():
    # Confidence 0.9 on 10 images, 6 right: |0.6 - 0.9| = 0.3 in one bin holding everything.
    ece, bins = reliability(np.full(10, 0.9), np.array([True] * 6 + [False] * 4))
    assert ece == pytest.approx(0.3) and len(bins) == 1 and bins[0]["count"] == 10
    perfect, _ = reliability(np.array([1.0, 1.0]), np.array([True, True]))
    assert perfect == pytest.approx(0.0)


def test_the_fitted_temperature_undoes_a_known_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(20_000, 10))
    labels = np.array([rng.choice(10, p=p) for p in softmax(logits, axis=1)])
    # Scores three times too sharp (over-confident) and three times too flat (under-confident).
    assert fit_temperature(3 * logits, labels) == pytest.approx(3, rel=0.05)
    assert fit_temperature(logits / 3, labels) == pytest.approx(1 / 3, rel=0.05)
    temperature, record = calibrate(logits / 3, labels)
    assert record["validation_ece_before"] > 0.1 > 0.02 > record["validation_ece_after"]
    np.testing.assert_allclose(with_temperature(logits / 3, temperature), softmax(logits / 3 / temperature, axis=1),
                               atol=1e-5)


def test_a_temperature_never_changes_the_predicted_labels():
    scores = np.random.default_rng(1).normal(size=(500, 10))
    for temperature in (0.1, 1.0, 7.0):
        np.testing.assert_array_equal(with_temperature(scores, temperature).argmax(1), scores.argmax(1))
    labels = scores.argmax(1)
    assert expected_calibration_error(with_temperature(scores, 0.01), labels) < 0.02  # sure, and always right
