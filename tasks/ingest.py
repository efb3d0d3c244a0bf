"""Prefect tasks of the ingest stage: fetch, decode, validate, publish.

Each task is a thin wrapper: the work happens in :mod:`mnist_pipeline.tasks.core` (pure) and :mod:`mnist_pipeline.storage`
(all I/O). No task caches or persists its result (see ``tasks/options.py``): an unchanged source is never
decoded twice because the flow finds its version in storage by fingerprint first.
"""

import datetime
from dataclasses import dataclass

from mnist_pipeline.storage import datasets as dataset_store
from mnist_pipeline.storage import raw as raw_store
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.core import batches as batch_folder
from mnist_pipeline.tasks.core import dataset, download, lineage, sources, validation
from mnist_pipeline.tasks.core.decode import check_file_size, decode_source
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.errors import SourceError, TransientDownloadError
from mnist_pipeline.tasks.core.records import Source, SourceFile, SplitSettings, ValidationSummary
from mnist_pipeline.tasks.options import STORAGE_IS_THE_CACHE
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger


@dataclass(frozen=True)
class FetchedSource:
    source: str
    files: tuple[SourceFile, ...]
    meaning: sources.Meaning  # what the files are, decided from their content
    layout: sources.Layout
    # A batch source's batches, in name order (their files are among ``files``); the other files
    # are the published dataset's (none for batches alone).
    batches: tuple[batch_folder.Batch, ...] = ()
    from_batch_folder: bool = False  # a batch source (which may hold no batch yet)

    def checksums(self) -> dict[str, str]:
        return {f.role: f.sha256 for f in self.files}

    def base_name(self) -> str:
        """What messages and the manifest call the files that are not batches."""
        return self.meaning.known or self.source


@dataclass(frozen=True)
class Decoded:
    splits: dict[str, Digits]
    source_rows: dict[str, int]  # rows per official split, before carving validation/test
    parts: tuple[batch_folder.Part, ...]  # the published dataset and each batch: their sample ids


@dataclass(frozen=True)
class Validated:
    report: validation.ValidationReport
    duplicates: dict[str, int]


SOURCE_VARIABLE, DEFAULT_SOURCE = "mnist_source", "mnist"


def source_or_variable(source: str | None) -> str:
    """``source`` itself, or for None the Prefect Variable ``mnist_source`` (else mnist), checked."""
    if source is not None:
        return source
    from prefect.variables import Variable

    value = Variable.get(SOURCE_VARIABLE, default=DEFAULT_SOURCE)
    try:
        return str(sources.SourceSpec.parse(str(value)))
    except SourceError as error:
        raise SourceError(f"the Prefect Variable {SOURCE_VARIABLE} holds {value!r}: {error} Set it again with "
                          f"`prefect variable set {SOURCE_VARIABLE} idx:DIR --overwrite`") from None


def source_name(source: str | None) -> str:
    """A short name of the source for run names (the folder or file name of idx: and csv:)."""
    try:
        return source_or_variable(source).split("/")[-1]
    except Exception:  # a run name never fails a run; resolve_source reports the problem
        return "unknown-source"


@task(name="resolve-source", **STORAGE_IS_THE_CACHE)
def resolve_source(source: str | None) -> str:
    """The source this run reads: the configured one, else the Prefect Variable mnist_source, else mnist."""
    chosen = source_or_variable(source)
    if source is None:
        get_run_logger().info("source %s (the Prefect Variable %s, or the default when it is unset)",
                              chosen, SOURCE_VARIABLE)
    return chosen


