"""Dataset versions: Parquet splits, manifest and validation result under ``datasets/<version>/``.

Layout of one version::

    datasets/<version>/train.parquet        sample_id int64, label uint8, image fixed_size_binary(784)
    datasets/<version>/validation.parquet
    datasets/<version>/test.parquet
    datasets/<version>/validation/result.json   Great Expectations results
    datasets/<version>/validation/*.html        Great Expectations Data Docs
    datasets/<version>/manifest.json            written last: a version exists iff it has one

Why one ``fixed_size_binary(784)`` column rather than 784 ``uint8`` columns: the image is one
buffer that numpy views without copying, writing and reading are 5-10x faster (see the
benchmark in the README), and DuckDB, Spark and pandas read it as a binary/BLOB column.
"""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from storage.root import StorageRoot
from tasks.core.digits import IMAGE_SHAPE, SPLITS, Digits

AREA = "datasets"
MANIFEST = "manifest.json"
IMAGE_BYTES = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.int64(), nullable=False),
        pa.field("label", pa.uint8(), nullable=False),
        pa.field("image", pa.binary(IMAGE_BYTES), nullable=False),
    ],
    metadata={"mnist.image_shape": f"{IMAGE_SHAPE[0]},{IMAGE_SHAPE[1]}", "mnist.pixel": "uint8"},
)


class DatasetNotFound(LookupError):
    pass


def to_table(digits: Digits) -> pa.Table:
    """A zero-copy Arrow table of validated (uint8) digits."""
    if digits.images.dtype != np.uint8 or digits.images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"only validated uint8 {IMAGE_SHAPE} images are stored, got "
            f"{digits.images.dtype} {digits.images.shape[1:]}"
        )
    n = len(digits)
    images = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(IMAGE_BYTES), n, [None, pa.py_buffer(np.ascontiguousarray(digits.images))]
    )
    return pa.Table.from_arrays(
        [pa.array(digits.sample_ids, pa.int64()), pa.array(digits.labels, pa.uint8()), images],
        schema=SCHEMA,
    )


def from_table(table: pa.Table) -> Digits:
    """Digits from a table in :data:`SCHEMA` (images are a view of the Arrow buffer)."""
    images = table.column("image").combine_chunks()
    start = images.offset * IMAGE_BYTES
    buffer = np.frombuffer(images.buffers()[1], dtype=np.uint8)
    pixels = buffer[start : start + len(images) * IMAGE_BYTES].reshape(-1, *IMAGE_SHAPE)
    return Digits(
        pixels,
        table.column("label").to_numpy(),
        table.column("sample_id").to_numpy(),
    )


def write_split_file(root: StorageRoot, path: str, digits: Digits) -> None:
    with root.fs.open(path, "wb") as handle:
        pq.write_table(
            to_table(digits),
            handle,
            compression="zstd",
            use_dictionary=["label"],
            write_statistics=["sample_id", "label"],
        )


def version_dir(root: StorageRoot, version: str) -> str:
    return root.join(AREA, version)


def publish_dataset(
    root: StorageRoot,
    version: str,
    splits: dict[str, Digits],
    manifest: dict,
    validation_results: dict,
    data_docs: dict[str, str],
) -> bool:
    """Write a dataset version atomically; False when that version already exists.

    Everything is written into a staging directory first and then moved into place in one
    step, so a crash or a kill leaves no partial version behind.
    """
    final = version_dir(root, version)
    if root.exists(f"{final}/{MANIFEST}"):
        return False
    root.remove_stale_staging(AREA)
    with root.staging_dir(AREA) as staging:
        for name in SPLITS:
            write_split_file(root, f"{staging}/{name}.parquet", splits[name])
        root.fs.makedirs(f"{staging}/validation", exist_ok=True)
        _write_text(root, f"{staging}/validation/result.json", _dumps(validation_results))
        for page, html in data_docs.items():
            _write_text(root, f"{staging}/validation/{page}.html", html)
        _write_text(root, f"{staging}/{MANIFEST}", _dumps(manifest))
        return root.publish_dir(staging, final, commit_file=MANIFEST)


def read_split(root: StorageRoot, version: str, split: str) -> Digits:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = f"{version_dir(root, version)}/{split}.parquet"
    _require(root, version)
    with root.fs.open(path, "rb") as handle:
        return from_table(pq.read_table(handle))


def read_manifest(root: StorageRoot, version: str) -> dict:
    _require(root, version)
    return json.loads(root.read_bytes(f"{version_dir(root, version)}/{MANIFEST}"))


def list_manifests(root: StorageRoot) -> list[dict]:
    """Every published version's manifest, oldest first."""
    manifests = [json.loads(data) for data in root.read_commit_files(AREA, MANIFEST)]
    return sorted(manifests, key=lambda m: (m["created_at"], m["version"]))


def resolve_version(root: StorageRoot, reference: str | None = None) -> str:
    """A full version id from a unique prefix, or the newest version when ``reference`` is None."""
    versions = [m["version"] for m in list_manifests(root)]
    if not versions:
        raise DatasetNotFound(
            f"no dataset in {root.url}; run `mnist ingest` first (or set --home / MNIST_HOME)."
        )
    if reference is None:
        return versions[-1]
    matches = [v for v in versions if v.startswith(reference)]
    if len(matches) == 1:
        return matches[0]
    problem = "matches no" if not matches else f"is ambiguous between {', '.join(matches)}:"
    raise DatasetNotFound(
        f"dataset version {reference!r} {problem} version in {root.url}; "
        "`mnist datasets` lists them."
    )


def find_by_fingerprint(root: StorageRoot, fingerprint: str) -> str | None:
    """The version already ingested from exactly these raw files and split settings."""
    for manifest in reversed(list_manifests(root)):
        if manifest.get("source_fingerprint") == fingerprint:
            return manifest["version"]
    return None


def _require(root: StorageRoot, version: str) -> None:
    if not root.exists(f"{version_dir(root, version)}/{MANIFEST}"):
        raise DatasetNotFound(
            f"dataset version {version!r} is not in {root.url}; `mnist datasets` lists versions."
        )


def _write_text(root: StorageRoot, path: str, text: str) -> None:
    with root.fs.open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _dumps(value: dict) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
