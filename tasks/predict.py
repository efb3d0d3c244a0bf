"""Scoring images with a registered model: the ``predict`` flow's tasks (and `mnist predict`'s)."""

from dataclasses import dataclass

import numpy as np
from mnist_pipeline.storage import evaluations as evaluation_store
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.inputs import ImagesToScore, read_images_to_score
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.core.errors import MnistError
from mnist_pipeline.tasks.core.images import Preprocess, load_image
from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.models.base import Classifier
from mnist_pipeline.tasks.core.records import TrainingRecord
from mnist_pipeline.tasks.core.results import Scored
from mnist_pipeline.tasks.core.scoring import Predictions, ScoredFile, names_digits, score
from mnist_pipeline.tasks.options import STORAGE_IS_THE_CACHE
from prefect import task
from prefect.logging import get_run_logger


@dataclass(frozen=True)
class Registered:
    """A registered model, loaded, with the class names of the dataset it was trained on."""

    model_id: str
    model: Classifier
    class_names: tuple[str, ...]
    record: TrainingRecord  # how it was trained: its family, dataset version, code version

    @property
    def digits(self) -> bool:
        return names_digits(self.class_names)


def load_registered(store: Store, reference: str) -> Registered:
    """The model an alias, id or prefix names, loaded from its checked files."""
    with store.registry(create=False) as registry:
        model_id = registry.resolve(reference)
        lineage, _ = registry.lineage(model_id)
    return load_model(store, model_id, lineage.class_names)


def load_model(store: Store, model_id: str, class_names: tuple[str, ...]) -> Registered:
    """A registered model from its files, each checked against the checksum recorded at training."""
    record = model_store.read_record(store.root, model_id)
    model = catalog.load(model_store.read_model_files(store.root, model_id, record))
    return Registered(model_id, model, class_names, record)


def read_images(path: str, preprocess: Preprocess = "auto", digits: bool = True) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, 28, 28)`` uint8 images from a PNG/JPEG, an IDX images file or a Parquet file.

    Pictures are prepared for the model (see :mod:`mnist_pipeline.tasks.core.images`); IDX and
    Parquet files hold dataset images, used as they are.
    """
    return prepared(read_images_to_score(path), preprocess, digits)


def prepared(found: ImagesToScore, preprocess: Preprocess = "auto", digits: bool = True) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, 28, 28)`` uint8 images to score: a collection's as they are, a picture
    converted for the model (what `mnist predict` and `mnist serve` both do)."""
    if found.images is not None:
        return found.names, found.images
    return found.names, load_image(found.picture, found.names[0], preprocess=preprocess, digits=digits)[None]


@task(name="score-files", **STORAGE_IS_THE_CACHE)
def score_files(store: Store, reference: str, paths: list[str], preprocess: Preprocess = "auto") -> Predictions:
    """Each file's images scored with a registered model (production by default); a file that
    cannot be read is kept with its error, and the others are still scored."""
    registered = load_registered(store, reference)
    files = []
    for path in paths:
        try:
            names, images = read_images(path, preprocess, registered.digits)
        except MnistError as error:
            files.append(ScoredFile(path, error=str(error)))
            continue
        files.append(ScoredFile(path, tuple(names), score(registered.model, images, registered.class_names)))
    predictions = Predictions(registered.model_id, registered.class_names, tuple(files))
    get_run_logger().info("scored %d images of %d file(s) with %s; %d file(s) could not be read",
                          predictions.images, len(paths), registered.model_id, predictions.unreadable)
    return predictions


@task(name="score-parquet", **STORAGE_IS_THE_CACHE)
def score_parquet(store: Store, reference: str, input_url: str, output_url: str) -> Scored:
    """Predictions (label, probability, all ten probabilities) for every row of a Parquet file,
    scored a batch at a time (memory stays bounded by the batch, not the file)."""
    logger = get_run_logger()
    evaluation_store.check_prediction_output(input_url, output_url)
    registered = load_registered(store, reference)
    rows = 0
    with evaluation_store.prediction_writer(output_url) as write:
        for images in evaluation_store.iter_images_parquet(input_url):
            scores = score(registered.model, images.images, registered.class_names)
            write({"sample_id": images.sample_ids, "predicted": scores.predicted,
                   "label_name": np.array(scores.label_names, dtype=str), "probability": scores.probability,
                   "model_id": np.full(len(scores), registered.model_id)}, scores.probabilities, images.images)
            rows += len(scores)
    logger.info("scored %d images of %s with %s into %s", rows, input_url, registered.model_id, output_url)
    return Scored(registered.model_id, rows, output_url)
