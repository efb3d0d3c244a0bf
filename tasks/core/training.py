"""Training one model family: its identity, the rows it sees, and the record it leaves.

Pure: no Prefect, no storage. ``tasks/train.py`` adds the storage lookup, logging and progress.
What each family is (its training order, whether it trains alone on every core, plans its rows
or computes on the device) is its own declaration's (``models/catalog.py``).
"""

import hashlib
import json
import time

from mnist_pipeline.tasks.core.dataset import stratified_sample
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.lineage import code_version, library_versions
from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.models.base import Budget, Classifier, FitReport, ProgressFn
from mnist_pipeline.tasks.core.models.configs import FamilyConfig
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.records import Calibration, Subset, TrainingRecord


def model_id(family: str, config: FamilyConfig, dataset_version: str, seed: int, subset: Subset,
             members: tuple[str, ...] | list[str] = (), budget_s: float | None = None) -> str:
    """``<family>-<16 hex>`` over everything that determines the trained model: its config, data,
    seed and rows, and its family's own code (for an ensemble, its members too; for a family that
    plans its rows from it, the time budget)."""
    identity = {
        "family": family,
        "config": config.model_dump(mode="json"),
        "dataset_version": dataset_version,
        "seed": seed,
        "subset": [subset.train_rows, subset.validation_rows],
        "model_code": catalog.code_key(family),
    }
    if members:
        identity["members"] = sorted(members)
    if catalog.declaration(family).budget_planned:
        identity["budget_s"] = budget_s
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"{family}-{digest[:16]}"


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
    model = catalog.build(family, config).fit(train, validation, seed=seed, progress=progress,
                                              budget=Budget(family, budget_s), device=device)
    model.report = model.report.with_train_rows(len(train))
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
    device: str = "cpu",
    **more,
) -> TrainingRecord:
    """Everything the registry and a person need to know about how a model came to be (``more``:
    the recipe, an ensemble's members, where it trained)."""
    return TrainingRecord(
        family=family, config=config.model_dump(mode="json"), seed=seed, dataset_version=dataset_version,
        source=lineage.source, class_names=lineage.class_names, subset=subset, rows=rows, row_plan=report.row_plan,
        validation_accuracy=report.validation_accuracy, steps=report.steps, best_step=report.best_step,
        stopped_early=report.stopped_early,
        calibration=Calibration(**report.calibration) if report.calibration else None,
        history=tuple(report.history), train_seconds=round(report.seconds, 3), threads=threads, device=device,
        trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), model_code=catalog.code_key(family),
        code_version=code_version(), libraries=library_versions(catalog.declaration(family).libraries), **more,
    )
