"""Turning decoded sources into a dataset: splits, per-image profiles, duplicates, content hash."""

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from mnist_pipeline.tasks.core.digits import SPLITS, Digits, concat
from mnist_pipeline.tasks.core.records import (
    Manifest,
    PartRecord,
    Source,
    SplitSettings,
    ValidationSummary,
)

if TYPE_CHECKING:  # pandas (and with it pyarrow) only where a frame is built: configs import this module
    import pandas as pd

# Bumped whenever the published layout or the split procedure changes, so that a new code
# version never reuses a dataset version made by the old one. 2: the version hashes what the
# data means (known dataset, class names) besides its content. 3: each image's split follows
# from its content (a keyed hash of its pixels), not from its position or the number of rows.
DATASET_FORMAT_VERSION = 3
# What changed at each format, for the error that refuses an older version's data.
FORMAT_CHANGES = {
    2: "its version did not record what the data means: its class names ({class_names}) are those of "
       "whichever source first ingested these files",
    3: "its splits were drawn from row positions, so an image could move from train to test when the data "
       "grew",
}
# Rows a whole-split check (hashes, blank images) handles at a time: its temporaries stay small.
CHUNK_ROWS = 8192
PIXEL_COUNT_ROWS = 2048


def _missing(labels: np.ndarray) -> np.ndarray:
    """Which labels are missing (NaN in a float column from a CSV with empty cells, or None)."""
    if labels.dtype.kind == "f":
        return np.isnan(labels)
    if labels.dtype.kind == "O":
        return np.array([x is None or (isinstance(x, float) and x != x) for x in labels], dtype=bool)
    return np.zeros(len(labels), dtype=bool)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a seeded, class-stratified ``fraction`` of the rows, sorted.

    Each class contributes ``round(fraction * its count)`` rows, so class shares in the holdout
    match the source's to within one row per class.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels[~_missing(labels)]):
        members = np.flatnonzero(labels == label)
        take = int(round(fraction * len(members)))
        chosen.append(rng.permutation(members)[:take])
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def stratified_sample(digits: Digits, rows: int | None, seed: int) -> Digits:
    """A seeded, class-stratified sample of about ``rows`` rows (all of them when ``rows`` is
    None or not smaller than the split)."""
    if rows is None or rows >= len(digits):
        return digits
    return digits.take(stratified_holdout(digits.labels, rows / len(digits), seed))


