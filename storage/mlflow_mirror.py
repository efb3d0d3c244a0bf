"""The MLflow tracking server we mirror runs, model versions and aliases to (``mlflow-skinny``,
imported only when a tracking URI is set: ``pip install 'mnist-pipeline[mlflow]'``).

Only this module talks to MLflow. It finds what the mirror already holds by our tags and makes
what is missing from the specs of ``tasks/core/mirror.py``. Models go as our own files (weights
in safetensors or skops, ``model.json``, ``training.json``), never as a pickled MLflow flavour.
Requests fail fast (two retries, 20 s each) unless ``MLFLOW_HTTP_REQUEST_*`` say otherwise: a
server that is down costs the pipeline seconds, and the mirror is caught up later.
"""

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mnist_pipeline.tasks.core.errors import MnistError
from mnist_pipeline.tasks.core.mirror import KIND_TAG, MODEL_ID_TAG, PARENT_TAG, Metric, RunSpec

TRACKING_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "mnist-pipeline"
# Fail fast: MLflow's own defaults retry a refused connection for minutes.
QUICK_FAILURE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
# MLflow's batch limits (per log_batch call).
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
PAGE = 1000


class MirrorUnavailable(MnistError, RuntimeError):
    """The MLflow mirror cannot be used: mlflow-skinny is missing, or the server does not answer."""


@dataclass(frozen=True)
class FoundRun:
    run_id: str
    status: str
    artifact_uri: str
    metrics: frozenset[str]  # the metric keys it holds


@dataclass(frozen=True)
class FoundVersion:
    version: str
    run_id: str | None
    tags: dict[str, str]


class MlflowMirror:
    """One tracking server and its model registry, and the experiment our runs go to."""

    def __init__(self, uri: str, experiment: str | None = None) -> None:
        for name, value in QUICK_FAILURE.items():
            os.environ.setdefault(name, value)
        try:
            from mlflow import MlflowClient
        except ImportError as error:
            raise MirrorUnavailable(
                f"{TRACKING_ENV} (or --mlflow) is {uri}, but mlflow-skinny is not installed: "
                "pip install 'mnist-pipeline[mlflow]'") from error
        self.uri = uri
        self.experiment = experiment or os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self._experiment_id: str | None = None

    # -- runs -------------------------------------------------------------------------------
    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            self._experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        return self._experiment_id

    def runs(self, kind: str, key_tag: str) -> dict[str, FoundRun]:
        """Our runs of one kind (see ``tasks/core/mirror.py``), by the value of ``key_tag``."""
        found, token = {}, None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KIND_TAG}` = '{kind}'",
                                           max_results=PAGE, page_token=token)
            for run in page:
                key = run.data.tags.get(key_tag)
                if key:
                    found[key] = FoundRun(run.info.run_id, run.info.status, run.info.artifact_uri,
                                          frozenset(run.data.metrics))
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
        return FoundRun(run_id, "FINISHED", run.info.artifact_uri, frozenset(m.key for m in spec.metrics))

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
    def ensure_registered_model(self, name: str, description: str, tags: dict[str, str]) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(name, tags=tags, description=description)

    def versions(self, name: str) -> dict[str, FoundVersion]:
        """The versions of a registered model that carry one of our model ids, by that id."""
        found, token = {}, None
        while True:
            page = self.client.search_model_versions(f"name = '{name}'", max_results=PAGE, page_token=token)
            for version in page:
                model_id = version.tags.get(MODEL_ID_TAG)
                if model_id:
                    found[model_id] = FoundVersion(str(version.version), version.run_id, dict(version.tags))
            token = page.token
            if not token:
                return found

    def create_version(self, name: str, run: FoundRun, tags: dict[str, str], description: str) -> FoundVersion:
        """A version of ``name`` whose files are ``run``'s ``model/`` artifacts."""
        version = self.client.create_model_version(name, f"{run.artifact_uri}/model", run_id=run.run_id, tags=tags,
                                                   description=description)
        return FoundVersion(str(version.version), run.run_id, dict(tags))

    def aliases(self, name: str) -> dict[str, str]:
        """alias -> version of a registered model."""
        return {alias: str(version) for alias, version in (self.client.get_registered_model(name).aliases or {}).items()}

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, version, key, value)

    def delete_version_tag(self, name: str, version: str, key: str) -> None:
        self.client.delete_model_version_tag(name, version, key)


@contextmanager
def quiet_retries() -> Iterator[None]:
    """urllib3 logs a warning per retried request; the mirror reports a failure once, itself."""
    logger = logging.getLogger("urllib3.connectionpool")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
