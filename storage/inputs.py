"""Files of images to score (``mnist predict``): which format a file is, and its contents.

Parquet (``image`` / ``label`` / ``sample_id`` columns) and IDX files (optionally gzipped) hold
dataset images, returned as they are; any other file is one picture (PNG, JPEG...), returned as
bytes for :mod:`mnist_pipeline.tasks.core.images` to prepare for a model.
"""

import os
from dataclasses import dataclass

import numpy as np
from mnist_pipeline.storage.evaluations import read_images_parquet
from mnist_pipeline.storage.raw import read_input
from mnist_pipeline.tasks.core.decode import max_file_bytes
from mnist_pipeline.tasks.core.errors import InputError
from mnist_pipeline.tasks.core.idx import decode_idx, gunzip_if_needed

# An IDX file to score holds at most this many images (it is checked while decompressing).
MAX_IMAGES_PER_FILE = 1_000_000
PARQUET_SUFFIXES = (".parquet", ".pq")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImagesToScore:
    names: list[str]  # one per image: the file name, with [sample id] or [row] for collections
    images: np.ndarray | None = None  # (n, 28, 28) uint8 dataset images (Parquet, IDX)
    picture: bytes | None = None  # or the bytes of one picture file


def read_images_to_score(path: str) -> ImagesToScore:
    """The images in ``path``, by its format: a Parquet or IDX collection, or one picture."""
    name = os.path.basename(path)
    lower = name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        digits = read_images_parquet(path)
        return ImagesToScore([f"{name}[{i}]" for i in digits.sample_ids], images=digits.images)
    if lower.endswith(IMAGE_SUFFIXES):
        return ImagesToScore([name], picture=read_input(path))
    return images_in_bytes(read_input(path), name)


def images_in_bytes(data: bytes, name: str, max_images: int = MAX_IMAGES_PER_FILE) -> ImagesToScore:
    """The images in a file's bytes (an upload to `mnist serve`): an IDX images file, gzipped or
    not, of at most ``max_images`` images (checked while decompressing), or one picture."""
    data = gunzip_if_needed(data, name, max_file_bytes("images", max_images))
    if data[:2] == b"\x00\x00":  # IDX magic: two zero bytes, a type code, the number of dimensions
        images = decode_idx(data, name, expected_ndim=3)
        if images.shape[1:] != (28, 28):
            raise InputError(f"{name} holds {images.shape[1]}x{images.shape[2]} images; 28x28 are expected")
        return ImagesToScore([f"{name}[{i}]" for i in range(len(images))], images=images.astype(np.uint8))
    return ImagesToScore([name], picture=data)
