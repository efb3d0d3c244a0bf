"""Labelled data that accumulates: a folder (or object-store prefix) of batches.

A batch is one file or one pair of files of labelled images:

- ``NAME.csv`` (or ``.csv.gz``): Kaggle's layout, a header ``label,pixel0,...,pixel783``;
- ``NAME.parquet``: a ``label`` and an ``image`` column (see :mod:`parquet_digits`), such as
  ``mnist predict --output``'s file with a corrected ``label`` column added;
- ``NAME-images-idx3-ubyte`` and ``NAME-labels-idx1-ubyte`` (each optionally ``.gz``).

Every run takes every batch present, in name order (name them so that they sort in the order
they arrive, a date first), decodes each on its own (an error names the batch), and assembles
them, on top of a published dataset where the source names one, into one source. An image that
an earlier part already holds with the same label is counted and left out; with another label it
is an error naming both. Pure: names and bytes in, :class:`Digits` out.
"""

import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
from mnist_pipeline.tasks.core.dataset import row_hashes
from mnist_pipeline.tasks.core.decode import check_split_sizes, max_file_bytes
from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE, Digits, concat
from mnist_pipeline.tasks.core.errors import SourceError
from mnist_pipeline.tasks.core.idx import decode_idx_pair, gunzip_if_needed
from mnist_pipeline.tasks.core.parquet_digits import decode_parquet_digits
from mnist_pipeline.tasks.core.records import PartFile, PartRecord, SourceFile
from mnist_pipeline.tasks.core.sources import CLASS_NAMES_FILE

BatchKind = Literal["csv", "parquet", "idx"]
BATCH_FORMS = ("NAME.csv[.gz] (Kaggle's layout), NAME.parquet (`label` and `image` columns) or the pair "
               "NAME-images-idx3-ubyte[.gz] and NAME-labels-idx1-ubyte[.gz]")
_IDX_PAIR = re.compile(r"^(?P<stem>.+)-(?P<what>images|labels)[-.]idx(?P<ndim>[13])-ubyte(\.gz)?$", re.IGNORECASE)
ROLE_PREFIX = "batch "


@dataclass(frozen=True)
class Batch:
    """One batch of a batch folder: its name and its files, by role (csv, parquet, images, labels)."""

    name: str  # the file's name, or the IDX pair's common stem
    kind: BatchKind
    files: tuple[tuple[str, str], ...]  # (role, file name)

    def roles(self) -> dict[str, str]:
        """File name by source role: the keys a fetched source gives each raw file."""
        return {f"{ROLE_PREFIX}{self.name} {role}": filename for role, filename in self.files}


def find_batches(names: list[str], folder: str) -> list[Batch]:
    """The batches among the file names of a batch folder, in name order. ``classes.txt`` and
    hidden files (an upload in progress) are not batches; any other file is an error that names
    it, so that no data is left out unnoticed."""
    singles, pairs, strangers = [], {}, []
    for name in sorted(names):
        lower = name.lower()
        if name.startswith(".") or name == CLASS_NAMES_FILE:
            continue
        if lower.endswith((".csv", ".csv.gz")):
            singles.append(Batch(name, "csv", (("csv", name),)))
        elif lower.endswith((".parquet", ".pq")):
            singles.append(Batch(name, "parquet", (("parquet", name),)))
        elif match := _IDX_PAIR.match(name):
            what = match["what"].lower()
            if (what == "images") != (match["ndim"] == "3"):
                strangers.append(f"{name} (images are idx3, labels idx1)")
                continue
            pair = pairs.setdefault(match["stem"], {})
            if what in pair:  # the same file plain and gzipped: which one is the batch?
                strangers.append(f"{name} (beside {pair[what]}: keep one of them)")
                continue
            pair[what] = name
        else:
            strangers.append(name)
    for stem, files in sorted(pairs.items()):
        if set(files) != {"images", "labels"}:
            have, lacks = next(iter(files.items())), "labels" if "labels" not in files else "images"
            strangers.append(f"{have[1]} (no {lacks} file {stem}-{lacks}-idx{'1' if lacks == 'labels' else '3'}-ubyte[.gz] beside it)")
            continue
        singles.append(Batch(stem, "idx", (("images", files["images"]), ("labels", files["labels"]))))
    if strangers:
        raise SourceError(f"the batch folder {folder} holds {', '.join(strangers)}, which is not a batch; a batch is "
                          f"{BATCH_FORMS}: rename or remove it (hidden files are skipped)")
    return sorted(singles, key=lambda batch: batch.name)