def _retry_only_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry network failures that may pass, nothing else."""
    try:
        state.result()
    except TransientDownloadError:
        return True
    except Exception:
        return False
    return False


@task(
    name="fetch-source",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=_retry_only_transient,
    **STORAGE_IS_THE_CACHE,
)
def fetch_source(source: str, store: Store, extra_mirrors: list[str], max_images: int,
                 class_names: list[str] | None = None) -> FetchedSource:
    """Locate or download the source's raw files (downloads go to the immutable raw store) and
    recognise what they are from their content. Local files too large for ``max_images`` images
    per split are refused before being read."""
    logger = get_run_logger()
    spec = sources.SourceSpec.parse(source)
    published = spec.published()
    files = _published_files(published, store.root, extra_mirrors, max_images) if published else {}
    meaning = sources.meaning_of(spec, {role: data for role, (_, data) in files.items()},
                                 tuple(class_names) if class_names else None, _declared_class_names(spec),
                                 {role: entry.sha256 for role, (entry, _) in files.items()})
    if meaning.known and meaning.known != (spec.base or spec.kind):
        logger.info("%s holds %s (recognised by the files' checksums): its class names and recipe apply",
                    spec, meaning.known)
    found = ()
    if spec.kind == sources.BATCHES:
        found = tuple(batch_folder.find_batches(raw_store.list_folder(spec.location), spec.location))
        if not found and not spec.base:
            raise SourceError(f"the batch folder {spec.location} holds no batch yet; put the first one there "
                              f"({batch_folder.BATCH_FORMS})")
        folder = spec.location.rstrip("/")
        files |= _local_files({role: f"{folder}/{name}" for batch in found for role, name in batch.roles().items()},
                              max_images)
        logger.info("%d batch(es) in %s: %s", len(found), spec.location, ", ".join(b.name for b in found) or "none")
    raw = tuple(entry for entry, _ in files.values())
    return FetchedSource(str(spec), raw, meaning, sources.layout_of(spec, meaning), found,
                         spec.kind == sources.BATCHES)


def _published_files(spec: sources.SourceSpec, root: StorageRoot, extra_mirrors: list[str],
                     max_images: int) -> dict[str, tuple[SourceFile, bytes]]:
    """The raw files of a source that is not a batch folder: a known dataset's (from the system's
    copy, the raw store or a mirror) or the user's own IDX folder or CSV file."""
    if spec.kind == "mnist-sample":
        return _local_files({"train_csv": sources.find_mnist_sample()}, max_images)
    if spec.known:
        system_copy = sources.find_system_copy(spec.known)
        if system_copy:
            get_run_logger().info("Using the system copy of %s in %s", spec.kind, spec.known.system_dirs[0])
            return _local_files(system_copy, max_images)
        return _download_known(root, spec.known, list(extra_mirrors))
    if spec.kind == "idx":
        return _local_files(sources.find_idx_files(spec.location), max_images)
    return _local_files({"train_csv": spec.location}, max_images)


def _declared_class_names(spec: sources.SourceSpec) -> tuple[str, ...] | None:
    """The class names of ``classes.txt`` beside the user's own data, if there is one."""
    path = spec.declared_class_names_file()
    if path is None or not raw_store.is_file(path):
        return None
    text = raw_store.read_input(path).decode("utf-8", errors="replace")
    return sources.parse_class_names_file(text, path)


def _local_files(paths: dict[str, str], max_images: int) -> dict[str, tuple[SourceFile, bytes]]:
    files = {}
    for role, path in paths.items():
        check_file_size(role, raw_store.size_of(path), max_images, path)
        data = raw_store.read_input(path)
        files[role] = (SourceFile(role=role, name=path.rsplit("/", 1)[-1], url=path, origin=path,
                                  sha256=raw_store.sha256_of(data), bytes=len(data)), data)
    return files


def _download_known(
    root: StorageRoot, known: sources.KnownDataset, extra_mirrors: list[str]
) -> dict[str, tuple[SourceFile, bytes]]:
    logger = get_run_logger()
    files = {}
    for remote in known.files:
        algorithm, digest = remote.checksum.algorithm, remote.checksum.hexdigest
        stored = raw_store.find_raw(root, algorithm, digest, remote.filename)
        if stored is None:
            fetched = download.download(
                remote.filename, remote.checksum, [*extra_mirrors, *known.mirrors]
            )
            stored = raw_store.store_raw(root, algorithm, digest, remote.filename, fetched.data)
            data, origin = fetched.data, fetched.url
            logger.info("Downloaded %s from %s", remote.filename, fetched.url)
        else:
            data, origin = raw_store.read_input(stored), "raw store"
        files[remote.role] = (
            SourceFile(role=remote.role, name=remote.filename, url=stored, origin=origin,
                       sha256=raw_store.sha256_of(data), bytes=len(data)), data
        )
    return files


@task(name="find-existing-version", **STORAGE_IS_THE_CACHE)
def find_existing_version(store: Store, fingerprint: str) -> str | None:
    """The version already published from these exact raw files and settings, if any."""
    return dataset_store.find_by_fingerprint(store.root, fingerprint)


