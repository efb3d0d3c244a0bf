"""Decoding of labelled digits stored as Parquet: a ``label`` column and an ``image`` column.

The image column is what this pipeline writes (``fixed_size_binary(784)``, as in its datasets and
in ``mnist predict --output``'s files) or what other tools write: 784 bytes per row as plain
binary, or 784 numbers per row (a list, or 28 lists of 28). Other columns are ignored, so a
predictions file to which a person added a corrected ``label`` column is a batch as it is.

Values are kept as stored (labels as int64, or float64 where a label is fractional), so that
validation can name out-of-range values instead of this module silently casting them.
"""


import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE, Digits
from mnist_pipeline.tasks.core.errors import SourceError

N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


def image_pixels(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``(n, 784)`` pixel values of an ``image`` column without nulls: uint8 for bytes, float64
    for numbers. Raises ValueError saying what a row holds instead."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    if pa.types.is_fixed_size_binary(column.type) or pa.types.is_binary(column.type) \
            or pa.types.is_large_binary(column.type):
        if pa.types.is_fixed_size_binary(column.type) and column.type.byte_width == N_PIXELS:
            start = column.offset * N_PIXELS
            return np.frombuffer(column.buffers()[1], np.uint8)[start : start + n * N_PIXELS].reshape(n, N_PIXELS)
        values = column.to_pylist()
        wrong = next((row for row, value in enumerate(values) if len(value) != N_PIXELS), None)
        if wrong is not None:
            raise ValueError(f"row {wrong:,} of `image` holds {len(values[wrong])} bytes, not {N_PIXELS}")
        return np.frombuffer(b"".join(values), np.uint8).reshape(n, N_PIXELS)
    try:
        pixels = np.asarray(column.to_pylist(), dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`image` rows are not all {N_PIXELS} numbers ({error})") from None
    if n and pixels.reshape(n, -1).shape[1] != N_PIXELS:
        raise ValueError(f"`image` rows hold {pixels.shape[1:]} values each, not {N_PIXELS} (28x28)")
    return pixels.reshape(n, N_PIXELS)


def decode_parquet_digits(data: bytes, name: str) -> Digits:
    """Decode a Parquet file of labelled images into :class:`Digits` with ids 0..n-1."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as error:
        raise SourceError(f"{name} is not a readable Parquet file ({error}); write it again.") from error
    missing = [column for column in ("label", "image") if column not in table.column_names]
    if missing:
        raise SourceError(f"{name} has no {' or '.join(f'`{c}`' for c in missing)} column (columns: "
                          f"{', '.join(table.column_names) or 'none'}); a batch holds a `label` (0..9) and an "
                          f"`image` (784 pixels) per row")
    if table.num_rows == 0:
        raise SourceError(f"{name} holds no rows.")
    for column in ("label", "image"):
        nulls = np.flatnonzero(table.column(column).is_null().to_numpy(zero_copy_only=False))
        if len(nulls):
            more = f" and {len(nulls) - 1:,} more" if len(nulls) > 1 else ""
            raise SourceError(f"{name}: row {nulls[0]:,}{more} has no {column} (null); every row of a batch needs "
                              f"its {'label' if column == 'label' else '784 pixels'}, so fill or remove those rows")
    labels = table.column("label")
    if not (pa.types.is_integer(labels.type) or pa.types.is_floating(labels.type)):
        raise SourceError(f"{name}: `label` is {labels.type}, not a number; labels are the classes' numbers 0..9")
    labels = labels.to_numpy()
    try:
        pixels = image_pixels(table.column("image"))
    except ValueError as error:
        raise SourceError(f"{name}: {error}") from None
    return Digits(pixels.reshape(-1, *IMAGE_SHAPE),
                  labels.astype(np.int64) if labels.dtype.kind in "iu" else labels.astype(np.float64),
                  np.arange(table.num_rows, dtype=np.int64))
