"""Evaluations under ``evaluations/<model id>/<dataset version>/`` and prediction files.

Layout of one evaluation::

    evaluations/<model id>/<dataset version>/metrics.json          written last
    evaluations/<model id>/<dataset version>/predictions.parquet   sample_id, predicted, confidence, correct
    evaluations/<model id>/<dataset version>/probabilities.npy     (n, classes) float32, in the same row order
    evaluations/<model id>/<dataset version>/report.md
    evaluations/<model id>/<dataset version>/report.html            self-contained: metrics and every figure
    evaluations/<model id>/<dataset version>/*.png                  confusion matrix, reliability, errors
"""

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from mnist_pipeline.storage.datasets import IMAGE_BYTES, image_array
from mnist_pipeline.storage.raw import open_input
from mnist_pipeline.storage.root import StorageRoot, is_directory_url, open_url_atomic
from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE, Digits, concat
from mnist_pipeline.tasks.core.errors import InputError
from mnist_pipeline.tasks.core.parquet_digits import image_pixels

AREA = "evaluations"
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
PROBABILITIES = "probabilities.npy"
REPORT_HTML = "report.html"
# Rows of a Parquet file scored at a time (`mnist predict --output`): about 40 MB of images, and
# a multiple of the torch families' scoring batch of 2,048.
SCORE_BATCH_ROWS = 49_152
READ_BUFFER_BYTES = 1 << 20


def evaluation_dir(root: StorageRoot, model_id: str, dataset_version: str) -> str:
    return root.join(AREA, model_id, dataset_version)


def find_evaluation(root: StorageRoot, model_id: str, dataset_version: str) -> dict | None:
    path = f"{evaluation_dir(root, model_id, dataset_version)}/{METRICS}"
    return json.loads(root.read_bytes(path)) if root.exists(path) else None


def write_evaluation(
    root: StorageRoot, model_id: str, dataset_version: str, metrics: dict, figures: dict[str, bytes],
    report_md: str, report_html: str, predictions: dict[str, np.ndarray], probabilities: np.ndarray,
    force: bool = False,
) -> str:
    """Write an evaluation atomically; returns the URL of its directory. ``probabilities`` (one
    row per prediction) are kept so that an ensemble of the model is evaluated without scoring
    the split again."""
    final = evaluation_dir(root, model_id, dataset_version)
    root.remove_stale_staging(AREA)
    with root.staging_dir(AREA) as staging:
        for name, png in figures.items():
            with root.fs.open(f"{staging}/{name}.png", "wb") as handle:
                handle.write(png)
        with root.fs.open(f"{staging}/{PREDICTIONS}", "wb") as handle:
            pq.write_table(pa.table(predictions), handle, compression="zstd")
        with root.fs.open(f"{staging}/{PROBABILITIES}", "wb") as handle:
            np.save(handle, np.asarray(probabilities, dtype=np.float32), allow_pickle=False)
        with root.fs.open(f"{staging}/report.md", "w", encoding="utf-8") as handle:
            handle.write(report_md)
        with root.fs.open(f"{staging}/{REPORT_HTML}", "w", encoding="utf-8") as handle:
            handle.write(report_html)
        with root.fs.open(f"{staging}/{METRICS}", "w", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics, indent=2) + "\n")
        root.publish_dir(staging, final, commit_file=METRICS, replace=force)
    return root.url_of(final)


