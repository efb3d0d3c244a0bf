import numpy as np
import pytest

from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.calibration import log_probabilities
from mnist_pipeline.tasks.core.evaluation import (
    confusion_matrix, evaluate, html_report, markdown, markdown_with_figures, per_class_scores,
)
from mnist_pipeline.tasks.core.models.base import Classifier

NAMES = [str(i) for i in range(10)]


class FixedModel(Classifier):
    """Answers with the probabilities it was given (one row per image, in order)."""

    family = "fixed"

    def __init__(self, proba):
        super().__init__(None)
        self.proba = proba

    def fit(self, *args, **kwargs):
        raise NotImplementedError

    def log_scores(self, images):
        return log_probabilities(self.proba[: len(images)])

    def weights(self):
        return {}

    @classmethod
    def from_weights(cls, config, files, meta):
        raise NotImplementedError


def test_confusion_and_per_class_scores_are_exact():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    confusion = confusion_matrix(labels, predicted)
    assert confusion[0, 0] == 2 and confusion[0, 1] == 1 and confusion[1, 2] == 1 and confusion.sum() == 6
    scores = per_class_scores(confusion, NAMES)
    assert scores[0] == {"label": 0, "name": "0", "precision": 1.0, "recall": pytest.approx(0.66667), "f1": 0.8, "support": 3}
    assert scores[1]["precision"] == 0.5 and scores[1]["recall"] == 0.5
    assert scores[9] == {"label": 9, "name": "9", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_evaluate_reports_metrics_errors_and_figures():
    n = 20
    labels = np.arange(n) % 10
    proba = np.full((n, 10), 0.01, np.float32)
    proba[np.arange(n), labels] = 0.91
    proba[3] = 0.01
    proba[3, 5] = 0.91  # confidently wrong: true 3, predicted 5
    split = Digits(np.zeros((n, 28, 28), np.uint8), labels.astype(np.uint8), np.arange(100, 100 + n))
    result = evaluate(FixedModel(proba), split, NAMES, size_bytes=2048)
    metrics = result.metrics
    assert metrics["accuracy"] == pytest.approx(19 / 20)
    assert metrics["most_confident_errors"] == [{"sample_id": 103, "label": 3, "predicted": 5, "confidence": 0.91}]
    assert metrics["model_size_bytes"] == 2048 and metrics["throughput_images_per_s"] > 0
    assert metrics["latency_ms_one_image"] >= 0
    assert result.correct.sum() == 19 and list(result.sample_ids[:2]) == [100, 101]
    for png in result.figures.values():
        assert png.startswith(b"\x89PNG")
    text = markdown("fixed-1", "fixed", "d1", metrics)
    assert "| accuracy | 0.9500 |" in text and "\n| 3 | " in text and "| 3 3 |" not in text

    named = evaluate(FixedModel(proba), split, [f"item {i}" for i in range(10)], size_bytes=2048, measure_speed=False)
    assert "\n| 3 item 3 | " in markdown("fixed-1", "fixed", "d1", named.metrics)

    inline = markdown_with_figures("fixed-1", "fixed", "d1", metrics, result.figures)
    assert inline.count("](data:image/png;base64,") == 3 and "### Confusion matrix" in inline
    page = html_report("fixed-1", "fixed", "d1", metrics, result.figures)
    assert page.startswith("<!DOCTYPE html>") and page.count("src='data:image/png;base64,") == 3
    assert "<td>3</td>" in page and "Evaluation of fixed-1 on d1" in page and "http" not in page.split("<body>")[1]
