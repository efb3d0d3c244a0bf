"""The ensemble: a weighted soft vote of models already trained on the same dataset version.

Its scores are ``log sum_k w_k p_k(x)`` over its members' calibrated probabilities, with
non-negative weights summing to one chosen to minimise the log-loss on the validation split (the
train split taught the members; the test split is never looked at), and a temperature fitted on
the validation split like every family's. Its validation accuracy is cross-fitted: the
validation split is cut in folds, and each fold is scored with weights fitted on the others, so
choosing the best model of a run by validation accuracy does not favour the ensemble for having
seen the answers. It earns its place only when that accuracy beats its best member's
(:meth:`Ensemble.verdict`); otherwise the run leaves it out and says why.

Fitting needs only the members' stored validation probabilities, so deciding costs a fraction of
a second; the members themselves are loaded (:meth:`Ensemble.with_members`) only for a kept one.

It is stored like any model, without pickle: its members' own files (safetensors, skops, JSON)
under ``members/<model id>/`` and the weights in ``model.json``.
"""

import time

import numpy as np
from mnist_pipeline.tasks.core.calibration import calibrate, log_probabilities
from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models.base import META_FILE, Classifier, FitReport, accuracy
from mnist_pipeline.tasks.core.models.configs import FamilyConfig
from mnist_pipeline.tasks.core.models.family import FamilyDeclaration
from pydantic import Field

MEMBERS_FOLDER = "members"
# Combined from the families a run trained, after them: not a family of its own in the catalog.
ENSEMBLE = "ensemble"


class EnsembleConfig(FamilyConfig):
    """A weighted soft vote of the run's trained models; the weights minimise the validation log-loss."""

    # Folds of the validation split for the cross-fitted validation accuracy (each fold is scored
    # with weights fitted on the others).
    folds: int = Field(default=2, ge=2, le=10)