def read_predictions(root: StorageRoot, model_id: str, dataset_version: str) -> dict[str, np.ndarray]:
    path = f"{evaluation_dir(root, model_id, dataset_version)}/{PREDICTIONS}"
    with root.fs.open(path, "rb") as handle:
        table = pq.read_table(handle)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def read_probabilities(root: StorageRoot, model_id: str, dataset_version: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The sample ids and calibrated probabilities of a stored evaluation (None when it has none)."""
    folder = evaluation_dir(root, model_id, dataset_version)
    if not root.exists(f"{folder}/{METRICS}") or not root.exists(f"{folder}/{PROBABILITIES}"):
        return None
    with root.fs.open(f"{folder}/{PROBABILITIES}", "rb") as handle:
        probabilities = np.load(handle, allow_pickle=False)
    return read_predictions(root, model_id, dataset_version)["sample_id"], probabilities


def read_figures(root: StorageRoot, model_id: str, dataset_version: str) -> dict[str, bytes]:
    """The evaluation's figures (PNG bytes by name)."""
    folder = evaluation_dir(root, model_id, dataset_version)
    return {entry.rsplit("/", 1)[1][:-4]: root.read_bytes(entry)
            for entry in sorted(root.fs.ls(folder, detail=False)) if entry.endswith(".png")}


def report_url(root: StorageRoot, model_id: str, dataset_version: str) -> str | None:
    """The URL of the evaluation's HTML report (None for evaluations stored before it existed)."""
    path = f"{evaluation_dir(root, model_id, dataset_version)}/{REPORT_HTML}"
    return root.url_of(path) if root.exists(path) else None


# -- files users score with `mnist predict` / the predict flow ---------------------------------
def read_images_parquet(url: str) -> Digits:
    """Digits from a Parquet file: this pipeline's schema (``image`` as 784 bytes), or an
    ``image`` column of 784-long lists; ``sample_id`` and ``label`` are optional."""
    batches = list(iter_images_parquet(url))
    return batches[0] if len(batches) == 1 else concat(batches)


def iter_images_parquet(url: str, batch_rows: int | None = None) -> Iterator[Digits]:
    """:func:`read_images_parquet` in batches of at most ``batch_rows`` rows (SCORE_BATCH_ROWS by
    default), read from the file as they are needed: memory stays bounded however many rows it
    holds (one batch, at least, even for an empty file)."""
    batch_rows = batch_rows or SCORE_BATCH_ROWS
    with open_input(url) as handle:
        try:
            # Without pre-buffering: pyarrow's read-ahead cache otherwise keeps every row group
            # it read (a million-row file grew the process by 300 MB; with this, 340 MB peak).
            parquet = pq.ParquetFile(handle, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
        except pa.ArrowException as error:
            raise InputError(f"{url} is not a readable Parquet file ({error})") from error
        columns = parquet.schema_arrow.names
        if "image" not in columns:
            raise InputError(f"{url} has no `image` column (columns: {', '.join(columns)}); "
                             "write the 784 pixels of each image as fixed_size_binary(784) or a list of 784 ints")
        wanted = [name for name in ("sample_id", "label", "image") if name in columns]
        first = 0
        batches = parquet.iter_batches(batch_size=batch_rows, columns=wanted)
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as error:
                raise InputError(f"{url}: rows from {first:,} on cannot be read ({error}); the file is "
                                 "truncated or damaged, so write it again") from error
            if batch is None:
                break
            yield _digits_of(pa.Table.from_batches([batch]), url, first)
            first += batch.num_rows
        if first == 0:
            yield _digits_of(parquet.schema_arrow.empty_table().select(wanted), url, 0)


def _digits_of(table: pa.Table, url: str, first: int) -> Digits:
    """The digits of rows ``first``.. of a Parquet file of images (default sample ids: row numbers)."""
    n = table.num_rows
    if "sample_id" not in table.column_names:
        table = table.append_column("sample_id", pa.array(np.arange(first, first + n), pa.int64()))
    if "label" not in table.column_names:
        table = table.append_column("label", pa.array(np.zeros(n, np.uint8)))
    if table.column("sample_id").null_count:
        row = first + int(np.flatnonzero(table.column("sample_id").is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{url}: row {row:,} has no sample_id (null); give every row an id, or leave the "
                         "column out to number the rows")
    column = table.column("image")
    if column.null_count:
        rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
        ids = table.column("sample_id").to_numpy()[rows]
        more = f" and {len(rows) - 1:,} more" if len(rows) > 1 else ""
        raise InputError(f"{url}: row {first + rows[0]:,} (sample_id {ids[0]}){more} has no image (null); every "
                         "row needs its 784 pixels, so remove or fill those rows")
    try:
        pixels = image_pixels(column)
    except ValueError as error:
        raise InputError(f"{url}: {error}; write the 784 pixels of each image as fixed_size_binary(784) or a "
                         "list of 784 ints") from None
    if n and pixels.dtype != np.uint8 and (pixels.min() < 0 or pixels.max() > 255):
        raise InputError(f"{url}: `image` must hold pixel values in 0..255, found {pixels.min():g}..{pixels.max():g}")
    return Digits(pixels.reshape(n, *IMAGE_SHAPE).astype(np.uint8, copy=False),
                  table.column("label").to_numpy().astype(np.uint8), table.column("sample_id").to_numpy())


def check_prediction_output(input_url: str, output_url: str) -> None:
    """Refuse an output that is a directory or the input itself (scoring never overwrites its input)."""
    import fsspec

    if is_directory_url(output_url):
        raise InputError(f"--output {output_url} is a directory; name the file to write, e.g. "
                         f"{output_url.rstrip('/')}/predictions.parquet")
    fs, path = fsspec.core.url_to_fs(output_url)
    input_fs, input_path = fsspec.core.url_to_fs(input_url)
    if fs.protocol == input_fs.protocol and _real(fs, path) == _real(input_fs, input_path):
        raise InputError(f"--output {output_url} is the input file {input_url}; predictions never overwrite "
                         "the images they score: choose another output path")


def _real(fs, path: str) -> str:
    return os.path.realpath(path) if isinstance(fs, LocalFileSystem) else fs._strip_protocol(path)


@contextmanager
def prediction_writer(url: str) -> Iterator[Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], None]]:
    """A function that appends a batch of predictions (columns, the ``(n, classes)``
    probabilities, and the ``(n, 28, 28)`` images they score) to the Parquet file at ``url``:
    written to a temporary file beside it, moved into place when the block ends, removed if it
    raises (never half a file at ``url``). With the images in it, the file is a batch of
    labelled data once a person adds a corrected ``label`` column (see tasks/core/batches.py)."""
    with open_url_atomic(url) as handle:
        writer: pq.ParquetWriter | None = None

        def write(columns: dict[str, np.ndarray], probabilities: np.ndarray, images: np.ndarray) -> None:
            nonlocal writer
            table = pa.table(columns).append_column("probabilities", pa.FixedSizeListArray.from_arrays(
                pa.array(probabilities.reshape(-1), pa.float32()), probabilities.shape[1]))
            table = table.append_column(pa.field("image", pa.binary(IMAGE_BYTES), nullable=False), image_array(images))
            if writer is None:
                writer = pq.ParquetWriter(handle, table.schema, compression="zstd")
            elif table.schema != writer.schema:  # e.g. a batch of other id types than the first
                table = table.cast(writer.schema)
            writer.write_table(table)

        try:
            yield write
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # raising here removes the temporary file: no empty non-Parquet file
            raise ValueError(f"no predictions were written to {url}")
