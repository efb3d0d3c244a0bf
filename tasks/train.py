"""Prefect tasks of the training stage: one task per model family, and the leaderboard.

A training task loads its rows from storage itself (tasks on other processes or Dask workers
get a dataset version, never 55 MB of arrays), limits its own threads, reports progress, and
stores the model. It is cached on the model id, which hashes the dataset version, the family's
config, the seed, the rows and the model code: re-running after a failure skips the families
that finished.
"""

import datetime
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

from prefect import task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait
from prefect.logging import get_run_logger

from mnist_pipeline.storage import datasets as dataset_store
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.caching import RESULT_SERIALIZER, key_while_stored, stored_result_cache
from mnist_pipeline.tasks.core.dataset import stratified_sample
from mnist_pipeline.tasks.core import models
from mnist_pipeline.tasks.core.models import ENSEMBLE, FamilyConfig
from mnist_pipeline.tasks.core.models.ensemble import Ensemble
from mnist_pipeline.tasks.core.scoring import names_digits
from mnist_pipeline.tasks.core.training import Subset, fit_family, model_id, training_record


@dataclass(frozen=True)
class TrainJob:
    """One model to train: what the training tasks take (a dataset version, never arrays)."""

    home: str | None
    dataset_version: str
    family: str
    config: FamilyConfig  # made for the dataset (and cut down for a smoke run) by the flow
    seed: int
    subset: Subset
    threads: int = 1
    budget_s: float | None = None
    force: bool = False  # train again even when the model is in storage
    progress_bar: bool = False
    member_ids: tuple[str, ...] = field(default=())  # the ensemble's members

    @property
    def model_id(self) -> str:
        return model_id(self.family, self.config, self.dataset_version, self.seed, self.subset, self.member_ids)


def _cache_key(context, parameters) -> str | None:
    """Per (root, model id), while that model is in storage."""
    job = parameters["job"]
    root = StorageRoot(job.home)
    return key_while_stored(model_store.find_trained(root, job.model_id) is not None, "train", root.url, job.model_id)


@task(name="dataset-kind", cache_policy=NO_CACHE)
def dataset_is_digits(home: str | None, dataset_version: str) -> bool:
    """Whether a dataset's classes are the ten digits (its model configs' choices depend on it)."""
    lineage = dataset_store.lineage_of(dataset_store.read_manifest(StorageRoot(home), dataset_version))
    return names_digits(lineage.class_names)


# Both training tasks: cached per model id while the model is in storage, results as JSON.
_CACHED_WHILE_STORED = {
    "cache_policy": stored_result_cache(_cache_key),
    "cache_expiration": datetime.timedelta(days=90),
    "persist_result": True,
    "result_serializer": RESULT_SERIALIZER,
}


@task(name="train-model", task_run_name="train-{job.family}-{job.dataset_version}", **_CACHED_WHILE_STORED)
def train_model(job: TrainJob) -> dict:
    """Train one family on the train split (validation split for choices) and store it."""
    logger = get_run_logger()
    home, dataset_version, family, config, seed, subset = (
        job.home, job.dataset_version, job.family, job.config, job.seed, job.subset)
    threads, budget_s, force = job.threads, job.budget_s, job.force
    root = StorageRoot(home)
    identity = job.model_id
    existing = model_store.find_trained(root, identity)
    if existing and not force:
        logger.info("%s already trained as %s (validation accuracy %.4f); not retraining",
                    family, identity, existing["validation_accuracy"])
        return _summary(existing, reused=True)

    train = stratified_sample(dataset_store.read_split(root, dataset_version, "train"), subset.train_rows, seed)
    validation = stratified_sample(
        dataset_store.read_split(root, dataset_version, "validation"), subset.validation_rows, seed
    )
    logger.info("training %s on %d images (%d for validation), %d thread(s), budget %s s",
                family, min(len(train), config.max_train_rows or len(train)), len(validation), threads, budget_s)
    with _limited_threads(threads), _Progress(family, job.progress_bar) as progress:
        model, report = fit_family(
            family, config, train, validation, seed=seed, budget_s=budget_s, progress=progress
        )
    lineage = dataset_store.lineage_of(dataset_store.read_manifest(root, dataset_version))
    record = training_record(
        family, config, dataset_version, lineage, seed, subset,
        {"train": report.train_rows, "validation": len(validation)}, report, threads,
    )
    record = model_store.write_trained(root, identity, model.to_files(), record, replace=force,
                                       validation_probabilities=report.validation_probabilities)
    logger.info("%s: validation accuracy %.4f after %.1f s; stored as %s%s", family, report.validation_accuracy,
                report.seconds, identity, f" ({report.stopped_early})" if report.stopped_early else "")
    return _summary(record, reused=False)


