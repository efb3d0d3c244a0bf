"""Calibration: how far a model's confidence is from how often it is right, and the temperature
that brings the two together.

Every family turns its uncalibrated scores (log-probabilities for the torch families and the
ensemble, one-vs-rest decision scores for the SVM) into probabilities by a softmax with a
temperature fitted on the validation split: one number, so the predicted labels never change,
only how sure the model says it is. Label smoothing, which the MLP and the CNN train with, leaves
them under-confident (test ECE about 0.1 on a few thousand digits); a temperature below 1 undoes it.
"""

import numpy as np

CALIBRATION_BINS = 15


def with_temperature(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(scores / temperature)`` per row, float32."""
    scaled = np.asarray(scores, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log-loss of ``softmax(scores / T)`` on ``labels``."""
    from scipy.optimize import minimize_scalar  # scipy only where it is used: configs import this module
    from scipy.special import log_softmax

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 1.0
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        return float(-log_softmax(scores / np.exp(log_t), axis=1)[rows, labels].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded").x))


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Log of probabilities as scores (floored, so a zero stays finite)."""
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), 1e-12)).astype(np.float32)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error over equal-width confidence bins, and the bins themselves."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = index == b
        if not members.any():
            continue
        accuracy, mean_confidence = float(correct[members].mean()), float(confidence[members].mean())
        ece += members.mean() * abs(accuracy - mean_confidence)
        table.append({"low": round(edges[b], 4), "high": round(edges[b + 1], 4), "count": int(members.sum()),
                      "accuracy": round(accuracy, 5), "confidence": round(mean_confidence, 5)})
    return float(ece), table


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(len(predicted)), predicted]
    return reliability(confidence, predicted == np.asarray(labels))[0]


def calibrate(scores: np.ndarray, labels: np.ndarray) -> tuple[float, dict]:
    """The fitted temperature, and the validation ECE before and after it (for the record)."""
    temperature = fit_temperature(scores, labels)
    return temperature, {
        "temperature": round(temperature, 5),
        "validation_ece_before": round(expected_calibration_error(with_temperature(scores), labels), 5),
        "validation_ece_after": round(expected_calibration_error(with_temperature(scores, temperature), labels), 5),
    }
