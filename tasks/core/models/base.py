"""The interface every model family implements, so later stages never ask which family they hold.

A classifier is built from its config, ``fit`` on the train split (choosing, stopping and
calibrating on the validation split only), then answers ``predict_proba`` / ``predict`` for uint8
images. Its probabilities are ``softmax(log_scores / temperature)``: every family fits its
temperature on the validation split (:mod:`mnist_pipeline.tasks.core.calibration`). It turns
itself into named byte strings (``to_files``) in formats that load without unpickling code
(safetensors, skops with a trusted-type check, JSON); ``storage/`` decides where they live.
"""

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
from mnist_pipeline.tasks.core.calibration import with_temperature
from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE, NUM_CLASSES, Digits
from mnist_pipeline.tasks.core.errors import MnistError

# step, total steps, metrics of that step (epoch loss, validation accuracy, ...)
ProgressFn = Callable[[int, int, dict], None]

META_FILE = "model.json"
PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


class TrainingError(MnistError, RuntimeError):
    """Training could not produce a model."""


class TimeBudgetExceeded(TrainingError):
    def __init__(self, family: str, budget_s: float, where: str) -> None:
        super().__init__(
            f"{family}: time budget of {budget_s:g} s exceeded ({where}); raise "
            f"`time_budget_s` in the training settings or lower this family's steps"
        )


@dataclass
class Budget:
    """A wall-clock allowance, checked between training steps (an epoch, a fit, a batch)."""

    family: str
    seconds: float | None
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def exceeded(self) -> bool:
        return self.seconds is not None and self.elapsed() > self.seconds

    def check(self, where: str) -> None:
        """Raise when over budget: for steps after which no model could be kept."""
        if self.exceeded():
            raise TimeBudgetExceeded(self.family, self.seconds, where)


@dataclass(frozen=True)
class RowPlan:
    """How many rows a family whose cost grows faster than its rows (the SVM) trains on, and why
    (recorded in training.json and the model card)."""

    rows: int  # rows the fit trains on (a seeded, stratified subset of about this many when fewer than offered)
    offered: int  # rows of the train split offered to it
    predicted_seconds: float  # the fit and its validation pass, predicted
    allowance_seconds: float | None  # what the plan had to fit in (None: no limit)
    hardness: float  # support vectors against Fashion-MNIST's for as many rows
    slowdown: float  # the machine's speed against the cost model's, where it read the clock (else 1.0)
    reason: str


@dataclass(frozen=True)
class FitReport:
    """What training did: the validation score it kept and the history behind it."""

    validation_accuracy: float
    steps: int  # optimizer steps taken (1 for the SVM's single fit)
    best_step: int  # the step whose weights were kept
    history: list[dict]
    seconds: float
    stopped_early: str | None = None  # why training stopped before its last step (the time budget)
    train_rows: int | None = None  # rows trained on (set by training.fit_family, which subsamples)
    # The rows a family that plans its own cost (the SVM) chose before it started, and why.
    row_plan: RowPlan | None = None
    # The kept model's (calibrated) probabilities on the validation split (what combining models needs).
    validation_probabilities: np.ndarray | None = field(default=None, repr=False)
    # The fitted temperature and the validation ECE before and after it (calibration.calibrate).
    calibration: dict | None = None

    def with_train_rows(self, rows: int) -> "FitReport":
        """This report, saying it trained on ``rows`` unless the family said how many itself."""
        return replace(self, train_rows=self.train_rows or rows)


def validation_steps(steps: int, validations: int) -> set[int]:
    """The steps after which to validate: ``validations`` of them, evenly spread, the last included."""
    validations = min(validations, steps)
    return {round(steps * (i + 1) / validations) for i in range(validations)}


class Classifier(ABC):
    family: ClassVar[str]
    # Outputs per image: from the labels when fitting (torch families keep it in model.json to
    # rebuild their output layer; the SVM and the ensemble derive it from their parts).
    num_classes: int = NUM_CLASSES

    def __init__(self, config) -> None:
        self.config = config
        self.report: FitReport | None = None  # what the last fit did
        self.temperature = 1.0  # fitted on the validation split by ``fit``

    @abstractmethod
    def fit(
        self,
        train: Digits,
        validation: Digits,
        *,
        seed: int,
        progress: ProgressFn | None = None,
        budget: Budget | None = None,
        device: str = "cpu",
    ) -> "Classifier":
        """Train on ``train`` (choosing on ``validation``) and return this model, fitted;
        ``self.report`` says what training did. The torch families compute on ``device``
        (:mod:`mnist_pipeline.tasks.core.devices`); the others on the CPU whatever it says. Subsampling by config is the caller's
        (:func:`mnist_pipeline.tasks.core.training.fit_family`), for every family alike; a family
        whose single fit cannot be interrupted (the SVM) may train on fewer rows that its time
        budget affords, and says so in ``report.train_rows`` and ``report.row_plan``."""

    @abstractmethod
    def log_scores(self, images: np.ndarray) -> np.ndarray:
        """Uncalibrated class scores, ``(n, classes)``: the probabilities are their softmax at
        the model's temperature."""

    def predict_proba(self, images: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Class probabilities, ``(n, classes)`` float32 rows summing to 1, for uint8 images;
        ``calibrated=False`` leaves out the fitted temperature."""
        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return self.probabilities(self.log_scores(images), calibrated)

    def probabilities(self, scores: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """The probabilities of ``log_scores`` output (at the fitted temperature, or at 1)."""
        return with_temperature(scores, self.temperature if calibrated else 1.0)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)

    @abstractmethod
    def weights(self) -> dict[str, bytes]:
        """The learned state as named files (never a pickle)."""

    @classmethod
    @abstractmethod
    def from_weights(cls, config, files: dict[str, bytes], meta: dict) -> "Classifier": ...

    def extra_meta(self) -> dict:
        """Family-specific numbers that loading needs besides the weights."""
        return {}

    def to_files(self) -> dict[str, bytes]:
        meta = {
            "family": self.family,
            "config": self.config.model_dump(mode="json"),
            "num_classes": self.num_classes,
            "temperature": self.temperature,
            **self.extra_meta(),
        }
        return {**self.weights(), META_FILE: json.dumps(meta, indent=2).encode()}


def flat_pixels(images: np.ndarray) -> np.ndarray:
    """``(n, 784)`` float32 in [0, 1] from uint8 images of shape ``(n, 28, 28)`` or ``(n, 784)``."""
    return flat_images(images).astype(np.float32) / 255.0


def flat_images(images: np.ndarray) -> np.ndarray:
    """``(n, 784)`` uint8 from images of shape ``(n, 28, 28)`` or ``(n, 784)``, without a copy."""
    images = np.asarray(images)
    if (images.ndim == 2 and images.shape[1] == PIXELS) or images.shape[1:] == IMAGE_SHAPE:
        return images.reshape(len(images), PIXELS)
    raise ValueError(
        f"images of shape {images.shape} are not 28x28 digits; convert them first "
        "(`mnist predict` resizes PNG/JPEG images)"
    )


def class_count(*splits: Digits) -> int:
    """How many classes the labels of these splits use (labels are 0..n-1)."""
    return int(max(int(split.labels.max()) for split in splits if len(split))) + 1


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float((np.asarray(labels) == np.asarray(predicted)).mean()) if len(labels) else 0.0
