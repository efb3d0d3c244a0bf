"""Prefect tasks of the training stage: one task per model family, and the leaderboard.

A training task loads its rows from storage itself (tasks on other processes or Dask workers
get a dataset version, never 55 MB of arrays), limits its own threads, reports progress, and
stores the model. It is cached on the model id, which hashes the dataset version, the family's
config, the seed, the rows and the model code: re-running after a failure skips the families
that finished.
"""

import datetime
import os
import socket
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
from mnist_pipeline.storage import recipes as recipe_store
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.caching import RESULT_SERIALIZER, key_while_stored, stored_result_cache
from mnist_pipeline.tasks.core.dataset import stratified_sample
from mnist_pipeline.tasks.core import models, recipe as recipes, sources
from mnist_pipeline.tasks.core.models import ENSEMBLE, FamilyConfig
from mnist_pipeline.tasks.core.models.ensemble import Ensemble
from mnist_pipeline.tasks.core.recipe import Recipe, TrialSettings
from mnist_pipeline.tasks.core.training import Subset, fit_family, model_id, recipe_key, training_record


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
    recipe: Recipe | None = None  # the dataset's recipe the config was made with (recorded)

    @property
    def model_id(self) -> str:
        return model_id(self.family, self.config, self.dataset_version, self.seed, self.subset, self.member_ids,
                        self.budget_s)


def _cache_key(context, parameters) -> str | None:
    """Per (root, model id), while that model is in storage."""
    job = parameters["job"]
    root = StorageRoot(job.home)
    return key_while_stored(model_store.find_trained(root, job.model_id) is not None, "train", root.url, job.model_id)


@task(name="choose-recipe", task_run_name="choose-recipe-{dataset_version}", cache_policy=NO_CACHE)
def choose_recipe(home: str | None, dataset_version: str, seed: int, subset: Subset, settings: TrialSettings,
                  needed: bool = True, force: bool = False) -> Recipe:
    """The dataset's training recipe: a known dataset's recorded one, else the stored result of
    a trial on the validation split, else a new trial (stored). ``needed`` False (no family of
    the run leaves its random changes to the dataset) skips the trial."""
    logger = get_run_logger()
    root = StorageRoot(home)
    known = sources.CATALOG.get(dataset_store.read_manifest(root, dataset_version).get("known_dataset") or "")
    if known:
        return recipes.known_recipe(known.name, known.recipe)
    if not needed:
        return recipes.no_trial_recipe()
    key = recipe_key(dataset_version, seed, subset, settings)
    stored = None if force else recipe_store.find_recipe(root, dataset_version, key)
    if stored:
        return Recipe.model_validate(stored)
    train = stratified_sample(dataset_store.read_split(root, dataset_version, "train"), subset.train_rows, seed)
    validation = stratified_sample(dataset_store.read_split(root, dataset_version, "validation"),
                                   subset.validation_rows, seed)
    threads = os.cpu_count() or 1
    with _limited_threads(threads):
        chosen = recipes.trial(train, validation, seed=seed, settings=settings)
    recipe_store.write_recipe(root, dataset_version, key, chosen.model_dump(mode="json"))
    logger.info("recipe of dataset %s: %s", dataset_version, chosen.describe())
    return chosen


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
    root = StorageRoot(job.home)
    existing = _stored(root, job)
    if existing:
        return existing
    train = _split(root, job, "train", job.subset.train_rows)
    validation = _split(root, job, "validation", job.subset.validation_rows)
    logger.info("training %s (%d validation images), %d thread(s), budget %s s",
                job.family, len(validation), job.threads, job.budget_s)
    with _limited_threads(job.threads), _Progress(job.family, job.progress_bar) as progress:
        model, report = fit_family(
            job.family, job.config, train, validation, seed=job.seed, budget_s=job.budget_s, progress=progress
        )
    record = _store(root, job, model, report, {"train": report.train_rows, "validation": len(validation)},
                    threads=job.threads, validation_probabilities=report.validation_probabilities)
    logger.info("%s: validation accuracy %.4f after %.1f s on %d images; stored as %s%s", job.family,
                report.validation_accuracy, report.seconds, report.train_rows, job.model_id,
                f" ({report.stopped_early})" if report.stopped_early else "")
    return _summary(record, reused=False)


