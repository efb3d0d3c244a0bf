"""Scoring images with a registered model: `mnist predict` and the ``predict`` flow."""

import os

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
from tasks.core.idx import decode_idx, gunzip_if_needed
from tasks.core.images import load_image

# An IDX file to score holds at most this many images (it is checked while decompressing).
MAX_IMAGES_PER_FILE = 1_000_000
PARQUET_SUFFIXES = (".parquet", ".pq")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_registered(home: str | None, registry_url: str | None, reference: str) -> tuple[str, models.Classifier]:
    """The model an alias, id or prefix names, loaded from its checked files."""
    root = StorageRoot(home)
    registry = Registry.open_existing(root, registry_url)
    try:
        model_id = registry.resolve(reference)
    finally:
        registry.close()
    return model_id, models.load(model_store.read_model_files(root, model_id))


def read_images(path: str) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, 28, 28)`` uint8 images from a PNG/JPEG, an IDX images file or a Parquet file."""
    name = os.path.basename(path)
    lower = name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        digits = evaluation_store.read_images_parquet(path)
        return [f"{name}[{i}]" for i in digits.sample_ids], digits.images
    if lower.endswith(IMAGE_SUFFIXES):
        return [name], load_image(read_input(path), name)[None]
    data = gunzip_if_needed(read_input(path), name, max_file_bytes("images", MAX_IMAGES_PER_FILE))
    if data[:2] == b"\x00\x00":  # IDX magic: two zero bytes, a type code, the number of dimensions
        images = decode_idx(data, name, expected_ndim=3)
        if images.shape[1:] != (28, 28):
            raise InputError(f"{name} holds {images.shape[1]}x{images.shape[2]} images; 28x28 are expected")
        return [f"{name}[{i}]" for i in range(len(images))], images.astype(np.uint8)
    return [name], load_image(data, name)[None]


@task(name="score-parquet", cache_policy=NO_CACHE)
def score_parquet(home: str | None, registry_url: str | None, reference: str, input_url: str, output_url: str) -> dict:
    """Predictions (label, probability, all ten probabilities) for every row of a Parquet file."""
    logger = get_run_logger()
    evaluation_store.check_prediction_output(input_url, output_url)
    model_id, model = load_registered(home, registry_url, reference)
    digits = evaluation_store.read_images_parquet(input_url)
    proba = model.predict_proba(digits.images)
    predicted = proba.argmax(axis=1)
    evaluation_store.write_predictions(
        output_url,
        {"sample_id": digits.sample_ids, "predicted": predicted.astype(np.uint8),
         "probability": proba[np.arange(len(proba)), predicted].astype(np.float32),
         "model_id": np.full(len(proba), model_id)},
        proba.astype(np.float32),
    )
    logger.info("scored %d images of %s with %s into %s", len(proba), input_url, model_id, output_url)
    return {"model_id": model_id, "rows": int(len(proba)), "output": output_url}
