"""Decoding a fetched source's bytes into its official splits, within size limits.

``max_images`` bounds every official split. It is enforced three times, each as early as it can
be: on a file's size before it is read (:func:`max_file_bytes`), while decompressing (a small gzip
that would expand to gigabytes stops at the limit), and on the decoded images.
"""

from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.errors import SourceError
from mnist_pipeline.tasks.core.idx import decode_idx_pair, gunzip_if_needed
from mnist_pipeline.tasks.core.sources import IDX_IMAGES_HEADER, IDX_LABELS_HEADER, IMAGE_BYTES, Layout

# A CSV row is at most 784 "255," and a label: about 3.2 kB, whatever the separators.
CSV_BYTES_PER_IMAGE = 3_200
CSV_HEADER_BYTES = 16_384
LIMIT_HINT = "raise `max_images_per_split` in the ingest settings (--max-images-per-split) if it really is that large"


def max_file_bytes(role: str, max_images: int) -> int:
    """The most bytes a (decompressed) source file of ``role`` may hold for ``max_images`` images."""
    if role.endswith("images"):
        return IDX_IMAGES_HEADER + max_images * IMAGE_BYTES
    if role.endswith("labels"):
        return IDX_LABELS_HEADER + max_images
    return CSV_HEADER_BYTES + max_images * CSV_BYTES_PER_IMAGE


def check_file_size(role: str, size: int, max_images: int, name: str) -> None:
    """Refuse a file too large to hold at most ``max_images`` images, before reading it.
    (A gzip file never compresses to less than 1/1032 of its data, so only the bound matters.)"""
    limit = max_file_bytes(role, max_images)
    if size > limit:
        raise SourceError(f"{name} is {size:,} bytes, more than the {limit:,} bytes {max_images:,} images "
                          f"per split can take; {LIMIT_HINT}")


def check_split_sizes(official: dict[str, Digits], max_images: int, name: str) -> None:
    for split, digits in official.items():
        if len(digits) > max_images:
            raise SourceError(f"{name}: the {split} split holds {len(digits):,} images, more than "
                              f"max_images_per_split = {max_images:,}; {LIMIT_HINT}")


def decode_source(layout: Layout, files: dict[str, bytes], name: str, max_images: int = 1_000_000) -> dict[str, Digits]:
    """``{"train": ..., "test": ...}`` for IDX sources, ``{"train": ...}`` for CSV sources."""
    if layout != "idx":
        data = gunzip_if_needed(files["train_csv"], name, max_file_bytes("train_csv", max_images))
        official = {"train": decode_digits_csv(data, name, layout="kaggle" if layout == "kaggle-csv" else "label-last")}
        check_split_sizes(official, max_images, name)
        return official
    payloads = {role: gunzip_if_needed(data, f"{name} {role}", max_file_bytes(role, max_images))
                for role, data in files.items()}
    train = decode_idx_pair(payloads["train_images"], payloads["train_labels"], f"{name} train")
    test = decode_idx_pair(
        payloads["test_images"], payloads["test_labels"], f"{name} test", first_id=len(train)
    )
    official = {"train": train, "test": test}
    check_split_sizes(official, max_images, name)
    return official
