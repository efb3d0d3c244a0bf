"""Dataset versions: Parquet splits, manifest and validation result under ``datasets/<version>/``.

Layout of one version::

    datasets/<version>/train.parquet        sample_id int64, label uint8, image fixed_size_binary(784)
    datasets/<version>/validation.parquet
    datasets/<version>/test.parquet
    datasets/<version>/validation/result.json   Great Expectations results
    datasets/<version>/validation/*.html        Great Expectations Data Docs
    datasets/<version>/manifest.json            written last: a version exists iff it has one

The manifest records each Parquet file's SHA-256, size and row count; every read checks them, so
a truncated or edited split is a one-line error naming the file instead of wrong numbers, and
publishing the same version again replaces a damaged copy (``mnist ingest --force`` repairs).

Why one ``fixed_size_binary(784)`` column rather than 784 ``uint8`` columns: the image is one
buffer that numpy views without copying, writing and reading are 5-10x faster (see the
benchmark in the README), and DuckDB, Spark and pandas read it as a binary/BLOB column.
"""

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.dataset import DATASET_FORMAT_VERSION, FORMAT_CHANGES
from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE, SPLITS, Digits
from mnist_pipeline.tasks.core.errors import MnistError
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.records import Manifest, Repair, SplitFile

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


class DatasetNotFound(MnistError, LookupError):
    """No published dataset version matches a reference."""


class DatasetOutdated(MnistError):
    """A version published by an earlier release, whose data this release reads differently."""

    def __init__(self, manifest: Manifest) -> None:
        version, source, published = manifest.version, manifest.source.spec, manifest.format_version
        names = manifest.class_names
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        why = "; and ".join(FORMAT_CHANGES[f].format(class_names=shown) for f in sorted(FORMAT_CHANGES) if f > published)
        super().__init__(
            f"dataset version {version} was published by an earlier release (format {published}), and {why}. "
            f"Run `mnist ingest --source {source}` to publish the same images again as a current version, and "
            f"use that one (`mnist datasets` lists both)."
        )


def is_outdated(manifest: Manifest) -> bool:
    return manifest.format_version < DATASET_FORMAT_VERSION


class DatasetDamaged(MnistError):
    """A published split does not match what its manifest recorded."""

    def __init__(self, root: StorageRoot, manifest: Manifest, split: str, problem: str) -> None:
        path = root.url_of(f"{version_dir(root, manifest.version)}/{split}.parquet")
        self.problem = f"{path} {problem}"
        super().__init__(f"{self.problem}; run `mnist ingest --source {manifest.source.spec} --force` to repair "
                         f"dataset {manifest.version}")


# What publish_dataset did.
PUBLISHED, UNCHANGED, REPAIRED = "published", "unchanged", "repaired"


def to_table(digits: Digits) -> pa.Table:
    """A zero-copy Arrow table of validated (uint8) digits."""
    if digits.images.dtype != np.uint8 or digits.images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"only validated uint8 {IMAGE_SHAPE} images are stored, got "
            f"{digits.images.dtype} {digits.images.shape[1:]}"
        )
    return pa.Table.from_arrays(
        [pa.array(digits.sample_ids, pa.int64()), pa.array(digits.labels, pa.uint8()), image_array(digits.images)],
        schema=SCHEMA,
    )


def image_array(images: np.ndarray) -> pa.FixedSizeBinaryArray:
    """``(n, 28, 28)`` uint8 images as one ``fixed_size_binary(784)`` Arrow array, without a copy."""
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(IMAGE_BYTES), len(images),
                                                [None, pa.py_buffer(np.ascontiguousarray(images))])


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


def _split_buffer(digits: Digits) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(
        to_table(digits), sink, compression="zstd", use_dictionary=["label"],
        write_statistics=["sample_id", "label"],
    )
    return sink.getvalue()


def write_split_file(root: StorageRoot, path: str, digits: Digits) -> SplitFile:
    """Write one split's Parquet file; returns what the manifest records of it."""
    data = _split_buffer(digits)  # written and hashed from Arrow's buffer: no copy into bytes
    with root.fs.open(path, "wb") as handle:
        handle.write(data)
    return SplitFile(sha256=hashlib.sha256(data).hexdigest(), bytes=data.size, rows=len(digits))


def version_dir(root: StorageRoot, version: str) -> str:
    return root.join(AREA, version)


def publish_dataset(
    root: StorageRoot,
    version: str,
    splits: dict[str, Digits],
    manifest: Manifest,
    validation_results: dict,
    data_docs: dict[str, str],
) -> str:
    """Write a dataset version atomically: PUBLISHED, UNCHANGED (an intact copy exists: nothing
    is written) or REPAIRED (a damaged copy was replaced; it keeps its creation time).

    Everything is written into a staging directory first and then moved into place in one
    step, so a crash or a kill leaves no partial version behind.
    """
    final = version_dir(root, version)
    damage = None
    if root.exists(f"{final}/{MANIFEST}"):
        damage = verify_dataset(root, version)
        if not damage:
            return UNCHANGED
        previous = _read_manifest_or_none(root, version)
        manifest = manifest.model_copy(update={"created_at": previous.created_at if previous else manifest.created_at,
                                               "repaired": Repair(at=manifest.created_at, problems=tuple(damage))})
    root.remove_stale_staging(AREA)
    with root.staging_dir(AREA) as staging:
        files = {f"{name}.parquet": write_split_file(root, f"{staging}/{name}.parquet", splits[name])
                 for name in SPLITS}
        root.fs.makedirs(f"{staging}/validation", exist_ok=True)
        _write_text(root, f"{staging}/validation/result.json", _dumps(validation_results))
        for page, html in data_docs.items():
            _write_text(root, f"{staging}/validation/{page}.html", html)
        _write_text(root, f"{staging}/{MANIFEST}", _dumps(manifest.model_copy(update={"split_files": files}).as_json()))
        if damage:
            root.publish_dir(staging, final, commit_file=MANIFEST, replace=True)
            return REPAIRED
        # False: a concurrent writer published the same content first.
        return PUBLISHED if root.publish_dir(staging, final, commit_file=MANIFEST) else UNCHANGED


