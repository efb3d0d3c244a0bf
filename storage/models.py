"""Trained models under ``models/<model id>/``: the family's files plus ``training.json``.

Layout of one trained model::

    models/<model id>/model.json            family, config, what loading needs
    models/<model id>/weights.safetensors   (torch families) or model.skops (SVM)
    models/<model id>/validation.npy        its probabilities on the validation split (float32)
    models/<model id>/training.json         written last: lineage, fit report, file checksums

The model id is ``<family>-<hash>`` of everything that determines the model (dataset version,
config, seed, rows trained on, model code), so training the same thing twice finds the first
result instead of writing a second copy. Every file's SHA-256 is in ``training.json`` and checked
on load, so a truncated or tampered file is reported instead of being half-read.
"""

import hashlib
import io
import json

import numpy as np
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.errors import MnistError, ModelFileError
from mnist_pipeline.tasks.core.records import FileChecksum, TrainingRecord

AREA = "models"
RECORD = "training.json"
VALIDATION = "validation.npy"


class ModelNotFound(MnistError, LookupError):
    pass


def model_dir(root: StorageRoot, model_id: str) -> str:
    return root.join(AREA, model_id)


def find_trained(root: StorageRoot, model_id: str) -> TrainingRecord | None:
    """The training record of a stored model, or None when no complete copy exists."""
    path = f"{model_dir(root, model_id)}/{RECORD}"
    return _parsed(root.read_bytes(path)) if root.exists(path) else None


def _parsed(data: bytes) -> TrainingRecord:
    return TrainingRecord.model_validate(json.loads(data))


def read_record(root: StorageRoot, model_id: str) -> TrainingRecord:
    record = find_trained(root, model_id)
    if record is None:
        raise ModelNotFound(f"model {model_id!r} is not in {root.url}; `mnist train-all` trains models")
    return record


def write_trained(
    root: StorageRoot, model_id: str, files: dict[str, bytes], record: TrainingRecord, force: bool = False,
    validation_probabilities: np.ndarray | None = None,
) -> TrainingRecord:
    """Store a model's files and its record atomically; returns the record as stored.

    With ``force`` an existing copy (from a forced retrain) is swapped out in one step;
    without it an existing copy wins and is returned unchanged. ``validation_probabilities``
    (the model's output on the validation split it was chosen on) are kept beside the files,
    so combining models later need not score the validation split again.
    """
    if RECORD in files or VALIDATION in files:
        raise ValueError(f"{RECORD} and {VALIDATION} are reserved names")
    outputs = {}
    if validation_probabilities is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(validation_probabilities, dtype=np.float32), allow_pickle=False)
        outputs[VALIDATION] = buffer.getvalue()
    record = record.model_copy(update={"model_id": model_id, "files": _checksums(files), "outputs": _checksums(outputs)})
    final = model_dir(root, model_id)
    root.remove_stale_staging(AREA)
    with root.staging_dir(AREA) as staging:
        for name, data in {**files, **outputs}.items():
            if "/" in name:  # an ensemble keeps its members' files in folders of their own
                root.fs.makedirs(f"{staging}/{name.rsplit('/', 1)[0]}", exist_ok=True)
            with root.fs.open(f"{staging}/{name}", "wb") as handle:
                handle.write(data)
        with root.fs.open(f"{staging}/{RECORD}", "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record.as_json(), indent=2, sort_keys=True) + "\n")
        if not root.publish_dir(staging, final, commit_file=RECORD, replace=force):
            return read_record(root, model_id)
    return record


def read_validation_probabilities(root: StorageRoot, model_id: str,
                                  record: TrainingRecord | None = None) -> np.ndarray | None:
    """The model's probabilities on its validation split, checked (None if not kept); ``record``
    when the caller has already read it."""
    record = record or read_record(root, model_id)
    if VALIDATION not in record.outputs:
        return None
    data = _checked_files(root, model_id, record.outputs)[VALIDATION]
    return np.load(io.BytesIO(data), allow_pickle=False)


def read_model_files(root: StorageRoot, model_id: str, record: TrainingRecord | None = None) -> dict[str, bytes]:
    """A stored model's files, each checked against the checksum recorded at training time
    (``record``, when the caller has already read it)."""
    record = record or read_record(root, model_id)
    return _checked_files(root, model_id, record.files)


def _checksums(files: dict[str, bytes]) -> dict[str, FileChecksum]:
    return {name: FileChecksum(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)) for name, data in files.items()}


def _checked_files(root: StorageRoot, model_id: str, recorded: dict[str, FileChecksum]) -> dict[str, bytes]:
    files = {}
    for name, expected in recorded.items():
        path = f"{model_dir(root, model_id)}/{name}"
        if not root.exists(path):
            raise ModelFileError(f"model {model_id}: {root.url_of(path)} is missing; retrain the model")
        data = root.read_bytes(path)
        if hashlib.sha256(data).hexdigest() != expected.sha256:
            raise ModelFileError(
                f"model {model_id}: {root.url_of(path)} does not match the checksum recorded at "
                f"training ({len(data)} bytes, {expected.bytes} expected); the file was truncated "
                "or modified: restore it or retrain with --force"
            )
        files[name] = data
    return files


def list_trained(root: StorageRoot) -> list[TrainingRecord]:
    """Every stored model's training record, oldest first."""
    records = [_parsed(data) for data in root.read_commit_files(AREA, RECORD)]
    return sorted(records, key=lambda record: (record.trained_at, record.model_id))


def model_url(root: StorageRoot, model_id: str) -> str:
    return root.url_of(model_dir(root, model_id))
