"""The validated configuration objects the flows take (unknown keys are rejected)."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.core.sources import SourceSpec


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestSettings(Strict):
    """How a source becomes a dataset version: splits and the validation thresholds."""

    # Seeds the stratified validation (and, for CSV sources, test) split; part of the version.
    seed: int = 0
    # 6,000 of MNIST's 60,000 training images: enough to rank models (about +-0.3 pp at 99%)
    # while leaving 54,000 to train on.
    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    # Only for sources without an official test split (CSV); 1/7 matches MNIST's 10k of 70k.
    test_fraction: float = Field(default=1 / 7, gt=0, lt=0.5)
    # MNIST's classes hold 9.0%-11.2% of each split; outside 5%-20% something is broken.
    min_class_share: float = Field(default=0.05, ge=0, le=1)
    max_class_share: float = Field(default=0.20, ge=0, le=1)
    # Test images with an exact copy in train or validation inflate the test score; MNIST has
    # none, Fashion-MNIST a handful. Above 1% of the test split the split is not trustworthy.
    max_test_duplicate_share: float = Field(default=0.01, ge=0, le=1)
    # Each split must hold every class; fewer rows than this cannot.
    min_rows_per_split: int = Field(default=10, ge=1)
    # Mirrors tried before the catalog's own (a local proxy or an internal copy).
    mirrors: list[str] = Field(default_factory=list)


class EdaSettings(Strict):
    """How the EDA report is drawn."""

    # Seeds the sample grid and the PCA sample, so re-running reproduces the same figures.
    seed: int = 0


class EdaConfig(Strict):
    """Configuration of the ``eda`` flow."""

    home: str | None = None
    # A dataset version or unique prefix; None means the newest version.
    dataset: str | None = None
    # Redraw the report even when this report code already drew it for this version.
    force: bool = False
    settings: EdaSettings = EdaSettings()


class SourceTarget(Strict):
    """Where the data comes from and where the pipeline keeps what it makes."""

    # Storage root; None means $MNIST_HOME, else ~/.local/share/mnist-pipeline.
    home: str | None = None
    # mnist, fashion-mnist, mnist-sample, idx:DIR or csv:PATH.
    source: str = "mnist"
    # Decode and validate again even when this exact source was ingested before.
    force: bool = False

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return str(SourceSpec.parse(value))


class IngestConfig(SourceTarget):
    """Configuration of the ``ingest`` flow."""

    settings: IngestSettings = IngestSettings()


class TrainAllConfig(SourceTarget):
    """Configuration of the ``mnist`` flow (the ``train-all`` deployment): every stage."""

    ingest: IngestSettings = IngestSettings()
    eda: EdaSettings = EdaSettings()

    def eda_config(self, dataset: str) -> EdaConfig:
        return EdaConfig(home=self.home, dataset=dataset, force=self.force, settings=self.eda)

    def ingest_config(self) -> IngestConfig:
        return IngestConfig(home=self.home, source=self.source, force=self.force, settings=self.ingest)
