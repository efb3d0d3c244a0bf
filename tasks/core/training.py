"""Training one model family: its identity, the rows it sees, and the record it leaves.

Pure: no Prefect, no storage. ``tasks/train.py`` adds the storage lookup, logging and progress.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace

from mnist_pipeline.tasks.core.dataset import stratified_sample
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.lineage import code_version, library_versions
from mnist_pipeline.tasks.core.models import Budget, Classifier, FamilyConfig, FitReport, build, code_key
from mnist_pipeline.tasks.core.models.base import ProgressFn
from mnist_pipeline.tasks.core.promotion import Lineage

MODEL_LIBRARIES = ("numpy", "torch", "scikit-learn", "safetensors", "skops")
# Longest first: with fewer workers than families, the long ones start at once and the short
# ones fill in behind them, so the stage ends when the longest one does.
TRAINING_ORDER = ("cnn", "svm", "mlp", "logreg")
# Families that compute on the run's device (torch); on a Dask cluster, when the run asks for a
# GPU, their trainings go to workers that declare one (``--resources GPU=1``).
DEVICE_FAMILIES = ("cnn", "mlp", "logreg")
GPU_RESOURCE = "GPU"  # the Dask worker resource a GPU worker declares
# Families whose training speeds up with more cores: they run after the others, one at a time,
# on every core (the CNN took 8.2 s a pass on 2 threads against 18.1 s on one). The rest gain
# little from a second thread (libsvm's fit has one; the MLP's and logistic regression's
# matrices are small) and run side by side on one core each. A thread count is fixed for a
# whole training: changing it midway changes the floats, and the same seed must give the same model.
WIDE_FAMILIES = ("cnn",)
# Families that choose their rows from the time budget before an uninterruptible fit (the SVM,
# svm_cost.py): the budget is part of what determines their model, so it is part of its id.
BUDGET_PLANNED_FAMILIES = ("svm",)


# The splits a model learns from: it trains on one and chooses (its step, its temperature) on the other.
SEEN_SPLITS = ("train", "validation")


def seen_splits(record: dict) -> tuple[str, tuple[str, ...]]:
    """The dataset version and the splits whose images a model has seen (records written before
    this was recorded saw the same: their dataset version's train and validation splits)."""
    seen = record.get("seen") or {"dataset_version": record["dataset_version"], "splits": SEEN_SPLITS}
    return seen["dataset_version"], tuple(seen["splits"])


@dataclass(frozen=True)
class Subset:
    """How many rows of train / validation a model sees; None means the whole split."""

    train_rows: int | None = None
    validation_rows: int | None = None


def model_id(family: str, config: FamilyConfig, dataset_version: str, seed: int, subset: Subset,
             members: tuple[str, ...] | list[str] = (), budget_s: float | None = None) -> str:
    """``<family>-<16 hex>`` over everything that determines the trained model (for an ensemble,
    its members too; for a family that plans its rows from it, the time budget)."""
    identity = {
        "family": family,
        "config": config.model_dump(mode="json"),
        "dataset_version": dataset_version,
        "seed": seed,
        "subset": [subset.train_rows, subset.validation_rows],
        "model_code": code_key(),
    }
    if members:
        identity["members"] = sorted(members)
    if family in BUDGET_PLANNED_FAMILIES:
        identity["budget_s"] = budget_s
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"{family}-{digest[:16]}"


def recipe_key(dataset_version: str, seed: int, subset: Subset, settings) -> str:
    """What a recipe trial's result depends on besides the data: its settings, seed, rows and the
    model code it trains with (which covers the trial's own module)."""
    identity = {"dataset_version": dataset_version, "seed": seed, "subset": [subset.train_rows, subset.validation_rows],
                "trial": settings.model_dump(mode="json"), "model_code": code_key()}
    return "trial-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def fit_family(
    family: str,
    config: FamilyConfig,
    train: Digits,
    validation: Digits,
    *,
    seed: int,
    budget_s: float | None = None,
    progress: ProgressFn | None = None,
    device: str = "cpu",
) -> tuple[Classifier, FitReport]:
    """Train one family on ``train`` (or the config's ``max_train_rows`` of it: the one place any
    family is subsampled), choosing on ``validation``; the fitted model and what training did."""
    train = stratified_sample(train, config.max_train_rows, seed)
    model = build(family, config).fit(train, validation, seed=seed, progress=progress, budget=Budget(family, budget_s),
                                      device=device)
    model.report = replace(model.report, train_rows=model.report.train_rows or len(train))
    return model, model.report


def training_record(
    family: str,
    config: FamilyConfig,
    dataset_version: str,
    lineage: Lineage,
    seed: int,
    subset: Subset,
    rows: dict[str, int],
    report: FitReport,
    threads: int,
    extra: dict | None = None,
    device: str = "cpu",
) -> dict:
    """Everything the registry and a person need to know about how a model came to be."""
    return {
        **(extra or {}),
        "family": family,
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "dataset_version": dataset_version,
        # The problem the model solves: what promotion compares and prediction names classes by.
        "source": lineage.source,
        "class_names": list(lineage.class_names),
        "smoke": subset.train_rows is not None,
        "subset": {"train_rows": subset.train_rows, "validation_rows": subset.validation_rows},
        "rows": rows,
        # The images the model has seen: it trained and chose its step, temperature (and, for an
        # ensemble, its weights) on these splits; promotion never compares it on any of them.
        "seen": {"dataset_version": dataset_version, "splits": list(SEEN_SPLITS)},
        # How many rows a family that plans its own cost chose, and why (the SVM's RowPlan).
        "row_plan": asdict(report.row_plan) if report.row_plan else None,
        "validation_accuracy": report.validation_accuracy,
        "steps": report.steps,
        "best_step": report.best_step,
        "stopped_early": report.stopped_early,
        # The validation-fitted temperature, and the validation ECE before and after it.
        "calibration": report.calibration,
        "history": report.history,
        "train_seconds": round(report.seconds, 3),
        "threads": threads,
        # Where it computed (devices.describe): the CPU, or a GPU by name.
        "device": device,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_code": code_key(),
        "code_version": code_version(),
        "libraries": library_versions(MODEL_LIBRARIES),
    }
