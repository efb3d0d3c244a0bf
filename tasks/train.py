"""Prefect tasks of the training stage: one task per model family, and the leaderboard.

A training task loads its rows from storage itself (tasks on other processes or Dask workers
get a dataset version, never 55 MB of arrays), limits its own threads, reports progress, and
stores the model. It looks the model up in storage first, by its id, which hashes the dataset
version, the family's config, the seed, the rows and the model code: re-running after a failure
skips the families that finished.
"""

import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

from mnist_pipeline.storage import datasets as dataset_store
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage import recipes as recipe_store
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.core import devices, sources
from mnist_pipeline.tasks.core import recipe as recipes
from mnist_pipeline.tasks.core.cores import available_cores
from mnist_pipeline.tasks.core.dataset import stratified_sample
from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.models.configs import FamilyConfig
from mnist_pipeline.tasks.core.models.ensemble import ENSEMBLE, Ensemble
from mnist_pipeline.tasks.core.recipe import Recipe, TrialSettings
from mnist_pipeline.tasks.core.recipe_trial import recipe_key, trial
from mnist_pipeline.tasks.core.records import Member, Subset, TrainedOn
from mnist_pipeline.tasks.core.results import LeftOut, TrainedModel
from mnist_pipeline.tasks.core.tables import leaderboard
from mnist_pipeline.tasks.core.training import fit_family, model_id, training_record
from mnist_pipeline.tasks.options import STORAGE_IS_THE_CACHE
from prefect import task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import PrefectFuture, wait
from prefect.logging import get_run_logger


@dataclass(frozen=True)
class TrainJob:
    """One model to train: what the training tasks take (a dataset version, never arrays)."""

    store: Store
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
    device: devices.Device = "cpu"  # where a torch family computes (resolved where it trains)

    @property
    def model_id(self) -> str:
        return model_id(self.family, self.config, self.dataset_version, self.seed, self.subset, self.member_ids,
                        self.budget_s)


@task(name="check-device", **STORAGE_IS_THE_CACHE)
def check_device(device: devices.Device, dask_address: str | None) -> bool:
    """Whether the torch families' trainings must go to GPU workers; a device that is named but
    absent (here, or on every worker of the cluster) is an error before any work."""
    if not dask_address:
        get_run_logger().info("torch families compute on %s", devices.describe(devices.resolve(device)))
        return False
    from distributed import Client

    with Client(dask_address, timeout=30) as client:
        workers = client.scheduler_info()["workers"].values()
        gpu = sum(1 for worker in workers if worker.get("resources", {}).get(devices.GPU_RESOURCE))
    if device in ("cuda", "mps") and not gpu:
        raise devices.DeviceUnavailable(
            f"device {device!r}: no worker of the Dask cluster at {dask_address} declares a GPU; start one with "
            f"`dask worker ... --resources {devices.GPU_RESOURCE}=1`, or use --device auto or cpu")
    get_run_logger().info("torch families train on %s", f"the cluster's {gpu} GPU worker(s)" if gpu and device != "cpu"
                          else "any worker of the cluster")
    return bool(gpu) and device != "cpu"


@task(name="choose-recipe", task_run_name="choose-recipe-{dataset_version}", **STORAGE_IS_THE_CACHE)
def choose_recipe(store: Store, dataset_version: str, seed: int, subset: Subset, settings: TrialSettings,
                  needed: bool = True, force: bool = False, device: devices.Device = "auto") -> Recipe:
    """The dataset's training recipe: a known dataset's recorded one, else the stored result of
    a trial on the validation split, else a new trial (stored). ``needed`` False (no family of
    the run leaves its random changes to the dataset) skips the trial."""
    logger = get_run_logger()
    root = store.root
    known = sources.CATALOG.get(dataset_store.read_manifest(root, dataset_version).known_dataset or "")
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
    threads = available_cores()
    with _limited_threads(threads):
        chosen = trial(train, validation, seed=seed, settings=settings, device=devices.resolve(device))
    recipe_store.write_recipe(root, dataset_version, key, chosen.model_dump(mode="json"))
    logger.info("recipe of dataset %s: %s", dataset_version, chosen.describe())
    return chosen


@task(name="train-model", task_run_name="train-{job.family}-{job.dataset_version}", **STORAGE_IS_THE_CACHE)
def train_model(job: TrainJob) -> TrainedModel:
    """Train one family on the train split (validation split for choices) and store it; a model
    already in storage is returned as it is."""
    logger = get_run_logger()
    root = job.store.root
    existing = _stored(root, job)
    if existing:
        return existing
    device = devices.resolve(job.device) if catalog.declaration(job.family).on_device else "cpu"
    train = _split(root, job, "train", job.subset.train_rows)
    validation = _split(root, job, "validation", job.subset.validation_rows)
    logger.info("training %s (%d validation images), %d thread(s), device %s, budget %s s",
                job.family, len(validation), job.threads, device, job.budget_s)
    with _limited_threads(job.threads), _Progress(job.family, job.progress_bar) as progress:
        model, report = fit_family(job.family, job.config, train, validation, seed=job.seed, budget_s=job.budget_s,
                                   progress=progress, device=device)
    trained = _store(root, job, model, report, {"train": report.train_rows, "validation": len(validation)},
                     threads=job.threads, device=devices.describe(device))
    logger.info("%s: validation accuracy %.4f after %.1f s on %d images; stored as %s%s", job.family,
                report.validation_accuracy, report.seconds, report.train_rows, job.model_id,
                f" ({report.stopped_early})" if report.stopped_early else "")
    return trained