@task(name="verify-version", task_run_name="verify-{version}", **STORAGE_IS_THE_CACHE)
def verify_version(store: Store, version: str) -> list[str]:
    """What is wrong with a published version's files (empty when each matches its checksum)."""
    damage = dataset_store.verify_dataset(store.root, version)
    for problem in damage:
        get_run_logger().warning("dataset %s: %s", version, problem)
    return damage


@task(name="decode", **STORAGE_IS_THE_CACHE)
def decode(
    fetched: FetchedSource, validation_fraction: float, test_fraction: float, seed: int, max_images: int
) -> Decoded:
    """Decode the raw files (at most ``max_images`` per official split, and per batch), assemble a
    batch source's batches on top of its published dataset, and split the images into train /
    validation / test by their content."""
    files = {f.role: raw_store.read_input(f.url) for f in fetched.files}
    batch_roles = {role for batch in fetched.batches for role in batch.roles()}
    published = {role: data for role, data in files.items() if role not in batch_roles}
    official = decode_source(fetched.layout, published, fetched.source, max_images) if published else None
    added = batch_folder.decode_batches(list(fetched.batches), files, max_images)
    assembled = batch_folder.assemble(official, fetched.base_name(), added)
    splits = dataset.split_source(assembled.official, validation_fraction, test_fraction, seed)
    return Decoded(splits, {name: len(d) for name, d in assembled.official.items()}, assembled.parts)


@task(name="validate", **STORAGE_IS_THE_CACHE)
def validate(decoded: Decoded, source: str, bounds: validation.Bounds) -> Validated:
    """Run the Great Expectations suite; raise, naming what failed, unless every check passes."""
    checked = validation.check_splits(decoded.splits, decoded.source_rows, bounds, decoded.parts)
    create_markdown_artifact(
        key=artifact_key("dataset-validation"),
        markdown=validation.markdown(source, checked),
        description=f"Great Expectations result for {source}",
    )
    validation.check(checked.report, source)
    return Validated(checked.report, checked.duplicates)


@dataclass(frozen=True)
class Ingested:
    """What ingesting a source gave: its dataset version, and how it came to be."""

    version: str
    # reused: this exact source was ingested before and its files check out (nothing decoded);
    # published: a new version; unchanged: decoded again (--force), same as the intact stored copy;
    # repaired: the stored copy was damaged and has been written again.
    status: str

    @property
    def reused(self) -> bool:
        return self.status == REUSED


REUSED = "reused"


@task(name="publish", **STORAGE_IS_THE_CACHE)
def publish(
    store: Store,
    fetched: FetchedSource,
    decoded: Decoded,
    validated: Validated,
    fingerprint: str,
    split_settings: SplitSettings,
) -> Ingested:
    """Write the validated dataset version (atomically); its id and what publishing did
    (published, unchanged: an intact copy exists, or repaired: a damaged copy was replaced)."""
    logger = get_run_logger()
    splits = {name: dataset.to_uint8(d) for name, d in decoded.splits.items()}
    meaning = fetched.meaning.as_dict()
    version = dataset.content_version(splits, meaning)
    report = validated.report
    statistics = {name: r["statistics"] for name, r in report.results.items()}
    manifest = dataset.build_manifest(
        version=version,
        source=Source(spec=fetched.source, files=fetched.files, fingerprint=fingerprint),
        splits=splits,
        split_settings=split_settings.model_copy(update={"official_test_split": "test" in decoded.source_rows}),
        meaning=meaning,
        schema={f.name: str(f.type) for f in dataset_store.SCHEMA},
        validation=ValidationSummary(success=report.success, statistics=statistics),
        duplicates=validated.duplicates,
        parts=batch_folder.parts_manifest(decoded.parts, fetched.batches, fetched.files)
        if fetched.from_batch_folder else None,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        code_version=lineage.code_version(),
        library_versions=lineage.library_versions(),
    )
    status = dataset_store.publish_dataset(store.root, version, splits, manifest, report.results, report.data_docs)
    logger.info("Dataset %s: %s", version, {
        dataset_store.PUBLISHED: "published",
        dataset_store.UNCHANGED: "an intact copy already exists; nothing written",
        dataset_store.REPAIRED: "the damaged copy in storage was replaced",
    }[status])
    return Ingested(version, status)