def canonical_pixels(images: np.ndarray) -> np.ndarray:
    """``(n, pixels)`` uint8 rows of ``images`` whatever the container decoded them as (a CSV's int64,
    an IDX file's uint8): the same picture gives the same bytes. Values that are not pixels (NaN,
    -1, 256, 3.5) are clipped here only so that every row has bytes; validation refuses them."""
    flat = images.reshape(len(images), int(np.prod(images.shape[1:], dtype=np.int64)))
    if flat.dtype != np.uint8:
        flat = np.clip(np.nan_to_num(flat, nan=0.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(flat)


def split_draws(images: np.ndarray, seed: int) -> np.ndarray:
    """Per image, a number in [0, 1) that depends on its pixels and the seed only: the first 53
    bits of a keyed BLAKE2b hash of the pixel bytes, the seed being the key. Its split follows
    from comparing it with the split fractions, so an image lands in the same split in every
    version of a growing dataset, and exact duplicates always share one."""
    key = int(seed).to_bytes(16, "little", signed=True)
    digests = b"".join(hashlib.blake2b(row, digest_size=8, key=key, person=b"mnist-split").digest()
                       for row in canonical_pixels(images))
    return (np.frombuffer(digests, dtype="<u8") >> np.uint64(11)) / float(2**53)


def split_source(
    official: dict[str, Digits], validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, Digits]:
    """Train / validation / test splits, each image's split decided by its content (see
    :func:`split_draws`), never by its position or the number of rows.

    ``official`` holds the source's published splits: ``train`` and, where the source has one,
    ``test``, kept as it is; and optionally ``added``, labelled images added on top of a published
    dataset (batches). An image without a published split (a CSV's, an added one) goes to test
    when its draw is below ``test_fraction``, to validation when it is in the next
    ``validation_fraction`` of what test leaves, else to train; an image of a published train
    split goes to validation when its draw is below ``validation_fraction``. The thresholds
    depend on the fractions alone, so a grown dataset keeps every image where it was.
    """
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {fraction}")
    published_test = "test" in official
    tests = [official["test"]] if published_test else []
    trains, validations = [], []
    for name in ("train", "added"):
        if name not in official:
            continue
        digits, draws = official[name], split_draws(official[name].images, seed)
        if name == "train" and published_test:  # no test image from a published train split
            in_validation = draws < validation_fraction
            validations.append(digits.take(np.flatnonzero(in_validation)))
            trains.append(digits.take(np.flatnonzero(~in_validation)))
            continue
        in_test = draws < test_fraction
        in_validation = ~in_test & (draws < test_fraction + validation_fraction * (1 - test_fraction))
        tests.append(digits.take(np.flatnonzero(in_test)))
        validations.append(digits.take(np.flatnonzero(in_validation)))
        trains.append(digits.take(np.flatnonzero(~in_test & ~in_validation)))
    return {"train": concat(trains), "validation": concat(validations), "test": concat(tests)}


def to_uint8(digits: Digits) -> Digits:
    """The validated canonical form: uint8 pixels and labels (values already checked)."""
    if digits.images.dtype == np.uint8 and digits.labels.dtype == np.uint8:
        return digits
    return Digits(
        digits.images.astype(np.uint8), digits.labels.astype(np.uint8), digits.sample_ids
    )


def image_profile(splits: dict[str, Digits]) -> "pd.DataFrame":
    """One row per image with what validation checks: label, geometry, pixel range, nulls."""
    import pandas as pd

    frames = []
    for split, digits in splits.items():
        n, height, width = digits.images.shape
        flat = digits.images.reshape(n, height * width)
        if np.issubdtype(flat.dtype, np.floating):
            nulls = np.isnan(flat).sum(axis=1) + pd.isna(digits.labels)
            with np.errstate(invalid="ignore"):
                non_integer = (np.nan_to_num(flat) % 1 != 0).sum(axis=1)
            pixel_min, pixel_max = np.nanmin(flat, axis=1), np.nanmax(flat, axis=1)
        else:
            nulls = np.asarray(pd.isna(digits.labels), dtype=np.int64)
            non_integer = np.zeros(n, dtype=np.int64)
            pixel_min, pixel_max = flat.min(axis=1), flat.max(axis=1)
        # Great Expectations compares int64/float64 columns vectorised but uint8 ones value by
        # value in Python (about 0.3 s on 70,000 rows), so widen.
        wide = np.float64 if np.issubdtype(flat.dtype, np.floating) else np.int64
        pixel_min, pixel_max = pixel_min.astype(wide), pixel_max.astype(wide)
        frames.append(
            pd.DataFrame(
                {
                    "sample_id": digits.sample_ids,
                    "split": split,
                    "label": digits.labels,
                    "height": np.full(n, height, dtype=np.int64),
                    "width": np.full(n, width, dtype=np.int64),
                    "pixel_min": pixel_min,
                    "pixel_max": pixel_max,
                    "n_null": np.asarray(nulls, dtype=np.int64),
                    "n_non_integer": np.asarray(non_integer, dtype=np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def row_hashes(images: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each image's bytes (vectorised, a chunk of rows at a time: the products
    are as large as the images; equal images hash equal)."""
    width = int(np.prod(images.shape[1:], dtype=np.int64)) * images.dtype.itemsize
    flat = np.ascontiguousarray(images).view(np.uint8).reshape(len(images), width)
    padding = (-flat.shape[1]) % 8
    multipliers = np.random.default_rng(0x5EED).integers(
        1, 2**63, size=(width + padding) // 8, dtype=np.uint64
    ) | np.uint64(1)
    mixed = np.empty(len(flat), np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(flat), CHUNK_ROWS):
            chunk = flat[start : start + CHUNK_ROWS]
            if padding:
                chunk = np.pad(chunk, ((0, 0), (0, padding)))
            mixed[start : start + CHUNK_ROWS] = (chunk.view(np.uint64) * multipliers).sum(axis=1, dtype=np.uint64)
        mixed ^= mixed >> np.uint64(31)
        mixed *= np.uint64(0x9E3779B97F4A7C15)
    return mixed ^ (mixed >> np.uint64(29))


def blank_count(images: np.ndarray) -> int:
    """Images whose every pixel is 0 (NaN is not 0, so a row with missing pixels is not blank)."""
    flat = images.reshape(len(images), int(np.prod(images.shape[1:], dtype=np.int64)))
    inked = sum(int(np.count_nonzero(np.any(flat[start : start + CHUNK_ROWS] != 0, axis=1)))
                for start in range(0, len(flat), CHUNK_ROWS))
    return len(flat) - inked


def pixel_counts(images: np.ndarray) -> np.ndarray:
    """``(pixels, 256)`` int64: how many images have each value at each pixel, counted 2,048
    images at a time (an int64 index per pixel: 13 MB). Any statistic of a function of the pixels
    comes from it exactly, with no float copy of the images, whatever the chunking."""
    flat = images.reshape(len(images), -1)
    if flat.dtype != np.uint8:
        raise ValueError(f"pixel counts need uint8 images, got {flat.dtype}")
    width = flat.shape[1]
    offsets = np.arange(width, dtype=np.int64) * 256
    counts = np.zeros(width * 256, np.int64)
    for start in range(0, len(flat), PIXEL_COUNT_ROWS):
        counts += np.bincount((flat[start : start + PIXEL_COUNT_ROWS] + offsets).ravel(), minlength=width * 256)
    return counts.reshape(width, 256)


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are byte-for-byte identical: (split, row) of each copy."""

    members: tuple[tuple[str, int], ...]

    @property
    def splits(self) -> set[str]:
        return {split for split, _ in self.members}


def duplicate_groups(splits: dict[str, Digits]) -> list[DuplicateGroup]:
    """Every group of exactly identical images, within and across splits."""
    names = [n for n in SPLITS if n in splits]
    hashes = np.concatenate([row_hashes(splits[n].images) for n in names])
    owners = np.concatenate([np.full(len(splits[n]), i) for i, n in enumerate(names)])
    rows = np.concatenate([np.arange(len(splits[n])) for n in names])
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    boundaries = np.flatnonzero(np.diff(sorted_hashes)) + 1
    groups = []
    for block in np.split(order, boundaries):
        if len(block) < 2:
            continue
        # Equal hashes nominate; exact bytes decide (split into truly equal subgroups).
        remaining = list(block)
        while remaining:
            first = remaining[0]
            reference = splits[names[owners[first]]].images[rows[first]]
            same = [i for i in remaining if np.array_equal(splits[names[owners[i]]].images[rows[i]], reference)]
            taken = set(same)
            remaining = [i for i in remaining if i not in taken]
            if len(same) > 1:
                groups.append(DuplicateGroup(tuple((names[owners[i]], int(rows[i])) for i in same)))
    return groups


def count_duplicates(splits: dict[str, Digits], groups: list[DuplicateGroup] | None = None) -> dict[str, int]:
    """Exact duplicate images (from :func:`duplicate_groups`): per split, the copies of an image
    already in it; and the test images that also occur in train or validation (the leak that
    matters for an honest test score)."""
    groups = duplicate_groups(splits) if groups is None else groups
    counts = {f"within_{name}": 0 for name in splits}
    leaked = 0
    for group in groups:
        for name in group.splits:
            counts[f"within_{name}"] += sum(split == name for split, _ in group.members) - 1
        if "test" in group.splits and group.splits - {"test"}:
            leaked += sum(split == "test" for split, _ in group.members)
    counts["test_in_train_or_validation"] = leaked
    return counts


def split_summary(
    splits: dict[str, Digits], source_rows: dict[str, int], duplicates: dict[str, int]
) -> "pd.DataFrame":
    """A one-row frame of dataset-level figures that validation checks against bounds: per split
    and for the whole dataset (``all``) the class shares, and per split how far its shares are
    from the whole's (``class_share_gap``: splits drawn by content are not exactly stratified)."""
    import pandas as pd

    row: dict[str, float] = {}
    counts = {name: np.array(list(splits[name].class_counts().values())) for name in SPLITS}
    total = sum(counts.values())
    whole = total / max(total.sum(), 1)
    row["class_share_min_all"], row["class_share_max_all"] = float(whole.min()), float(whole.max())
    for name in SPLITS:
        digits = splits[name]
        shares = counts[name] / max(len(digits), 1)
        row[f"rows_{name}"] = len(digits)
        row[f"classes_present_{name}"] = int((counts[name] > 0).sum())
        row[f"class_share_min_{name}"] = float(shares.min())
        row[f"class_share_max_{name}"] = float(shares.max())
        row[f"class_share_gap_{name}"] = float(np.abs(shares - whole).max())
        rows = max(len(digits), 1)
        row[f"blank_share_{name}"] = blank_count(digits.images) / rows
        row[f"duplicate_share_{name}"] = duplicates[f"within_{name}"] / rows
    for name, rows in source_rows.items():
        row[f"source_rows_{name}"] = rows
    test_rows = max(len(splits["test"]), 1)
    row["test_duplicates"] = duplicates["test_in_train_or_validation"]
    row["test_duplicate_share"] = duplicates["test_in_train_or_validation"] / test_rows
    return pd.DataFrame([row])


def hashed_meaning(meaning: dict) -> dict:
    """What of a ``Meaning.as_dict()`` a version is: the known dataset and the class names (where
    the names came from is recorded, not hashed: the same names are the same meaning)."""
    return {"known_dataset": meaning["known_dataset"], "class_names": list(meaning["class_names"])}


def content_version(splits: dict[str, Digits], meaning: dict) -> str:
    """The dataset version: a hash of exactly what is published and what it means (the known
    dataset and the class names, ``Meaning.as_dict()``): same data and meaning, same version;
    one version, one meaning."""
    digest = hashlib.sha256(f"mnist-pipeline dataset v{DATASET_FORMAT_VERSION}".encode())
    digest.update(json.dumps(hashed_meaning(meaning), sort_keys=True).encode())
    for name in SPLITS:
        digits = splits[name]
        digest.update(f"|{name}|{len(digits)}|{digits.images.shape}|".encode())
        for array in (digits.sample_ids, digits.labels, digits.images):
            digest.update(np.ascontiguousarray(array))  # its bytes, without a copy of them
    return digest.hexdigest()[:16]


def source_fingerprint(file_checksums: dict[str, str], split: SplitSettings, meaning: dict) -> str:
    """A hash of the raw inputs, what they mean and the split settings: an unchanged source is
    not decoded again."""
    settings = split.model_dump(include={"seed", "validation_fraction", "test_fraction"})
    payload = json.dumps(
        {"format": DATASET_FORMAT_VERSION, "files": file_checksums, "split": settings,
         "meaning": hashed_meaning(meaning)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def class_counts(splits: dict[str, Digits]) -> dict[str, dict[str, int]]:
    return {
        name: {str(k): v for k, v in splits[name].class_counts().items()} for name in SPLITS
    }


def build_manifest(
    *,
    version: str,
    source: Source,
    splits: dict[str, Digits],
    split_settings: SplitSettings,
    meaning: dict,
    schema: dict[str, str],
    validation: ValidationSummary,
    duplicates: dict[str, int],
    parts: list[PartRecord] | None,
    created_at: str,
    code_version: str,
    library_versions: dict[str, str],
) -> Manifest:
    """Everything needed to judge a dataset version without opening its Parquet files."""
    return Manifest(
        version=version, format_version=DATASET_FORMAT_VERSION, created_at=created_at, source=source,
        source_fingerprint=source.fingerprint, rows={name: len(splits[name]) for name in SPLITS},
        class_counts=class_counts(splits),
        # What the data is (Meaning.as_dict()): a known dataset or None, and the class names.
        known_dataset=meaning["known_dataset"], class_names=tuple(meaning["class_names"]),
        class_names_from=meaning["named_by"], image_shape=tuple(splits["train"].images.shape[1:]),
        split=split_settings, schema=schema, validation=validation, duplicates=duplicates,
        parts=tuple(parts) if parts is not None else None, code_version=code_version,
        library_versions=library_versions,
    )
