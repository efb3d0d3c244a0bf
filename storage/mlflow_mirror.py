"""The MLflow tracking server we mirror runs, model versions and aliases to (``mlflow-skinny``,
imported only when a tracking URI is set: ``pip install 'mnist-pipeline[mlflow]'``).

Only this module talks to MLflow. It finds what the mirror already holds by our tags and makes
what is missing from the specs of ``tasks/core/mirror.py``. Models go as our own files (weights
in safetensors or skops, ``model.json``, ``training.json``), never as a pickled MLflow flavour.
While a sync runs, requests fail fast (two retries, 20 s each, unless ``MLFLOW_HTTP_REQUEST_*``
say otherwise): MLflow's own defaults retry a refused connection for minutes, and a mirror that
cannot be reached is caught up later.
"""

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mnist_pipeline.tasks.core.errors import MnistError
from mnist_pipeline.tasks.core.mirror import KIND_TAG, MODEL_ID_TAG, PARENT_TAG, HeldVersion, Metric, RunSpec

# Every run goes to this experiment (one per tracking server: the runs say which data they are of).
EXPERIMENT = "mnist-pipeline"
QUICK_FAILURE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                 # MLflow prints two links per finished run to stdout: the sync reports once, itself.
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
# What would otherwise speak up during a sync: a warning per retried request, a line per version.
QUIET = {"urllib3.connectionpool": logging.ERROR, "mlflow.store.model_registry.abstract_store": logging.WARNING}
# MLflow's batch limits (per log_batch call), and a page of search results.
MAX_METRICS, MAX_PARAMS = 1000, 100
PAGE = 1000


class MirrorUnavailable(MnistError, RuntimeError):
    """The MLflow mirror cannot be used: mlflow-skinny is missing, or the server does not answer
    or refuses a request."""


@dataclass(frozen=True)
class FoundRun:
    run_id: str
    status: str
    start_ms: int | None
    artifact_uri: str
    metrics: dict[str, float]  # the latest value of each metric it holds


