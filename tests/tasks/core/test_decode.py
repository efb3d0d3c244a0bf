"""Every decoder and validator error case, raised by the pure core as the ingest flow calls it:
decode a source's files, split them, run the Great Expectations suite (no Prefect, no storage)."""

import gzip

import numpy as np
import pytest

from mnist_pipeline.flows.config import IngestSettings
from mnist_pipeline.tasks.core import dataset, sources, validation
from mnist_pipeline.tasks.core.decode import decode_source
from mnist_pipeline.tasks.core.errors import InputError, SourceError, ValidationFailed
from mnist_pipeline.tasks.core.idx import encode_idx
from tests.conftest import kaggle_csv, make_digits, write_idx_folder


def idx_case(tmp_path, mutate):
    folder = tmp_path / "bad-idx"
    write_idx_folder(folder, make_digits(30, seed=1), make_digits(10, seed=2), gzipped=False)
    mutate(folder)
    return f"idx:{folder}"


def rewrite(folder, name, transform):
    path = folder / name
    path.write_bytes(transform(path.read_bytes()))


def csv_case(tmp_path, transform):
    lines = kaggle_csv(make_digits(20, seed=3)).splitlines()
    path = tmp_path / "train.csv"
    path.write_text("\n".join(transform(lines)) + "\n")
    return f"csv:{path}"


def set_cell(lines, row, column, value):
    cells = lines[row].split(",")
    cells[column] = value
    lines[row] = ",".join(cells)
    return lines


def truncated_gzip(folder):
    data = gzip.compress((folder / "train-images-idx3-ubyte").read_bytes())
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])


def label_ten(folder):
    labels = make_digits(30, seed=1).labels.copy()
    labels[7] = 10
    (folder / "train-labels-idx1-ubyte").write_bytes(encode_idx(labels))


def not_28x28(folder):
    images = np.random.default_rng(0).integers(0, 255, (300, 32, 32), dtype=np.uint8)
    (folder / "train-images-idx3-ubyte").write_bytes(encode_idx(images))


def same_image_everywhere(folder, pixel: int):
    """Every training image identical (all ``pixel``), labels still spread over the ten classes."""
    images = np.full((300, 28, 28), pixel, dtype=np.uint8)
    (folder / "train-images-idx3-ubyte").write_bytes(encode_idx(images))


def decode_and_validate(source: str) -> validation.CheckedSplits:
    """What the ingest flow's fetch, decode and validate tasks do with a local source."""
    spec = sources.SourceSpec.parse(source)
    paths = sources.find_idx_files(spec.location) if spec.kind == "idx" else {"train_csv": spec.location}
    files = {role: open(path, "rb").read() for role, path in paths.items()}
    meaning = sources.meaning_of(spec, files, None, None)
    settings = IngestSettings()
    official = decode_source(sources.layout_of(spec, meaning), files, source, settings.max_images_per_split)
    splits = dataset.split_source(official, settings.validation_fraction, settings.test_fraction, settings.seed)
    bounds = settings.bounds(meaning.expected_rows)
    checked = validation.check_splits(splits, {name: len(d) for name, d in official.items()}, bounds)
    validation.check(checked.report, source)
    return checked


