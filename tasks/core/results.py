"""What the stages hand each other: typed, small, picklable values (pure: no Prefect, no storage).

A training task returns a :class:`TrainedModel` (or, for an ensemble that adds nothing, a
:class:`LeftOut`), an evaluation task an :class:`Evaluation`, scoring a :class:`Scored`; the
promotion decision is :class:`~mnist_pipeline.tasks.core.promotion.Decision`. The flows' outcomes
(:class:`PipelineOutcome` for ``train-all``) and every table (``tables.py``) are made of these,
so a field is named once. The registry's rows are typed here too (:class:`RegisteredModel`,
:class:`AliasChange`), so that what reads them needs no storage layer.
"""

from dataclasses import asdict, dataclass, field

from mnist_pipeline.tasks.core.eda.changes import DataChanges
from mnist_pipeline.tasks.core.promotion import Decision
from mnist_pipeline.tasks.core.records import TrainingRecord


@dataclass(frozen=True)
class TrainedModel:
    """A model of this run, trained now or found in storage: what the later stages need of it."""

    model_id: str
    family: str
    dataset_version: str
    validation_accuracy: float
    train_seconds: float
    steps: int | None  # optimizer (or fit) steps run, and the one whose weights were kept
    best_step: int | None
    stopped_early: str | None  # why training stopped before its schedule ended, if it did
    threads: int
    reused: bool  # found in storage: not trained by this run

    @classmethod
    def of(cls, record: TrainingRecord, reused: bool) -> "TrainedModel":
        """From a stored training record (``training.json``)."""
        return cls(record.model_id, record.family, record.dataset_version, record.validation_accuracy,
                   record.train_seconds, record.steps, record.best_step, record.stopped_early, record.threads, reused)

    @property
    def status(self) -> str:
        return "reused" if self.reused else f"trained in {self.train_seconds:.1f} s"


@dataclass(frozen=True)
class LeftOut:
    """A model fitted but not kept (an ensemble that does not beat its best member), and why."""

    family: str
    validation_accuracy: float
    reason: str


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on one dataset version's test split."""

    model_id: str
    family: str
    dataset_version: str
    accuracy: float
    macro_f1: float
    ece: float  # expected calibration error (calibrated: at the validation-fitted temperature)
    ece_uncalibrated: float | None  # the same before the temperature
    throughput: float | None  # images per second in batches of 1,000
    latency_ms: float | None  # one image
    size_kib: int
    validation_accuracy: float
    report: str | None  # URL of the HTML report

    @classmethod
    def of(cls, record: TrainingRecord, dataset_version: str, metrics: dict, report: str | None) -> "Evaluation":
        """From a training record and the stored evaluation metrics (``metrics.json``)."""
        return cls(
            model_id=record.model_id, family=record.family, dataset_version=dataset_version,
            accuracy=metrics["accuracy"], macro_f1=metrics["macro_f1"], ece=metrics["expected_calibration_error"],
            ece_uncalibrated=metrics.get("expected_calibration_error_uncalibrated"),
            throughput=metrics.get("throughput_images_per_s"), latency_ms=metrics.get("latency_ms_one_image"),
            size_kib=round(metrics["model_size_bytes"] / 1024), validation_accuracy=record.validation_accuracy,
            report=report,
        )

    def describe(self) -> str:
        """One line of its scores, for the terminal and the log."""
        uncalibrated = "" if self.ece_uncalibrated is None else f" ({self.ece_uncalibrated:.4f} uncalibrated)"
        speed = "" if self.throughput is None else f", {self.throughput:,.0f} images/s"
        latency = "" if self.latency_ms is None else f", {self.latency_ms:.2f} ms per image"
        return (f"test accuracy {self.accuracy:.4f}, macro F1 {self.macro_f1:.4f}, ECE {self.ece:.4f}{uncalibrated}"
                f"{speed}{latency}, {self.size_kib:,} KiB")


@dataclass(frozen=True)
class Scored:
    """A file of images scored into a file of predictions."""

    model_id: str
    rows: int  # predictions written
    output: str  # where