class MlflowMirror:
    """One tracking server and its model registry, and the experiment our runs go to."""

    def __init__(self, uri: str) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError as error:
            raise MirrorUnavailable(f"an MLflow mirror is set ({uri}), but mlflow-skinny is not installed: "
                                    "pip install 'mnist-pipeline[mlflow]'") from error
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self._experiment_id: str | None = None

    @staticmethod
    def errors() -> tuple[type[BaseException], ...]:
        """What MLflow's client raises when the server does not answer or refuses a request."""
        import requests
        from mlflow.exceptions import MlflowException

        return MlflowException, requests.RequestException

    # -- runs -------------------------------------------------------------------------------
    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(EXPERIMENT)
            self._experiment_id = found.experiment_id if found else self.client.create_experiment(EXPERIMENT)
        return self._experiment_id

    def runs(self, kind: str, key_tag: str) -> dict[str, FoundRun]:
        """Our runs of one kind (see ``tasks/core/mirror.py``), by the value of ``key_tag``. Where
        two syncs at once made two runs of one thing, the first finished one stands for it."""
        found: dict[str, FoundRun] = {}
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KIND_TAG}` = '{kind}'",
                                           max_results=PAGE, page_token=token)
            for run in page:
                key = run.data.tags.get(key_tag)
                if not key:
                    continue
                this = FoundRun(run.info.run_id, run.info.status, run.info.start_time, run.info.artifact_uri,
                                dict(run.data.metrics))
                if key not in found or _sooner(this, found[key]):
                    found[key] = this
            token = page.token
            if not token:
                return found

    def create_run(self, spec: RunSpec, parent: str | None = None, files: dict[str, bytes] | None = None) -> FoundRun:
        """A finished run as ``spec`` says, with ``files`` (path -> bytes) as its artifacts.

        The run is marked FINISHED last: one left RUNNING was cut off midway (a server that went
        away), and :meth:`discard` removes it before it is made again.
        """
        from mlflow.entities import Param

        tags = {**spec.tags, **({PARENT_TAG: parent} if parent else {})}
        run = self.client.create_run(self.experiment_id, start_time=spec.start_ms, tags=tags, run_name=spec.name)
        run_id = run.info.run_id
        params = [Param(key, value) for key, value in spec.params.items()]
        for start in range(0, len(params), MAX_PARAMS):
            self.client.log_batch(run_id, params=params[start:start + MAX_PARAMS])
        self.add_metrics(run_id, spec.metrics)
        if files:
            with tempfile.TemporaryDirectory(prefix="mnist-mlflow-") as folder:
                for name, data in files.items():
                    path = os.path.join(folder, name)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as handle:
                        handle.write(data)
                self.client.log_artifacts(run_id, folder)
        self.client.set_terminated(run_id, status="FINISHED", end_time=spec.end_ms)
        latest = {metric.key: metric.value for metric in spec.metrics}  # curves go step by step: the last is latest
        return FoundRun(run_id, "FINISHED", run.info.start_time, run.info.artifact_uri, latest)

    def add_metrics(self, run_id: str, metrics: tuple[Metric, ...] | list[Metric]) -> None:
        from mlflow.entities import Metric as MlflowMetric

        now = int(time.time() * 1000)
        batch = [MlflowMetric(m.key, m.value, now, m.step) for m in metrics]
        for start in range(0, len(batch), MAX_METRICS):
            self.client.log_batch(run_id, metrics=batch[start:start + MAX_METRICS])

    def discard(self, run_id: str) -> None:
        """Remove a run left unfinished by an earlier attempt."""
        self.client.delete_run(run_id)

    # -- registered models ----------------------------------------------------------------
    def ensure_registered_model(self, name: str, description: str, tags: dict[str, str]) -> dict[str, str]:
        """The registered model ``name``, made if missing; its aliases (alias -> version)."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.get_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            found = self.client.create_registered_model(name, tags=tags, description=description)
        return {alias: str(version) for alias, version in (found.aliases or {}).items()}

    def versions(self, name: str) -> dict[str, HeldVersion]:
        """The versions of a registered model that carry one of our model ids, by that id (the
        first version, where two syncs at once made two)."""
        found: dict[str, HeldVersion] = {}
        token = None
        while True:
            page = self.client.search_model_versions(f"name = '{name}'", max_results=PAGE, page_token=token)
            for version in page:
                model_id = version.tags.get(MODEL_ID_TAG)
                if model_id and (model_id not in found or int(version.version) < int(found[model_id].version)):
                    found[model_id] = HeldVersion(str(version.version), dict(version.tags))
            token = page.token
            if not token:
                return found

    def create_version(self, name: str, run: FoundRun, tags: dict[str, str], description: str) -> HeldVersion:
        """A version of ``name`` whose files are ``run``'s ``model/`` artifacts."""
        version = self.client.create_model_version(name, f"{run.artifact_uri}/model", run_id=run.run_id, tags=tags,
                                                   description=description)
        return HeldVersion(str(version.version), dict(tags))

    def apply(self, edit) -> None:
        """One alias edit of ``tasks/core/mirror.py:alias_edits``."""
        if edit.action == "set_alias":
            self.client.set_registered_model_alias(edit.name, edit.key, edit.version)
        elif edit.action == "delete_alias":
            self.client.delete_registered_model_alias(edit.name, edit.key)
        elif edit.action == "set_tag":
            self.client.set_model_version_tag(edit.name, edit.version, edit.key, edit.value)
        elif edit.action == "delete_tag":
            self.client.delete_model_version_tag(edit.name, edit.version, edit.key)
        else:
            raise ValueError(f"unknown mirror edit {edit.action!r}")


@contextmanager
def session() -> Iterator[None]:
    """While a sync runs: requests that fail fast (where the environment does not say otherwise),
    and none of MLflow's or urllib3's chatter (the mirror reports what happened once, itself)."""
    added = {name: value for name, value in QUICK_FAILURE.items() if name not in os.environ}
    os.environ.update(added)
    levels = {name: logging.getLogger(name).level for name in QUIET}
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name in added:
            os.environ.pop(name, None)


def _sooner(this: FoundRun, other: FoundRun) -> bool:
    """Whether ``this`` stands for its model rather than ``other``: finished first, then older."""
    return ((this.status != "FINISHED", this.start_ms or 0, this.run_id)
            < (other.status != "FINISHED", other.start_ms or 0, other.run_id))
