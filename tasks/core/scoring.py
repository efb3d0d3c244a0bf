"""Scoring images with a classifier: each image's label, the label's class name and probability.

One function for `mnist predict` and the ``predict`` flow, so both answer the same for the same
pixels.
"""

from dataclasses import dataclass

import numpy as np
from mnist_pipeline.tasks.core.digits import DIGIT_NAMES
from mnist_pipeline.tasks.core.models.base import Classifier


@dataclass(frozen=True)
class Scores:
    predicted: np.ndarray  # (n,) uint8 labels
    probability: np.ndarray  # (n,) float32: the predicted label's probability
    probabilities: np.ndarray  # (n, classes) float32
    label_names: list[str]  # the predicted label's class name, per image

    def __len__(self) -> int:
        return len(self.predicted)


@dataclass(frozen=True)
class ScoredFile:
    """One input file: its images' names and scores, or why it could not be read."""

    path: str
    names: tuple[str, ...] = ()  # one per image: the file's name, with [sample id] or [row] for collections
    scores: Scores | None = None
    error: str | None = None


@dataclass(frozen=True)
class Predictions:
    """What scoring files with a registered model gives: each file's scores, in the order given."""

    model_id: str
    class_names: tuple[str, ...]
    files: tuple[ScoredFile, ...]

    @property
    def unreadable(self) -> int:
        return sum(file.error is not None for file in self.files)

    @property
    def images(self) -> int:
        return sum(len(file.names) for file in self.files)


def score(model: Classifier, images: np.ndarray, class_names: tuple[str, ...] = DIGIT_NAMES) -> Scores:
    probabilities = model.predict_proba(images).astype(np.float32)
    predicted = probabilities.argmax(axis=1)
    return Scores(
        predicted=predicted.astype(np.uint8),
        probability=probabilities[np.arange(len(predicted)), predicted],
        probabilities=probabilities,
        label_names=[class_names[label] for label in predicted],
    )


@dataclass(frozen=True)
class Answer:
    """One scored image, as `mnist predict --json` prints it and `mnist serve` answers it
    (``input``: the image's name)."""

    label: int
    label_name: str
    probability: float
    probabilities: tuple[float, ...]
    model_id: str
    input: str | None = None

    def as_json(self) -> dict:
        # Built by hand: dataclasses.asdict deep-copies, a tenth of a millisecond a request.
        named = {"input": self.input} if self.input is not None else {}
        return {**named, "label": self.label, "label_name": self.label_name, "probability": self.probability,
                "probabilities": list(self.probabilities), "model_id": self.model_id}


def answers(scores: Scores, model_id: str, names: list[str] | None = None) -> list[Answer]:
    probabilities = scores.probabilities.tolist()  # Python floats, the values float(p) gives
    return [
        Answer(int(scores.predicted[i]), scores.label_names[i], round(probabilities[i][int(scores.predicted[i])], 6),
               tuple(round(p, 6) for p in probabilities[i]), model_id, names[i] if names else None)
        for i in range(len(scores))
    ]


def names_digits(class_names: tuple[str, ...]) -> bool:
    """Whether the classes are the ten digits (MNIST and its kin) rather than named items."""
    return tuple(class_names) == DIGIT_NAMES
