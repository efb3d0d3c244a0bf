"""Scoring images with a registered model: `mnist predict` and the ``predict`` flow."""

import os
from dataclasses import dataclass

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from storage import evaluations as evaluation_store
from storage import models as model_store
from storage.raw import read_input
from storage.registry import Registry
from storage.root import StorageRoot
from tasks.core import models
from tasks.core.decode import max_file_bytes
from tasks.core.errors import InputError
from tasks.core.digits import DIGIT_NAMES
from tasks.core.idx import decode_idx, gunzip_if_needed
from tasks.core.images import Preprocess, load_image
from tasks.core.scoring import names_digits, score

# An IDX file to score holds at most this many images (it is checked while decompressing).
MAX_IMAGES_PER_FILE = 1_000_000
PARQUET_SUFFIXES = (".parquet", ".pq")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Registered:
    """A registered model, loaded, with the class names of the dataset it was trained on."""

    model_id: str
    model: models.Classifier
    class_names: tuple[str, ...]

    @property
    def digits(self) -> bool:
        return names_digits(self.class_names)


def load_registered(home: str | None, registry_url: str | None, reference: str) -> Registered:
    """The model an alias, id or prefix names, loaded from its checked files."""
    root = StorageRoot(home)
    registry = Registry.open_existing(root, registry_url)
    try:
        model_id = registry.resolve(reference)
        lineage, _ = registry.lineage(model_id)
    finally:
        registry.close()
    model = models.load(model_store.read_model_files(root, model_id))
    return Registered(model_id, model, lineage.class_names if lineage else DIGIT_NAMES)


def read_images(path: str, preprocess: Preprocess = "auto", digits: bool = True) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, 28, 28)`` uint8 images from a PNG/JPEG, an IDX images file or a Parquet file.

    Files of images are prepared for the model (see :mod:`tasks.core.images`); IDX and Parquet
    files hold dataset images, used as they are.
    """
    name = os.path.basename(path)
    lower = name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        digits_read = evaluation_store.read_images_parquet(path)
        return [f"{name}[{i}]" for i in digits_read.sample_ids], digits_read.images
    if lower.endswith(IMAGE_SUFFIXES):
        return [name], load_image(read_input(path), name, preprocess=preprocess, digits=digits)[None]
    data = gunzip_if_needed(read_input(path), name, max_file_bytes("images", MAX_IMAGES_PER_FILE))
    if data[:2] == b"\x00\x00":  # IDX magic: two zero bytes, a type code, the number of dimensions
        images = decode_idx(data, name, expected_ndim=3)
        if images.shape[1:] != (28, 28):
            raise InputError(f"{name} holds {images.shape[1]}x{images.shape[2]} images; 28x28 are expected")
        return [f"{name}[{i}]" for i in range(len(images))], images.astype(np.uint8)
    return [name], load_image(data, name, preprocess=preprocess, digits=digits)[None]


@task(name="score-parquet", cache_policy=NO_CACHE)
def score_parquet(home: str | None, registry_url: str | None, reference: str, input_url: str, output_url: str) -> dict:
    """Predictions (label, probability, all ten probabilities) for every row of a Parquet file."""
    logger = get_run_logger()
    evaluation_store.check_prediction_output(input_url, output_url)
    registered = load_registered(home, registry_url, reference)
    images = evaluation_store.read_images_parquet(input_url)
    scores = score(registered.model, images.images, registered.class_names)
    evaluation_store.write_predictions(
        output_url,
        {"sample_id": images.sample_ids, "predicted": scores.predicted, "label_name": np.array(scores.label_names),
         "probability": scores.probability, "model_id": np.full(len(scores), registered.model_id)},
        scores.probabilities,
    )
    logger.info("scored %d images of %s with %s into %s", len(scores), input_url, registered.model_id, output_url)
    return {"model_id": registered.model_id, "rows": len(scores), "output": output_url}