def verify_dataset(root: StorageRoot, version: str) -> list[str]:
    """What is wrong with a published version's splits (empty when every file checks out)."""
    manifest = _read_manifest_or_none(root, version)
    if manifest is None:
        return [f"{MANIFEST} is unreadable"]
    problems = []
    for split in SPLITS:
        try:
            _verified_bytes(root, manifest, split)
        except DatasetDamaged as error:
            problems.append(error.problem)
    return problems


def read_split(root: StorageRoot, version: str, split: str, outdated_ok: bool = False) -> Digits:
    """One split, after checking its file against the manifest (DatasetDamaged if it differs). A
    version of an earlier release's format is refused (DatasetOutdated) unless ``outdated_ok``:
    only to compare images with it (which a model trained on it has seen, what a newer version
    added since), never to train or score on."""
    return read_splits(root, version, (split,), outdated_ok)[0]


def read_splits(root: StorageRoot, version: str, splits: tuple[str, ...] = SPLITS,
                outdated_ok: bool = False) -> list[Digits]:
    """Several splits of a version, as :func:`read_split` reads each, with one read of its manifest."""
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}; expected one of {', '.join(SPLITS)}")
    manifest = read_manifest(root, version)
    if is_outdated(manifest) and not outdated_ok:
        raise DatasetOutdated(manifest)
    return [_verified_split(root, manifest, split) for split in splits]


def _verified_split(root: StorageRoot, manifest: Manifest, split: str) -> Digits:
    digits = from_table(pq.read_table(pa.BufferReader(_verified_bytes(root, manifest, split))))
    expected_rows = manifest.split_files[f"{split}.parquet"].rows
    if len(digits) != expected_rows:
        raise DatasetDamaged(root, manifest, split, f"holds {len(digits)} rows, not {expected_rows}")
    return digits


def _verified_bytes(root: StorageRoot, manifest: Manifest, split: str) -> bytes:
    name = f"{split}.parquet"
    recorded = manifest.split_files.get(name)
    if recorded is None:
        raise DatasetDamaged(root, manifest, split, "has no checksum in the manifest (published by an "
                             "earlier mnist-pipeline)")
    path = f"{version_dir(root, manifest.version)}/{name}"
    if not root.exists(path):
        raise DatasetDamaged(root, manifest, split, "is missing")
    data = root.read_bytes(path)
    if hashlib.sha256(data).hexdigest() != recorded.sha256:
        raise DatasetDamaged(root, manifest, split, f"does not match its SHA-256 in the manifest ({len(data):,} "
                             f"bytes, {recorded.bytes:,} recorded): it was modified or truncated")
    return data


def read_manifest(root: StorageRoot, version: str) -> Manifest:
    _require(root, version)
    return _parsed(root.read_bytes(f"{version_dir(root, version)}/{MANIFEST}"))


def _parsed(data: bytes) -> Manifest:
    return Manifest.model_validate(json.loads(data))


def _read_manifest_or_none(root: StorageRoot, version: str) -> Manifest | None:
    try:
        return read_manifest(root, version)
    except (DatasetNotFound, ValueError):
        return None


def list_manifests(root: StorageRoot) -> list[Manifest]:
    """Every published version's manifest, oldest first."""
    manifests = [_parsed(data) for data in root.read_commit_files(AREA, MANIFEST)]
    return sorted(manifests, key=lambda manifest: (manifest.created_at, manifest.version))


def resolve_version(root: StorageRoot, reference: str | None = None) -> str:
    """A full version id from a unique prefix, or the newest version when ``reference`` is None
    (the newest of this release's format, when there is one)."""
    manifests = list_manifests(root)
    versions = [manifest.version for manifest in manifests]
    if not versions:
        raise DatasetNotFound(
            f"no dataset in {root.url}; run `mnist ingest` first (or set --home / MNIST_HOME)."
        )
    if reference is None:
        current = [manifest.version for manifest in manifests if not is_outdated(manifest)]
        return (current or versions)[-1]
    matches = [v for v in versions if v.startswith(reference)]
    if len(matches) == 1:
        return matches[0]
    problem = "matches no" if not matches else f"is ambiguous between {', '.join(matches)}:"
    raise DatasetNotFound(
        f"dataset version {reference!r} {problem} version in {root.url}; "
        "`mnist datasets` lists them."
    )


def lineage_of(manifest: Manifest) -> Lineage:
    """The problem a dataset version poses: the known dataset it is (whatever source string
    brought it), else its source, and its class names."""
    return Lineage(manifest.known_dataset or manifest.source.spec, manifest.class_names)


def find_by_fingerprint(root: StorageRoot, fingerprint: str) -> str | None:
    """The version already ingested from exactly these raw files and split settings."""
    for manifest in reversed(list_manifests(root)):
        if manifest.source_fingerprint == fingerprint:
            return manifest.version
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
