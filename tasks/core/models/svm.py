"""The SVM family: an RBF-kernel SVC (libsvm, one-vs-one) on PCA components of the pixels.

libsvm has no probabilities without its 5-fold Platt scaling (five more fits); instead the
one-vs-rest decision scores are turned into probabilities by a softmax whose temperature is
fitted on the validation split, which costs one pass over it.
"""

import time

import numpy as np
import skops.io as skops_io
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.decomposition import PCA
from sklearn.svm import SVC

from tasks.core.dataset import stratified_sample
from tasks.core.errors import ModelFileError
from tasks.core.models.base import Classifier, FitReport, accuracy, flat_pixels
from tasks.core.models.configs import SvmConfig

WEIGHTS_FILE = "model.skops"


class Svm(Classifier):
    family = "svm"
    config: SvmConfig

    def __init__(self, config: SvmConfig, pca: PCA | None = None, svc: SVC | None = None,
                 temperature: float = 1.0) -> None:
        super().__init__(config)
        self.pca, self.svc, self.temperature = pca, svc, temperature

    def fit(self, train, validation, *, seed, progress=None, budget=None) -> FitReport:
        started = time.perf_counter()
        train = stratified_sample(train, self.config.max_train_rows, seed)
        steps = 3
        self.pca = PCA(self.config.pca_components, svd_solver="randomized", random_state=seed)
        components = self.pca.fit_transform(flat_pixels(train.images))
        _report(progress, 1, steps, "pca", started)
        if budget:
            budget.check("after PCA")
        self.svc = SVC(
            C=self.config.C, kernel="rbf", gamma=self.config.gamma, cache_size=self.config.cache_mb,
            decision_function_shape="ovr", random_state=seed,
        ).fit(components, train.labels)
        _report(progress, 2, steps, "svc fit", started, support_vectors=int(self.svc.n_support_.sum()))
        if budget:
            budget.check("after the SVC fit")
        scores = self._scores(validation.images)
        self.temperature = _fit_temperature(scores, validation.labels)
        valid_accuracy = accuracy(validation.labels, scores.argmax(1))
        metrics = _report(progress, 3, steps, "calibration", started,
                          validation_accuracy=round(valid_accuracy, 5), temperature=round(self.temperature, 4))
        return FitReport(valid_accuracy, 1, 1, [metrics], time.perf_counter() - started)

    def _scores(self, images: np.ndarray) -> np.ndarray:
        if self.svc is None:
            raise RuntimeError("svm model is not trained or loaded")
        return self.svc.decision_function(self.pca.transform(flat_pixels(images)))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, 10), np.float32)
        return softmax(self._scores(images) / self.temperature, axis=1).astype(np.float32)

    def extra_meta(self) -> dict:
        return {"temperature": self.temperature}

    def weights(self) -> dict[str, bytes]:
        return {WEIGHTS_FILE: skops_io.dumps({"pca": self.pca, "svc": self.svc})}

    @classmethod
    def from_weights(cls, config, files, meta) -> "Svm":
        data = files.get(WEIGHTS_FILE)
        if data is None:
            raise ModelFileError(f"svm model has no {WEIGHTS_FILE}")
        try:
            # Only types skops trusts by default (scikit-learn's own, numpy) are rebuilt;
            # anything else is refused instead of executed.
            state = skops_io.loads(data)
        except Exception as error:  # zipfile, json and skops' own errors alike
            raise ModelFileError(
                f"svm model ({WEIGHTS_FILE}) cannot be loaded safely: {type(error).__name__}: "
                f"{error}; the file is truncated, tampered with or not a skops file"
            ) from error
        if not isinstance(state, dict) or not isinstance(state.get("pca"), PCA) or not isinstance(state.get("svc"), SVC):
            raise ModelFileError(f"svm model ({WEIGHTS_FILE}) does not hold a PCA and an SVC")
        return cls(config, state["pca"], state["svc"], float(meta["temperature"]))


def _fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature that minimises the validation log-loss of the decision scores."""
    labels = labels.astype(np.int64)

    def loss(log_t: float) -> float:
        return -log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    return float(np.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded").x))



def _report(progress, step, total, stage, started, **metrics) -> dict:
    metrics = {"step": stage, **metrics, "seconds": round(time.perf_counter() - started, 2)}
    if progress:
        progress(step, total, metrics)
    return metrics