@task(name="train-ensemble", task_run_name="train-ensemble-{job.dataset_version}", **_CACHED_WHILE_STORED)
def train_ensemble(job: TrainJob) -> dict:
    """Combine the run's trained models (``job.member_ids``) into a soft vote weighted on the
    validation split; store it."""
    logger = get_run_logger()
    home, dataset_version, member_ids, config, seed, subset, force = (
        job.home, job.dataset_version, job.member_ids, job.config, job.seed, job.subset, job.force)
    root = StorageRoot(home)
    identity = job.model_id
    existing = model_store.find_trained(root, identity)
    if existing and not force:
        logger.info("ensemble of %s already stored as %s; not refitting", ", ".join(member_ids), identity)
        return _summary(existing, reused=True)
    members = {i: models.load(model_store.read_model_files(root, i)) for i in member_ids}
    known = {i: model_store.read_validation_probabilities(root, i) for i in member_ids}
    validation = stratified_sample(
        dataset_store.read_split(root, dataset_version, "validation"), subset.validation_rows, seed
    )
    model = Ensemble(config, members, validation_probabilities={i: p for i, p in known.items() if p is not None})
    report = model.fit(None, validation, seed=seed).report  # the members learned from train; only weights are fitted
    lineage = dataset_store.lineage_of(dataset_store.read_manifest(root, dataset_version))
    record = training_record(
        ENSEMBLE, config, dataset_version, lineage, seed, subset, {"train": 0, "validation": len(validation)},
        report, threads=1, extra={"members": model.extra_meta()["members"]},
    )
    record = model_store.write_trained(root, identity, model.to_files(), record, replace=force)
    logger.info("ensemble: cross-fitted validation accuracy %.4f, weights %s; stored as %s",
                report.validation_accuracy, report.history[-1]["weights"], identity)
    return _summary(record, reused=False)


def _summary(record: dict, reused: bool) -> dict:
    """What the flow needs of a trained model (small: it is cached and sent between processes)."""
    keys = ("model_id", "family", "dataset_version", "validation_accuracy", "train_seconds",
            "steps", "best_step", "stopped_early", "threads")
    return {**{k: record.get(k) for k in keys}, "reused": reused}


@contextmanager
def _limited_threads(threads: int):
    """Cap torch's and the BLAS/OpenMP pools, so parallel trainings do not oversubscribe cores."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


class _Progress:
    """Per-epoch progress: a log line, a Prefect progress artifact, and optionally a terminal bar."""

    def __init__(self, family: str, bar: bool) -> None:
        self.family = family
        self.logger = get_run_logger()
        self.artifact_id = create_progress_artifact(
            progress=0.0, key=artifact_key(f"train-progress-{family}"), description=f"training {family}"
        )
        self.bar = None
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(desc=f"{family:>6}", unit="step", file=sys.stderr, leave=True, dynamic_ncols=True)

    def __call__(self, step: int, total: int, metrics: dict) -> None:
        shown = ", ".join(f"{k} {v}" for k, v in metrics.items() if k not in ("epoch",))
        self.logger.info("%s %d/%d: %s", self.family, step, total, shown)
        update_progress_artifact(self.artifact_id, progress=100.0 * step / total)
        if self.bar is not None:
            self.bar.total = total
            self.bar.set_postfix_str(shown[:60], refresh=False)
            self.bar.update(step - self.bar.n)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def gather(futures: dict[str, PrefectFuture]) -> tuple[dict[str, dict], dict[str, str]]:
    """Wait for every training; the survivors' summaries and, per failed family, the reason."""
    wait(list(futures.values()))
    trained, failed = {}, {}
    for family, future in futures.items():
        done, not_done = outcome(family, future.state)
        trained.update(done)
        failed.update(not_done)
    return trained, failed


def outcome(family: str, state) -> tuple[dict[str, dict], dict[str, str]]:
    """``({family: summary}, {})`` for a completed training, ``({}, {family: reason})`` otherwise."""
    if state.is_completed():
        return {family: state.result()}, {}
    return {}, {family: _reason(state)}


def _reason(state) -> str:
    try:
        state.result()
    except BaseException as error:  # the task's own exception, re-raised from its state
        return f"{type(error).__name__}: {error}"
    return state.message or state.type.value


@task(name="training-leaderboard", cache_policy=NO_CACHE)
def training_leaderboard(dataset_version: str, trained: dict[str, dict], failed: dict[str, str]) -> None:
    """The families of this run ranked by validation accuracy, as a table artifact."""
    rows = [
        {
            "rank": rank,
            "family": s["family"],
            "validation_accuracy": round(s["validation_accuracy"], 4),
            "train_seconds": s["train_seconds"],
            "steps (best)": f"{s['steps']} ({s['best_step']})",
            "note": s["stopped_early"] or "",
            "model_id": s["model_id"],
            "status": "reused" if s["reused"] else "trained",
        }
        for rank, s in enumerate(sorted(trained.values(), key=lambda s: -s["validation_accuracy"]), 1)
    ]
    rows += [
        {"rank": "-", "family": family, "validation_accuracy": "-", "train_seconds": "-",
         "steps (best)": "-", "note": "", "model_id": "-", "status": f"FAILED: {reason}"}
        for family, reason in failed.items()
    ]
    create_table_artifact(
        key=artifact_key("training-leaderboard"), table=rows,
        description=f"Training on dataset {dataset_version}: validation accuracy (test is for evaluation)",
    )
