"""The ensemble: a weighted soft vote of models already trained on the same dataset version.

Its probabilities are ``sum_k w_k p_k(x)`` over its members, with non-negative weights summing to
one chosen to minimise the log-loss on the validation split (the train split taught the members;
the test split is never looked at). Its validation accuracy is cross-fitted: the validation split
is cut in folds, and each fold is scored with weights fitted on the others, so choosing the best
model of a run by validation accuracy does not favour the ensemble for having seen the answers.

It is stored like any model, without pickle: its members' own files (safetensors, skops, JSON)
under ``members/<model id>/`` and the weights in ``model.json``.
"""

import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models.base import META_FILE, Classifier, FitReport, accuracy
from mnist_pipeline.tasks.core.models.configs import EnsembleConfig

MEMBERS_FOLDER = "members"


class Ensemble(Classifier):
    family = "ensemble"
    config: EnsembleConfig

    def __init__(self, config: EnsembleConfig, members: dict[str, Classifier] | None = None,
                 weights: dict[str, float] | None = None,
                 validation_probabilities: dict[str, np.ndarray] | None = None) -> None:
        super().__init__(config)
        self.members = dict(members or {})
        self.weights_ = dict(weights or {})
        # The members' probabilities on the validation split, where training kept them.
        self.known = dict(validation_probabilities or {})

    def fit(self, train, validation, *, seed, progress=None, budget=None) -> "Ensemble":
        """Choose the members' weights on ``validation`` (``train`` is not needed: the members
        were trained on it)."""
        started = time.perf_counter()
        if len(self.members) < 2:
            raise ValueError(f"an ensemble needs two members or more, got {len(self.members)}")
        ids = sorted(self.members)
        member_proba = np.stack([self._validation_proba(i, validation) for i in ids])
        labels = validation.labels.astype(np.int64)
        folds = np.random.default_rng(seed).permutation(len(labels)) % self.config.folds
        predicted = np.empty(len(labels), dtype=np.int64)
        for fold in range(self.config.folds):
            held_out = folds == fold
            weights = _fit_weights(member_proba[:, ~held_out], labels[~held_out])
            predicted[held_out] = np.tensordot(weights, member_proba[:, held_out], axes=1).argmax(1)
        cross_fitted = accuracy(labels, predicted)
        self.weights_ = dict(zip(ids, _fit_weights(member_proba, labels).tolist()))
        metrics = {"step": 1, "validation_accuracy": round(cross_fitted, 5),
                   "weights": {i: round(w, 4) for i, w in self.weights_.items()},
                   "member_validation_accuracy": {i: round(accuracy(labels, p.argmax(1)), 5)
                                                  for i, p in zip(ids, member_proba)},
                   "seconds": round(time.perf_counter() - started, 2)}
        if progress:
            progress(1, 1, metrics)
        self.report = FitReport(cross_fitted, 1, 1, [metrics], time.perf_counter() - started)
        return self

    @property
    def num_classes(self) -> int:
        return max((member.num_classes for member in self.members.values()), default=Classifier.num_classes)

    def _validation_proba(self, member_id: str, validation) -> np.ndarray:
        known = self.known.get(member_id)
        if known is not None and known.shape == (len(validation), self.num_classes):
            return known
        return self.members[member_id].predict_proba(validation.images)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        if not self.weights_:
            raise RuntimeError("ensemble has no weights: fit or load it first")
        total = np.zeros((len(images), self.num_classes), np.float64)
        for member_id, weight in self.weights_.items():
            if weight > 0:
                total += weight * self.members[member_id].predict_proba(images)
        return total.astype(np.float32)

    def extra_meta(self) -> dict:
        return {"members": [{"model_id": i, "family": self.members[i].family, "weight": w}
                            for i, w in self.weights_.items()]}

    def weights(self) -> dict[str, bytes]:
        return {f"{MEMBERS_FOLDER}/{member_id}/{name}": data
                for member_id, member in self.members.items() for name, data in member.to_files().items()}

    @classmethod
    def from_weights(cls, config, files, meta) -> "Ensemble":
        from mnist_pipeline.tasks.core.models import load

        members, weights = {}, {}
        for entry in meta.get("members", []):
            prefix = f"{MEMBERS_FOLDER}/{entry['model_id']}/"
            member_files = {name[len(prefix):]: data for name, data in files.items() if name.startswith(prefix)}
            if META_FILE not in member_files:
                raise ModelFileError(f"ensemble member {entry['model_id']} has no files; the ensemble is incomplete")
            members[entry["model_id"]] = load(member_files)
            weights[entry["model_id"]] = float(entry["weight"])
        if len(members) < 2:
            raise ModelFileError(f"ensemble {META_FILE} lists {len(members)} member(s); it needs two or more")
        return cls(config, members, weights)


def _fit_weights(member_proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one that minimise the log-loss of the weighted vote."""
    chosen = member_proba[:, np.arange(len(labels)), labels].astype(np.float64)  # (members, n)

    def loss(logits: np.ndarray) -> float:
        return float(-np.log(softmax(logits) @ chosen + 1e-12).mean())

    start = np.zeros(len(member_proba))
    return softmax(minimize(loss, start, method="L-BFGS-B").x)