@task(name="train-ensemble", task_run_name="train-ensemble-{job.dataset_version}", **_CACHED_WHILE_STORED)
def train_ensemble(job: TrainJob) -> dict:
    """Combine the run's trained models (``job.member_ids``) into a soft vote weighted on the
    validation split, and store it when it earns its place (it beats its best member on
    validation); otherwise the summary says why it was left out (``left_out``)."""
    logger = get_run_logger()
    root = StorageRoot(job.home)
    existing = _stored(root, job)
    if existing:
        return existing
    records = {i: model_store.read_record(root, i) for i in job.member_ids}
    validation = _split(root, job, "validation", job.subset.validation_rows)
    stored = {i: model_store.read_validation_probabilities(root, i, record) for i, record in records.items()}
    known = {i: p for i, p in stored.items() if p is not None and len(p) == len(validation)}
    # A member without its validation outputs for these rows is loaded and scores them itself.
    unscored = {i: models.load(model_store.read_model_files(root, i, records[i])) for i in records if i not in known}
    model = Ensemble(job.config, unscored, validation_probabilities=known)
    report = model.fit(None, validation, seed=job.seed).report  # the members learned from train; only weights are fitted
    kept, reason = model.verdict()
    if not kept:
        logger.info("ensemble %s", reason)
        return {"family": ENSEMBLE, "model_id": None, "dataset_version": job.dataset_version,
                "validation_accuracy": report.validation_accuracy, "left_out": reason, "reused": False}
    members = {i: unscored.get(i) or models.load(model_store.read_model_files(root, i, record))
               for i, record in records.items()}
    record = _store(root, job, model.with_members(members), report, {"train": 0, "validation": len(validation)},
                    threads=1, extra={"members": model.extra_meta()["members"]},
                    validation_probabilities=report.validation_probabilities)
    logger.info("ensemble: %s; weights %s; stored as %s", reason, report.history[-1]["weights"], job.model_id)
    return _summary(record, reused=False)


def _stored(root: StorageRoot, job: TrainJob) -> dict | None:
    """The summary of the job's model when it is in storage already (and not to be retrained)."""
    existing = None if job.force else model_store.find_trained(root, job.model_id)
    if existing:
        get_run_logger().info("%s already trained as %s (validation accuracy %.4f); not retraining",
                              job.family, job.model_id, existing["validation_accuracy"])
        return _summary(existing, reused=True)
    return None


def _split(root: StorageRoot, job: TrainJob, split: str, rows: int | None):
    """A split of the job's dataset version, or a seeded stratified ``rows`` of it (a smoke run's
    rows, or the run's validation cap)."""
    return stratified_sample(dataset_store.read_split(root, job.dataset_version, split), rows, job.seed)


def _store(root: StorageRoot, job: TrainJob, model, report, rows: dict[str, int], threads: int,
           extra: dict | None = None, validation_probabilities=None) -> dict:
    """Write the model and its training record (atomically); the record as stored."""
    lineage = dataset_store.lineage_of(dataset_store.read_manifest(root, job.dataset_version))
    recipe = {"recipe": job.recipe.model_dump(mode="json")} if job.recipe else {}
    record = training_record(job.family, job.config, job.dataset_version, lineage, job.seed, job.subset,
                             rows, report, threads, extra={**recipe, **(extra or {}), "trained_on": trained_on()})
    return model_store.write_trained(root, job.model_id, model.to_files(), record, replace=job.force,
                                     validation_probabilities=validation_probabilities)


def trained_on() -> dict:
    """Where this training ran: the host and process, and the Dask worker's address on a cluster
    (None elsewhere), so a team can tell which machine made a model."""
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker
        worker = None
    return {"host": socket.gethostname(), "pid": os.getpid(), "dask_worker": worker}


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
def training_leaderboard(dataset_version: str, trained: dict[str, dict], failed: dict[str, str],
                         left_out: dict[str, str] | None = None) -> None:
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
    rows += [
        {"rank": "-", "family": family, "validation_accuracy": "-", "train_seconds": "-",
         "steps (best)": "-", "note": reason, "model_id": "-", "status": "left out"}
        for family, reason in (left_out or {}).items()
    ]
    create_table_artifact(
        key=artifact_key("training-leaderboard"), table=rows,
        description=f"Training on dataset {dataset_version}: validation accuracy (test is for evaluation)",
    )