def decode_batch(batch: Batch, files: dict[str, bytes], max_images: int) -> Digits:
    """One batch's labelled images (ids 0..n-1), from its files' bytes by role (:meth:`Batch.roles`)."""
    data = {role.rsplit(" ", 1)[1]: files[role] for role in batch.roles()}
    name = f"batch {batch.name}"
    if batch.kind == "idx":
        payloads = {role: gunzip_if_needed(value, f"{name} {role}", max_file_bytes(role, max_images))
                    for role, value in data.items()}
        digits = decode_idx_pair(payloads["images"], payloads["labels"], name)
    elif batch.kind == "csv":
        digits = decode_digits_csv(gunzip_if_needed(data["csv"], name, max_file_bytes("csv", max_images)), name)
    else:
        digits = decode_parquet_digits(data["parquet"], name)
    check_split_sizes({"batch": digits}, max_images, name)
    if digits.images.shape[1:] != IMAGE_SHAPE:
        raise SourceError(f"{name} holds {'x'.join(map(str, digits.images.shape[1:]))} images; 28x28 are expected")
    return _as_pixels(digits)


def _as_pixels(digits: Digits) -> Digits:
    """The batch with uint8 images when every value is a pixel (a CSV decodes to int64, a list
    column to float64: assembled with a uint8 dataset, those would widen all of it to 8 bytes a
    pixel); values that are not pixels are kept as they are, for validation to name."""
    images = digits.images
    if images.dtype == np.uint8:
        return digits
    with np.errstate(invalid="ignore"):
        pixels = images.astype(np.uint8)
    if not np.array_equal(pixels, images):  # NaN, a fraction, or out of 0..255
        return digits
    return Digits(pixels, digits.labels, digits.sample_ids)


def decode_batches(batches: list[Batch], files: dict[str, bytes], max_images: int) -> list[tuple[str, Digits]]:
    """Every batch decoded, with its name; a batch that cannot be is an error naming it (and every
    other such batch), raised before anything is assembled."""
    decoded, problems = [], []
    for batch in batches:
        try:
            decoded.append((batch.name, decode_batch(batch, files, max_images)))
        except SourceError as error:
            problems.append(str(error))
    if problems:
        raise SourceError("; ".join(problems) + f"; nothing was published: fix or remove {'that batch' if len(problems) == 1 else 'those batches'} "
                          "(it stays in its folder until you do) and run again")
    return decoded


@dataclass(frozen=True)
class Part:
    """What one part of a source (its published base, or one batch) gave: the sample ids its rows
    got (``first_id`` on, in order), and how many were left out as copies of earlier parts'."""

    name: str
    first_id: int
    rows: int
    duplicates: int = 0  # exact copies (same pixels, same label) of an image an earlier part holds
    batch: bool = False  # a batch (else the published dataset the batches are added to)

    @property
    def kept(self) -> int:
        return self.rows - self.duplicates

    def holds(self, sample_ids: np.ndarray) -> np.ndarray:
        """Which of ``sample_ids`` are this part's."""
        return (sample_ids >= self.first_id) & (sample_ids < self.first_id + self.rows)


@dataclass(frozen=True)
class Assembled:
    """A source's published splits (``train``, ``test`` where it has one) and the rows ``added``
    to them, or, without a published dataset, the batches as ``train``; and its parts."""

    official: dict[str, Digits]
    parts: tuple[Part, ...]


def assemble(base: dict[str, Digits] | None, base_name: str, batches: list[tuple[str, Digits]]) -> Assembled:
    """One source from a published ``base`` (its official splits, or None) and named batches.

    Sample ids continue from part to part (the base's first, then each batch's rows in order), so
    an image keeps its id while later batches arrive. An image that an earlier part holds with
    the same label is left out of the later batch (and counted there); with another label, in
    another part or in the same batch, it is a :class:`SourceError` naming both."""
    parts: list[Part] = []
    next_id = 0
    official: dict[str, Digits] = {}
    if base is not None:
        rows = sum(len(d) for d in base.values())
        parts.append(Part(base_name, 0, rows))
        official, next_id = {name: _as_pixels(digits) for name, digits in base.items()}, rows
    if not batches:
        return Assembled(official, tuple(parts))
    seen = _Seen()
    for digits in official.values():  # the published dataset's splits
        seen.add(parts[0].name, digits.images, digits.labels, digits.sample_ids)
    kept = []
    for name, digits in batches:
        part = Part(f"batch {name}", next_id, len(digits), batch=True)
        copies, hashes = seen.copies_in(part.name, digits)
        keep = np.flatnonzero(~copies)
        digits = Digits(digits.images[keep], digits.labels[keep], keep + next_id)
        seen.add(part.name, digits.images, digits.labels, keep, None if hashes is None else hashes[keep])
        kept.append(digits)
        parts.append(replace(part, duplicates=int(copies.sum())))
        next_id += part.rows
    official["added" if base is not None else "train"] = concat(kept)
    return Assembled(official, tuple(parts))


