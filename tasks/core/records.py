"""What the pipeline records, typed: a trained model's ``training.json`` and a dataset version's
``manifest.json``. ``storage/`` writes them as JSON and reads them back through these models, so
that every reader names a field, never a string key. The JSON keeps the names the previous
release wrote and read (it reads these files too), and a file an earlier release wrote is read
with the defaults below standing for what it did not record.
"""

from mnist_pipeline.tasks.core.models.base import RowPlan
from mnist_pipeline.tasks.core.recipe import Recipe
from pydantic import BaseModel, ConfigDict, Field, model_validator

# The splits a model learns from: it trains on one and chooses (its step, its temperature) on the other.
SEEN_SPLITS = ("train", "validation")


class Record(BaseModel):
    # Keys a later release adds are kept out of the way, not refused: files outlive releases.
    model_config = ConfigDict(frozen=True, extra="ignore")


class FileChecksum(Record):
    sha256: str
    bytes: int


class Subset(Record):
    """How many rows of train / validation a model saw, by subset (None: the whole split)."""

    train_rows: int | None = None
    validation_rows: int | None = None

    @property
    def smoke(self) -> bool:
        """A smoke model trains on a subset of its train split (briefly): a set-up check, never production."""
        return self.train_rows is not None


class Seen(Record):
    """The images a model has seen: these splits of this dataset version."""

    dataset_version: str
    splits: tuple[str, ...] = SEEN_SPLITS


class Member(Record):
    """One model of an ensemble, and how much it counts."""

    model_id: str
    family: str
    weight: float


class TrainedOn(Record):
    """Where a model trained: the machine and process, and the Dask worker (None: not on Dask)."""

    host: str
    pid: int
    dask_worker: str | None = None


class Calibration(Record):
    """The validation-fitted temperature, and the validation ECE before and after it."""

    temperature: float
    validation_ece_before: float
    validation_ece_after: float


class TrainingRecord(Record):
    """Everything the registry and a person need to know about how a model came to be."""

    model_id: str = ""  # given by storage when the model is written
    family: str
    config: dict  # the family's config as trained (its JSON form)
    seed: int
    dataset_version: str
    # The problem the model solves: what promotion compares and prediction names classes by.
    source: str = ""
    class_names: tuple[str, ...] = ()
    subset: Subset = Subset()
    smoke: bool = False  # from ``subset`` (one rule: Subset.smoke)
    rows: dict[str, int] = Field(default_factory=dict)  # rows trained and validated on
    # The images it has seen: promotion never compares it on any of them.
    seen: Seen | None = None
    # How many rows a family that plans its own cost chose, and why (the SVM's RowPlan).
    row_plan: RowPlan | None = None
    validation_accuracy: float
    steps: int | None = None
    best_step: int | None = None
    stopped_early: str | None = None
    calibration: Calibration | None = None
    history: tuple[dict, ...] = ()
    train_seconds: float = 0.0
    threads: int = 1
    device: str = "cpu"  # where it computed (devices.describe): the CPU, or a GPU by name
    trained_at: str = ""
    model_code: str = ""
    code_version: str = "unknown"
    libraries: dict[str, str] = Field(default_factory=dict)
    recipe: Recipe | None = None  # the dataset's recipe its config was made with
    members: tuple[Member, ...] = ()  # an ensemble's
    trained_on: TrainedOn | None = None
    files: dict[str, FileChecksum] = Field(default_factory=dict)  # the model's files, checked on load
    outputs: dict[str, FileChecksum] = Field(default_factory=dict)  # what it computed once (validation.npy)

    @model_validator(mode="before")
    @classmethod
    def _earlier_releases(cls, data):
        """What a record of an earlier release leaves out: whether it was a smoke model (from its
        subset) and the images it saw (its dataset version's train and validation splits)."""
        if isinstance(data, dict):
            data = dict(data)
            if "smoke" not in data:
                data["smoke"] = Subset.model_validate(data.get("subset") or {}).smoke
            if not data.get("seen") and "dataset_version" in data:
                data["seen"] = {"dataset_version": data["dataset_version"]}
        return data

    def as_json(self) -> dict:
        return self.model_dump(mode="json")

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)


class SourceFile(Record):
    """A raw file a dataset version was made from: its role, where it was read, where it came
    from, its SHA-256 and size."""

    role: str
    name: str
    url: str = ""
    origin: str = ""
    sha256: str
    bytes: int


class Source(Record):
    spec: str  # the --source it came by
    files: tuple[SourceFile, ...] = ()
    fingerprint: str = ""  # of the raw files' checksums, what they mean and the split settings


class SplitSettings(Record):
    seed: int
    validation_fraction: float
    test_fraction: float
    official_test_split: bool = False


class SplitFile(Record):
    """A split's Parquet file: checked against these on every read."""

    sha256: str
    bytes: int
    rows: int


class ValidationSummary(Record):
    success: bool
    statistics: dict = Field(default_factory=dict)  # per suite, Great Expectations' counts


class PartFile(Record):
    name: str
    sha256: str
    bytes: int


class PartRecord(Record):
    """One part of a batch source (its published dataset, or one batch), as its manifest lists it."""

    name: str
    files: tuple[PartFile, ...] = ()
    rows: int
    first_sample_id: int
    duplicates_left_out: int = 0


class Repair(Record):
    at: str
    problems: tuple[str, ...]


class Manifest(Record):
    """Everything needed to judge a dataset version without opening its Parquet files (its
    ``manifest.json``, written last: a version exists iff it has one)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    version: str
    format_version: int = 1
    created_at: str
    source: Source
    source_fingerprint: str | None = None
    rows: dict[str, int] = Field(default_factory=dict)
    class_counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    # What the data is: a known dataset or None, and the class names and what named them.
    known_dataset: str | None = None
    class_names: tuple[str, ...] = ()
    class_names_from: str = "the labels"
    image_shape: tuple[int, ...] = (28, 28)
    split: SplitSettings | None = None
    arrow_schema: dict[str, str] = Field(default_factory=dict, alias="schema")
    validation: ValidationSummary | None = None
    duplicates: dict[str, int] = Field(default_factory=dict)
    # A batch source's parts, in order: its published dataset (if any) and each batch.
    parts: tuple[PartRecord, ...] | None = None
    code_version: str = "unknown"
    library_versions: dict[str, str] = Field(default_factory=dict)
    split_files: dict[str, SplitFile] = Field(default_factory=dict)  # added when published
    repaired: Repair | None = None  # when a damaged copy was written again

    def as_json(self) -> dict:
        """The JSON form, with the keys an earlier release wrote (``schema``), and without the
        optional sections this version does not have."""
        absent = {name for name in ("parts", "repaired") if getattr(self, name) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=absent)

    @property
    def validated(self) -> bool:
        return bool(self.validation and self.validation.success)