@dataclass(frozen=True)
class TrainOutcome:
    """What the ``train`` flow made of one dataset version, by family."""

    dataset_version: str
    trained: dict[str, TrainedModel]
    failed: dict[str, str] = field(default_factory=dict)  # family -> why it failed
    # Models fitted but not kept (an ensemble that does not beat its best member).
    left_out: dict[str, LeftOut] = field(default_factory=dict)

    def failure_message(self) -> str:
        return "training failed for " + "; ".join(f"{family} ({reason})" for family, reason in self.failed.items())


@dataclass(frozen=True)
class MirrorReport:
    """How bringing the MLflow mirror up to date went."""

    uri: str | None  # the tracking server; None: no mirror is configured
    error: str | None = None  # why the mirror is behind (None: it is up to date)
    runs_made: int = 0
    versions_made: int = 0
    aliases: tuple[str, ...] = ()  # "production: mnist-mnist v3", one per alias set

    @property
    def enabled(self) -> bool:
        return self.uri is not None

    @property
    def up_to_date(self) -> bool:
        return self.enabled and self.error is None

    def describe(self) -> str:
        """One line: what the mirror got, or that it is behind and how to catch it up."""
        if not self.enabled:
            return "no MLflow mirror (set MLFLOW_TRACKING_URI or --mlflow to keep one)"
        if self.error is not None:
            return (f"the MLflow mirror at {self.uri} is behind ({self.error}); "
                    "`mnist models sync-mlflow` brings it up to date")
        aliases = f"; {', '.join(self.aliases)}" if self.aliases else ""
        return (f"MLflow mirror at {self.uri} up to date: {self.runs_made} run(s) and "
                f"{self.versions_made} model version(s) added{aliases}")


@dataclass(frozen=True)
class PipelineOutcome:
    """What a ``train-all`` run (the ``mnist`` flow) made, stage by stage."""

    dataset_version: str
    dataset_reused: bool  # the source was ingested before: nothing decoded or written
    eda_report: str  # URL of the HTML report
    changes: DataChanges | None  # what the dataset changed since its previous version (None: no previous one)
    training: TrainOutcome
    evaluations: dict[str, Evaluation]  # on the test split, by family
    promotion: Decision | None  # None: nothing to promote
    mirror: MirrorReport  # the MLflow mirror, where one is configured


@dataclass(frozen=True)
class RegisteredModel:
    """A model version as the registry keeps it, with its evaluations and current aliases."""

    model_id: str
    family: str
    dataset_version: str
    seed: int
    config: dict  # the family's config, as trained
    code_version: str
    libraries: dict[str, str]
    train_seconds: float
    validation_accuracy: float
    artifact_url: str  # where its files are
    registered_at: str
    flow_run: str | None
    source: str  # lineage: the source of its dataset and the class names
    class_names: tuple[str, ...]
    smoke: bool
    card: str  # the markdown model card
    # Validation accuracy and the summary of its evaluation on its own dataset's test split.
    metrics: dict
    # Test accuracy and when it was measured, per dataset version it was evaluated on.
    evaluations: dict[str, "Evaluated"]
    aliases: tuple[str, ...]

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("accuracy")

    def as_json(self, card: bool = True) -> dict:
        """What ``mnist models list/show --json`` prints (``id`` is the model id again, for tools)."""
        shown = {"id": self.model_id, **asdict(self)}
        return shown if card else {k: v for k, v in shown.items() if k != "card"}


@dataclass(frozen=True)
class FlowRun:
    """A pipeline run (a Prefect flow run) as the registry keeps it: what registered a model."""

    id: str
    name: str | None = None
    url: str | None = None  # its page in the Prefect UI


@dataclass(frozen=True)
class Evaluated:
    accuracy: float
    evaluated_at: str


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias, as the history keeps it."""

    alias: str
    revision: int
    from_model: str | None
    to_model: str
    changed_at: str
    flow_run: str | None
    reason: str
    action: str  # promote, rollback or manual