@task(name="train-ensemble", task_run_name="train-ensemble-{job.dataset_version}", **STORAGE_IS_THE_CACHE)
def train_ensemble(job: TrainJob) -> TrainedModel | LeftOut:
    """Combine the run's trained models (``job.member_ids``) into a soft vote weighted on the
    validation split, and store it when it earns its place (it beats its best member on
    validation); otherwise say why it was left out."""
    logger = get_run_logger()
    root = job.store.root
    existing = _stored(root, job)
    if existing:
        return existing
    records = {i: model_store.read_record(root, i) for i in job.member_ids}
    validation = _split(root, job, "validation", job.subset.validation_rows)
    stored = {i: model_store.read_validation_probabilities(root, i, record) for i, record in records.items()}
    known = {i: p for i, p in stored.items() if p is not None and len(p) == len(validation)}
    # A member without its validation outputs for these rows is loaded and scores them itself.
    unscored = {i: catalog.load(model_store.read_model_files(root, i, records[i])) for i in records if i not in known}
    model = Ensemble(job.config, unscored, validation_probabilities=known)
    report = model.fit(None, validation, seed=job.seed).report  # the members learned from train; only weights are fitted
    kept, reason = model.verdict()
    if not kept:
        logger.info("ensemble %s", reason)
        return LeftOut(ENSEMBLE, report.validation_accuracy, reason)
    members = {i: unscored.get(i) or catalog.load(model_store.read_model_files(root, i, record))
               for i, record in records.items()}
    trained = _store(root, job, model.with_members(members), report, {"train": 0, "validation": len(validation)},
                     threads=1, members=tuple(Member(**member) for member in model.extra_meta()["members"]))
    logger.info("ensemble: %s; weights %s; stored as %s", reason, report.history[-1]["weights"], job.model_id)
    return trained


def _stored(root: StorageRoot, job: TrainJob) -> TrainedModel | None:
    """The job's model when it is in storage already (and not to be retrained)."""
    existing = None if job.force else model_store.find_trained(root, job.model_id)
    if existing:
        get_run_logger().info("%s already trained as %s (validation accuracy %.4f); not retraining",
                              job.family, job.model_id, existing.validation_accuracy)
        return TrainedModel.of(existing, reused=True)
    return None


def _split(root: StorageRoot, job: TrainJob, split: str, rows: int | None):
    """A split of the job's dataset version, or a seeded stratified ``rows`` of it (a smoke run's
    rows, or the run's validation cap)."""
    return stratified_sample(dataset_store.read_split(root, job.dataset_version, split), rows, job.seed)


def _store(root: StorageRoot, job: TrainJob, model, report, rows: dict[str, int], threads: int,
           device: str = "cpu", **more) -> TrainedModel:
    """Write the model and its training record (atomically); the model as stored."""
    lineage = dataset_store.lineage_of(dataset_store.read_manifest(root, job.dataset_version))
    record = training_record(job.family, job.config, job.dataset_version, lineage, job.seed, job.subset,
                             rows, report, threads, device, recipe=job.recipe, trained_on=_trained_on(), **more)
    stored = model_store.write_trained(root, job.model_id, model.to_files(), record, force=job.force,
                                       validation_probabilities=report.validation_probabilities)
    return TrainedModel.of(stored, reused=False)


def _trained_on() -> TrainedOn:
    """Where this training ran: the host and process, and the Dask worker's address on a cluster
    (None elsewhere), so a team can tell which machine made a model."""
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker
        worker = None
    return TrainedOn(host=socket.gethostname(), pid=os.getpid(), dask_worker=worker)


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


def gather(futures: dict[str, PrefectFuture]) -> tuple[dict[str, TrainedModel | LeftOut], dict[str, str]]:
    """Wait for every training; the survivors' results and, per failed family, the reason."""
    wait(list(futures.values()))
    trained, failed = {}, {}
    for family, future in futures.items():
        done, not_done = outcome(family, future.state)
        trained.update(done)
        failed.update(not_done)
    return trained, failed


def outcome(family: str, state) -> tuple[dict[str, TrainedModel | LeftOut], dict[str, str]]:
    """``({family: result}, {})`` for a completed training, ``({}, {family: reason})`` otherwise."""
    if state.is_completed():
        return {family: state.result()}, {}
    return {}, {family: _reason(state)}


def _reason(state) -> str:
    try:
        state.result()
    except BaseException as error:  # the task's own exception, re-raised from its state
        return f"{type(error).__name__}: {error}"
    return state.message or state.type.value


@task(name="training-leaderboard", **STORAGE_IS_THE_CACHE)
def training_leaderboard(dataset_version: str, trained: dict[str, TrainedModel], failed: dict[str, str],
                         left_out: dict[str, LeftOut]) -> None:
    """The families of this run ranked by validation accuracy, as a table artifact."""
    table = leaderboard(trained, failed, left_out).select(*TRAINING_COLUMNS)
    create_table_artifact(
        key=artifact_key("training-leaderboard"), table=table.records(),
        description=f"Training on dataset {dataset_version}: validation accuracy (test is for evaluation)",
    )


TRAINING_COLUMNS = ("rank", "family", "validation_accuracy", "train_seconds", "steps (best)", "note", "model_id",
                    "status")