# Read by the flow's end-to-end test too (a representative few of these through Prefect).
BAD_INPUTS = {
    "truncated gzip": (lambda t: idx_case(t, truncated_gzip), SourceError, "gzip stream is truncated"),
    "wrong magic": (
        lambda t: idx_case(t, lambda f: rewrite(f, "train-images-idx3-ubyte", lambda b: b"\x00\x00\x08\x01" + b[4:])),
        SourceError, "magic number 0x00000801 declares 1 dimension",
    ),
    "count mismatch": (
        lambda t: idx_case(t, lambda f: (f / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(99, np.uint8)))),
        SourceError, "100 images but 99 labels",
    ),
    "label outside 0..9": (lambda t: idx_case(t, label_ten), ValidationFailed, "e.g. [10]"),
    "images not 28x28": (lambda t: idx_case(t, not_28x28), ValidationFailed, "column 'height'"),
    "empty idx file": (
        lambda t: idx_case(t, lambda f: (f / "t10k-images-idx3-ubyte").write_bytes(b"")),
        SourceError, "is empty",
    ),
    "csv missing column": (
        lambda t: csv_case(t, lambda ls: [line.rsplit(",", 1)[0] for line in ls]),
        SourceError, "missing column(s) pixel783",
    ),
    "csv extra column": (
        lambda t: csv_case(t, lambda ls: [ls[0] + ",note", *[line + ",1" for line in ls[1:]]]),
        SourceError, "unexpected column(s) note",
    ),
    "csv NaN": (lambda t: csv_case(t, lambda ls: set_cell(ls, 4, 300, "NaN")), ValidationFailed, "column 'n_null'"),
    "csv pixel 256": (lambda t: csv_case(t, lambda ls: set_cell(ls, 4, 300, "256")), ValidationFailed, "e.g. [256"),
    "csv pixel -1": (lambda t: csv_case(t, lambda ls: set_cell(ls, 4, 300, "-1")), ValidationFailed, "e.g. [-1"),
    "csv text": (
        lambda t: csv_case(t, lambda ls: set_cell(ls, 4, 300, "dark")),
        SourceError, "column 'pixel299' holds text 'dark' in data row 4",
    ),
    "empty csv": (lambda t: csv_case(t, lambda ls: []), SourceError, "is empty"),
    "blank images": (lambda t: idx_case(t, lambda f: same_image_everywhere(f, 0)), ValidationFailed,
                     "column 'blank_share_train'"),
    "one image repeated": (lambda t: idx_case(t, lambda f: same_image_everywhere(f, 200)), ValidationFailed,
                           "column 'duplicate_share_train'"),
    "csv is a directory": (lambda t: f"csv:{t}", InputError, "is a directory, not a file"),
    # Too few rows to split: the validation rule that says so, not a traceback.
    "csv with 3 rows": (lambda t: csv_case(t, lambda ls: ls[:4]), ValidationFailed, "column 'rows_test'"),
    "csv with 20 rows": (lambda t: csv_case(t, lambda ls: ls[:21]), ValidationFailed, "column 'rows_validation'"),
}


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if BAD_INPUTS[c][1] is not InputError])
def test_each_bad_input_is_one_clear_error_of_the_core(case, tmp_path):
    make_source, error, fragment = BAD_INPUTS[case]
    with pytest.raises(error) as caught:
        decode_and_validate(make_source(tmp_path))
    assert fragment in str(caught.value)


def test_a_good_source_passes_every_check(tmp_path):
    checked = decode_and_validate(idx_case(tmp_path, lambda folder: None))
    assert checked.report.success and checked.duplicates["test_in_train_or_validation"] == 0


def test_the_validation_artifact_shows_each_split_and_what_failed(tmp_path):
    checked = decode_and_validate(idx_case(tmp_path, lambda folder: None))
    page = validation.markdown("idx:digits", checked)
    assert page.startswith("# Dataset validation passed\nSource: `idx:digits`")
    assert [row["split"] for row in validation.splits_table(checked).records()] == ["train", "validation", "test"]
    train = validation.splits_table(checked).records()[0]["rows"]
    assert f"| train | {train} |" in page and "Failed expectations" not in page
    with pytest.raises(ValidationFailed) as caught:
        decode_and_validate(idx_case(tmp_path / "bad", label_ten))
    assert "e.g. [10]" in str(caught.value)


def test_a_file_too_large_for_the_limit_is_refused_by_its_size_before_it_is_read():
    from mnist_pipeline.tasks.core.decode import check_file_size, max_file_bytes

    limit = max_file_bytes("train_images", 100)
    assert limit == 16 + 100 * 784 and max_file_bytes("train_labels", 100) == 8 + 100
    check_file_size("train_images", limit, 100, "train-images-idx3-ubyte")  # exactly the limit: fine
    with pytest.raises(SourceError, match=r"train-images-idx3-ubyte is 78,417 bytes, more than the 78,416 bytes "
                                          r"100 images per split can take; raise `max_images_per_split`"):
        check_file_size("train_images", limit + 1, 100, "train-images-idx3-ubyte")


@pytest.mark.parametrize("layout", ["idx", "kaggle-csv"])
def test_more_images_in_a_split_than_the_limit_are_refused_after_decoding(layout, tmp_path):
    write_idx_folder(tmp_path, make_digits(3, seed=1), make_digits(1, seed=2), gzipped=False)
    files = ({"train_csv": kaggle_csv(make_digits(3, seed=1)).encode()} if layout == "kaggle-csv" else
             {role: (tmp_path / name).read_bytes() for role, name in (
                 ("train_images", "train-images-idx3-ubyte"), ("train_labels", "train-labels-idx1-ubyte"),
                 ("test_images", "t10k-images-idx3-ubyte"), ("test_labels", "t10k-labels-idx1-ubyte"))})
    with pytest.raises(SourceError, match=r"digits: the train split holds 30 images, more than "
                                          r"max_images_per_split = 29"):
        decode_source(layout, files, "digits", max_images=29)
    assert len(decode_source(layout, files, "digits", max_images=30)["train"]) == 30