def parts_manifest(parts: tuple[Part, ...], batches: tuple[Batch, ...], files: tuple[SourceFile, ...]) -> list[PartRecord]:
    """What a batch source's manifest says of its parts, in order: each one's files (from the
    source's ``files``, by role) with their checksums, its rows, first sample id, and the copies of
    earlier parts' images it repeats (left out)."""
    by_role = {f.role: PartFile(name=f.name, sha256=f.sha256, bytes=f.bytes) for f in files}
    roles = {f"batch {batch.name}": set(batch.roles()) for batch in batches}
    batch_roles = set().union(*roles.values()) if roles else set()
    return [PartRecord(name=part.name, files=tuple(by_role[role] for role in sorted(roles[part.name] if part.batch
                                                                                      else set(by_role) - batch_roles)),
                       rows=part.rows, first_sample_id=part.first_id, duplicates_left_out=part.duplicates)
            for part in parts]


class _Seen:
    """The images of the parts assembled so far, by a hash of their pixels (valid pixels only: an
    image whose values are not pixels is never a copy, and validation names it). Each part's
    hashes are sorted once, when it is added, not again for every later batch."""

    def __init__(self) -> None:
        # Per part: its name, the row of each image in it, its hashes sorted, the order that
        # sorts them, its images and labels.
        self.parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, part: str, images: np.ndarray, labels: np.ndarray, rows: np.ndarray,
            hashes: np.ndarray | None = None) -> None:
        if images.dtype == np.uint8:
            hashes = row_hashes(images) if hashes is None else hashes
            order = np.argsort(hashes)
            self.parts.append((part, rows, hashes[order], order, images, labels))

    def copies_in(self, part: str, digits: Digits) -> tuple[np.ndarray, np.ndarray | None]:
        """Which rows of a batch an earlier part holds already, with the same label, and the
        batch's hashes (None: not pixels); the same image with another label (there, or twice in
        this batch) is an error naming both rows."""
        copies = np.zeros(len(digits), bool)
        if digits.images.dtype != np.uint8:
            return copies, None
        hashes = row_hashes(digits.images)
        _check_labels_within(part, digits, hashes)
        for other, rows, sorted_hashes, order, images, labels in self.parts:
            found = np.searchsorted(sorted_hashes, hashes)
            for row in np.flatnonzero(np.isin(hashes, sorted_hashes)):
                position = found[row]  # equal hashes nominate (each in turn); equal bytes decide
                while position < len(order) and sorted_hashes[position] == hashes[row]:
                    index = order[position]
                    if np.array_equal(images[index], digits.images[row]):
                        if labels[index] != digits.labels[row]:
                            raise _conflict(other, rows[index], labels[index], part, row, digits.labels[row])
                        copies[row] = True
                        break
                    position += 1
        return copies, hashes


def _check_labels_within(part: str, digits: Digits, hashes: np.ndarray) -> None:
    """The same image twice in one batch with two labels is an error (copies with one label are
    duplicates, which validation counts)."""
    order = np.argsort(hashes, kind="stable")
    for first, second in zip(order[:-1], order[1:]):
        if hashes[first] == hashes[second] and digits.labels[first] != digits.labels[second] \
                and np.array_equal(digits.images[first], digits.images[second]):
            raise _conflict(part, first, digits.labels[first], part, second, digits.labels[second])


def _conflict(part: str, row: int, label, other_part: str, other_row: int, other_label) -> SourceError:
    return SourceError(f"the same image has label {_label(label)} in {part} (row {int(row) + 1:,}) and label "
                       f"{_label(other_label)} in {other_part} (row {int(other_row) + 1:,}); correct the wrong one "
                       "(or remove it) and run again")


def _label(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