class Ensemble(Classifier):
    family = ENSEMBLE
    config: EnsembleConfig

    def __init__(self, config: EnsembleConfig, members: dict[str, Classifier] | None = None,
                 weights: dict[str, float] | None = None,
                 validation_probabilities: dict[str, np.ndarray] | None = None, temperature: float = 1.0) -> None:
        super().__init__(config)
        self.members = dict(members or {})
        self.weights_ = dict(weights or {})
        self.temperature = temperature
        # The members' calibrated probabilities on the validation split, as their training kept them.
        self.known = dict(validation_probabilities or {})
        self._num_classes = None

    def fit(self, train, validation, *, seed, progress=None, budget=None, device="cpu") -> "Ensemble":
        """Choose the members' weights and the temperature on ``validation`` (``train`` is not
        needed: the members were trained on it)."""
        started = time.perf_counter()
        ids = sorted(set(self.known) | set(self.members))
        if len(ids) < 2:
            raise ValueError(f"an ensemble needs two members or more, got {len(ids)}")
        member_proba = np.stack([self._validation_proba(i, validation) for i in ids])
        self._num_classes = member_proba.shape[2]
        labels = validation.labels.astype(np.int64)
        folds = np.random.default_rng(seed).permutation(len(labels)) % self.config.folds
        predicted = np.empty(len(labels), dtype=np.int64)
        for fold in range(self.config.folds):
            held_out = folds == fold
            weights = _fit_weights(member_proba[:, ~held_out], labels[~held_out])
            predicted[held_out] = np.tensordot(weights, member_proba[:, held_out], axes=1).argmax(1)
        cross_fitted = accuracy(labels, predicted)
        self.weights_ = dict(zip(ids, _fit_weights(member_proba, labels).tolist()))
        scores = self.combine(dict(zip(ids, member_proba)))
        self.temperature, calibration = calibrate(scores, labels)
        metrics = {"step": 1, "validation_accuracy": round(cross_fitted, 5),
                   "weights": {i: round(w, 4) for i, w in self.weights_.items()},
                   "member_validation_accuracy": {i: round(accuracy(labels, p.argmax(1)), 5)
                                                  for i, p in zip(ids, member_proba)},
                   "seconds": round(time.perf_counter() - started, 2)}
        if progress:
            progress(1, 1, metrics)
        self.report = FitReport(cross_fitted, 1, 1, [metrics], time.perf_counter() - started,
                                validation_probabilities=self.probabilities(scores), calibration=calibration)
        return self

    def verdict(self) -> tuple[bool, str]:
        """Whether the fitted ensemble earns its place: its cross-fitted validation accuracy must
        beat its best member's. The reason, in words, either way."""
        metrics = self.report.history[-1]
        best_id, best = max(metrics["member_validation_accuracy"].items(), key=lambda item: item[1])
        ours = metrics["validation_accuracy"]
        if ours > best:
            return True, f"cross-fitted validation accuracy {ours:.4f} beats its best member {best_id} ({best:.4f})"
        return False, (f"left out: its cross-fitted validation accuracy {ours:.4f} does not beat its best member "
                       f"{best_id} ({best:.4f}), so it would add cost without adding accuracy")

    def with_members(self, members: dict[str, Classifier]) -> "Ensemble":
        """This ensemble with its members loaded (what scoring new images and storing need)."""
        missing = set(self.weights_) - set(members)
        if missing:
            raise ValueError(f"ensemble members {sorted(missing)} were not given")
        self.members = dict(members)
        return self

    @property
    def num_classes(self) -> int:
        if self._num_classes is not None:
            return self._num_classes
        return max((member.num_classes for member in self.members.values()), default=Classifier.num_classes)

    def _validation_proba(self, member_id: str, validation) -> np.ndarray:
        known = self.known.get(member_id)
        if known is not None and len(known) == len(validation):
            return known
        if member_id not in self.members:
            raise ValueError(f"ensemble member {member_id}: its stored validation probabilities hold "
                             f"{0 if known is None else len(known)} rows, not the {len(validation)} of this "
                             "validation split, and the member itself was not given to score it")
        return self.members[member_id].predict_proba(validation.images)

    def combine(self, member_probabilities: dict[str, np.ndarray]) -> np.ndarray:
        """The ensemble's scores from its members' calibrated probabilities on the same images
        (stored ones, for an evaluation that need not score every member again)."""
        if not self.weights_:
            raise RuntimeError("ensemble has no weights: fit or load it first")
        missing = [i for i, w in self.weights_.items() if w > 0 and i not in member_probabilities]
        if missing:
            raise ValueError(f"probabilities of ensemble members {missing} were not given")
        total = sum(weight * np.asarray(member_probabilities[i], np.float64)
                    for i, weight in self.weights_.items() if weight > 0)
        return log_probabilities(total)

    def log_scores(self, images: np.ndarray) -> np.ndarray:
        return self.combine({i: self.members[i].predict_proba(images) for i, w in self.weights_.items() if w > 0})

    def extra_meta(self) -> dict:
        return {"members": [{"model_id": i, "family": self.members[i].family, "weight": w}
                            for i, w in self.weights_.items()]}

    def weights(self) -> dict[str, bytes]:
        return {f"{MEMBERS_FOLDER}/{member_id}/{name}": data
                for member_id, member in self.members.items() for name, data in member.to_files().items()}

    @classmethod
    def from_weights(cls, config, files, meta) -> "Ensemble":
        raise TypeError("an ensemble is loaded with its members: catalog.load(files) loads them first")

    @staticmethod
    def member_files(files: dict[str, bytes], meta: dict) -> dict[str, tuple[dict[str, bytes], float]]:
        """Each member's own files (and its weight), from the ensemble's files and ``model.json``."""
        members = {}
        for entry in meta.get("members", []):
            prefix = f"{MEMBERS_FOLDER}/{entry['model_id']}/"
            own = {name[len(prefix):]: data for name, data in files.items() if name.startswith(prefix)}
            if META_FILE not in own:
                raise ModelFileError(f"ensemble member {entry['model_id']} has no files; the ensemble is incomplete")
            members[entry["model_id"]] = (own, float(entry["weight"]))
        if len(members) < 2:
            raise ModelFileError(f"ensemble {META_FILE} lists {len(members)} member(s); it needs two or more")
        return members


def _fit_weights(member_proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to one that minimise the log-loss of the weighted vote."""
    from scipy.optimize import minimize
    from scipy.special import softmax

    chosen = member_proba[:, np.arange(len(labels)), labels].astype(np.float64)  # (members, n)

    def loss(logits: np.ndarray) -> float:
        return float(-np.log(softmax(logits) @ chosen + 1e-12).mean())

    start = np.zeros(len(member_proba))
    return softmax(minimize(loss, start, method="L-BFGS-B").x)


# Declared like a family (its libraries, its code), but trained after the families and never chosen by name.
FAMILY = FamilyDeclaration(Ensemble, EnsembleConfig, order=1000, libraries=("numpy", "scipy"))
