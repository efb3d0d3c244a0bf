"""Prefect tasks of the evaluation and registry stage: evaluate, register, promote.

Each model is evaluated once per test split (the result is stored with the model and found
again), registered with its lineage and model card, and the run's best model by validation
accuracy is promoted when the decision in ``tasks/core/promotion.py`` says so.
"""

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from mnist_pipeline.storage import datasets as dataset_store
from mnist_pipeline.storage import evaluations as evaluation_store
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage import reports
from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.core import evaluation as evaluating
from mnist_pipeline.tasks.core import models
from mnist_pipeline.tasks.core.pages import p_value_text
from mnist_pipeline.tasks.core.promotion import Contender, decide, needs_comparison
from mnist_pipeline.tasks.core.recipe import Recipe
from mnist_pipeline.tasks.core.registry_report import build_registry_report

PROMOTE_ATTEMPTS = 5


def _flow_run() -> str | None:
    from prefect.runtime import flow_run

    return flow_run.id


def _open(home: str | None, registry_url: str | None, create: bool = True) -> tuple[StorageRoot, Registry]:
    root = StorageRoot(home)
    return root, Registry.open(root, registry_url) if create else Registry.open_existing(root, registry_url)


def ensure_evaluated(root: StorageRoot, registry: Registry, record: dict, dataset_version: str,
                     force: bool = False) -> dict:
    """The model's metrics on the dataset's test split, evaluating it when not done before."""
    model_id = record["model_id"]
    existing = evaluation_store.find_evaluation(root, model_id, dataset_version)
    if existing and not force:
        if registry.evaluation(model_id, dataset_version) is None:
            registry.add_evaluation(model_id, dataset_version, existing)
        return existing
    files = model_store.read_model_files(root, model_id, record)
    model = models.load(files)
    test = dataset_store.read_split(root, dataset_version, "test")
    class_names = dataset_store.read_manifest(root, dataset_version)["class_names"]
    size = sum(len(v) for v in files.values())
    reused = None if force else _members_on(root, record, dataset_version, test.sample_ids)
    if reused is not None:  # an ensemble: its members were just evaluated on this split
        probabilities, speeds = reused
        result = evaluating.evaluate_scores(model, model.combine(probabilities), test, class_names, size,
                                            evaluating.combined_speed(speeds))
    else:
        result = evaluating.evaluate(model, test, class_names, size)
    report = evaluating.markdown(model_id, record["family"], dataset_version, result.metrics)
    page = evaluating.html_report(model_id, record["family"], dataset_version, result.metrics, result.figures)
    evaluation_store.write_evaluation(
        root, model_id, dataset_version, result.metrics, result.figures, report, page,
        {"sample_id": result.sample_ids, "predicted": result.predicted,
         "confidence": result.confidence, "correct": result.correct},
        result.probabilities, replace=force,
    )
    registry.add_evaluation(model_id, dataset_version, result.metrics)
    return result.metrics


def _members_on(root: StorageRoot, record: dict, dataset_version: str,
                sample_ids: np.ndarray) -> tuple[dict[str, np.ndarray], list[dict]] | None:
    """An ensemble's members' stored probabilities on this test split and their measured speeds,
    when every member has them for exactly these images (else None: score the split)."""
    members = [m["model_id"] for m in record.get("members", []) if m["weight"] > 0]
    stored = {}
    for member_id in members:
        found = evaluation_store.read_probabilities(root, member_id, dataset_version)
        if found is None or not np.array_equal(found[0], sample_ids):
            return None
        stored[member_id] = found[1]
    speeds = [evaluation_store.find_evaluation(root, m, dataset_version) for m in members]
    return (stored, speeds) if stored else None


@task(name="register-model", task_run_name="register-{model_id}", cache_policy=NO_CACHE)
def register_model(home: str | None, registry_url: str | None, model_id: str) -> bool:
    """Add a trained model to the registry with its lineage and a generated model card."""
    root, registry = _open(home, registry_url)
    try:
        record = model_store.read_record(root, model_id)
        lineage = dataset_store.lineage_of(dataset_store.read_manifest(root, record["dataset_version"]))
        added = registry.register(record, model_store.model_url(root, model_id), model_card(record), lineage, _flow_run())
        get_run_logger().info("%s %s", model_id, "registered" if added else "was already registered")
        return added
    finally:
        registry.close()


@task(name="evaluate-model", task_run_name="evaluate-{model_id}-on-{dataset_version}", cache_policy=NO_CACHE)
def evaluate_model(home: str | None, registry_url: str | None, model_id: str, dataset_version: str,
                   force: bool = False) -> dict:
    """Evaluate on the test split (once per model and split) and leave a markdown artifact."""
    root, registry = _open(home, registry_url)
    try:
        record = model_store.read_record(root, model_id)
        metrics = ensure_evaluated(root, registry, record, dataset_version, force)
    finally:
        registry.close()
    figures = evaluation_store.read_figures(root, model_id, dataset_version)
    text = evaluating.markdown_with_figures(model_id, record["family"], dataset_version, metrics, figures)
    html_report = evaluation_store.report_url(root, model_id, dataset_version)
    text += f"\nHTML report (every figure, full size): `{html_report}`\n" if html_report else ""
    create_markdown_artifact(key=artifact_key(f"evaluation-{record['family']}"), markdown=text,
                             description=f"{model_id} on the test split of {dataset_version}")
    get_run_logger().info("%s: test accuracy %.4f, macro F1 %.4f", model_id, metrics["accuracy"], metrics["macro_f1"])
    return {"model_id": model_id, "family": record["family"], "accuracy": metrics["accuracy"], "report": html_report,
            "macro_f1": metrics["macro_f1"], "ece": metrics["expected_calibration_error"],
            "ece_uncalibrated": metrics.get("expected_calibration_error_uncalibrated"),
            "throughput": metrics.get("throughput_images_per_s"), "latency_ms": metrics.get("latency_ms_one_image"),
            "size_kib": round(metrics["model_size_bytes"] / 1024), "validation_accuracy": record["validation_accuracy"]}


@task(name="evaluation-leaderboard", cache_policy=NO_CACHE)
def evaluation_leaderboard(dataset_version: str, rows: list[dict]) -> None:
    ranked = sorted(rows, key=lambda r: -r["validation_accuracy"])
    table = [{"rank": i, "family": r["family"], "validation_accuracy": round(r["validation_accuracy"], 4),
              "test_accuracy": round(r["accuracy"], 4), "macro_f1": round(r["macro_f1"], 4),
              "ece": round(r["ece"], 4),
              "ece_before_temperature": "-" if r["ece_uncalibrated"] is None else round(r["ece_uncalibrated"], 4),
              "images_per_s": r["throughput"], "latency_ms": r["latency_ms"],
              "size_kib": r["size_kib"], "model_id": r["model_id"]} for i, r in enumerate(ranked, 1)]
    create_table_artifact(key=artifact_key("evaluation-leaderboard"), table=table,
                          description=f"Test split of {dataset_version}, ranked by validation accuracy")


@task(name="promote-best", cache_policy=NO_CACHE)
def promote_best(home: str | None, registry_url: str | None, dataset_version: str, candidates: list[dict],
                 floor: float, alpha: float, smoke: bool = False) -> dict:
    """Make the run's best model (by validation accuracy) the candidate, and production if the
    evidence says so; a smoke run, or a champion of another source, never changes production."""
    logger = get_run_logger()
    root, registry = _open(home, registry_url)
    try:
        challenger_id = max(candidates, key=lambda c: c["validation_accuracy"])["model_id"]
        challenger = _contender(root, registry, challenger_id, dataset_version)
        for _ in range(PROMOTE_ATTEMPTS):
            champion_id, revision = registry.alias("production")
            champion = _champion(root, registry, challenger, champion_id, dataset_version, smoke)
            evidence = decide(challenger, champion, floor=floor, alpha=alpha, smoke=smoke).as_dict()
            if registry.record_promotion(evidence, revision, _flow_run()):
                break
            logger.warning("production changed while deciding (another run promoted); deciding again")
        else:
            evidence = {**evidence, "promote": False, "reason": "production kept changing; gave up after "
                        f"{PROMOTE_ATTEMPTS} attempts"}
            registry.record_promotion(evidence, revision, _flow_run())
    finally:
        registry.close()
    create_markdown_artifact(key=artifact_key("promotion-decision"), markdown=decision_markdown(evidence),
                             description=f"promotion of {challenger_id}")
    logger.info("promotion of %s: %s (%s)", challenger_id, "PROMOTED" if evidence["promote"] else "not promoted",
                evidence["reason"])
    return evidence


def _champion(root: StorageRoot, registry: Registry, challenger: Contender, champion_id: str | None,
              dataset_version: str, smoke: bool) -> Contender | None:
    """The production model as the decision needs it: scored on this test split when it is to be
    compared (a champion scored on an earlier version of the same source is scored again)."""
    if champion_id is None:
        return None
    if champion_id == challenger.model_id:
        return challenger
    lineage, _ = registry.lineage(champion_id)
    if not needs_comparison(challenger, champion_id, lineage, smoke):
        return Contender(champion_id, lineage)
    ensure_evaluated(root, registry, model_store.read_record(root, champion_id), dataset_version)
    return _contender(root, registry, champion_id, dataset_version)


def _contender(root: StorageRoot, registry: Registry, model_id: str, dataset_version: str) -> Contender:
    rows = evaluation_store.read_predictions(root, model_id, dataset_version)
    order = np.argsort(rows["sample_id"], kind="stable")
    lineage, _ = registry.lineage(model_id)
    return Contender(model_id, lineage, dataset_version, rows["sample_id"][order], rows["correct"][order].astype(bool))


@task(name="registry-report", cache_policy=NO_CACHE)
def registry_report(home: str | None, registry_url: str | None) -> str:
    """Write the registry report (every version, production over time, alias history) to the
    storage root and show it as a markdown artifact; returns the HTML page's URL."""
    root, registry = _open(home, registry_url)
    try:
        report = build_registry_report(registry.list_versions(), registry.history(), registry.location)
    finally:
        registry.close()
    url = reports.write_registry_report(root, report.html)
    create_markdown_artifact(key=artifact_key("registry-report"), markdown=report.markdown + f"\nHTML report: `{url}`\n",
                             description="every model version, production over time, alias history")
    return url


def decision_markdown(evidence: dict) -> str:
    verdict = "promoted to production" if evidence["promote"] else "not promoted"
    def pct(value):
        return "-" if value is None else f"{value:.4f}"
    return "\n".join([
        f"# Promotion: {evidence['challenger']} {verdict}", "", f"**Why:** {evidence['reason']}", "",
        "| | challenger | champion |", "| --- | --- | --- |",
        f"| model | {evidence['challenger']} | {evidence['champion'] or '(none)'} |",
        f"| problem (source and classes) | {evidence.get('challenger_lineage') or '-'} | {evidence.get('champion_lineage') or '-'} |",
        f"| test accuracy on {evidence['dataset_version']} | {pct(evidence['challenger_accuracy'])} | {pct(evidence['champion_accuracy'])} |",
        f"| images only this model got right | {evidence['challenger_only_correct'] if evidence['challenger_only_correct'] is not None else '-'} "
        f"| {evidence['champion_only_correct'] if evidence['champion_only_correct'] is not None else '-'} |",
        "", f"McNemar exact p-value: {p_value_text(evidence['p_value'])} "
        f"(significance level {evidence['alpha']}); accuracy floor {evidence['floor']}."
        + (" A smoke run: its best model becomes the candidate, never production." if evidence.get("smoke") else ""),
    ]) + "\n"


def _kept(record: dict) -> str:
    """Which weights the model kept; records written before step schedules counted epochs."""
    if "best_step" not in record:
        return f"best epoch {record.get('best_epoch')} of {record.get('epochs_run')}"
    stopped = f"; {record['stopped_early']}" if record.get("stopped_early") else ""
    return f"kept the weights of step {record['best_step']:,} of {record['steps']:,}{stopped}"


def _recipe_line(record: dict) -> str:
    recipe = record.get("recipe")
    if record.get("members"):
        return "its members' own (see their model cards)"
    if not recipe:
        return "none: this model's config sets its own random changes (see the config below)"
    return Recipe.model_validate(recipe).describe()


def _calibration_line(record: dict) -> str:
    calibration = record.get("calibration")
    if not calibration:
        return "not recorded"
    return (f"temperature {calibration['temperature']:.3f}, fitted on the validation split; validation ECE "
            f"{calibration['validation_ece_before']:.4f} before, {calibration['validation_ece_after']:.4f} after "
            "(the test split's, before and after, are in the evaluation)")


def _machine_line(record: dict) -> str:
    where = record.get("trained_on")
    if not where:
        return ""
    worker = f", Dask worker {where['dask_worker']}" if where.get("dask_worker") else ""
    return f" of {where['host']} (pid {where['pid']}{worker})"


def _rows_line(record: dict) -> str:
    """Why a family that plans its own cost (the SVM) trained on the rows it did."""
    plan = record.get("row_plan")
    if not plan:
        return ""
    return f"\n- **Rows used**: {plan['rows']:,} of {plan['offered']:,} training images; {plan['reason']}"


def model_card(record: dict) -> str:
    config = "\n".join(f"| {k} | {v} |" for k, v in record["config"].items())
    libraries = ", ".join(f"{k} {v}" for k, v in record["libraries"].items())
    if record.get("members"):  # an ensemble: what it combines, and how much each counts
        trained_on = (f"a weighted vote of {len(record['members'])} models of dataset version "
                      f"`{record['dataset_version']}`, weighted on its {record['rows']['validation']:,} validation "
                      "images: " + ", ".join(f"`{m['model_id']}` {m['weight']:.3f}" for m in record["members"]))
    else:
        trained_on = (f"dataset version `{record['dataset_version']}` ({record['rows']['train']:,} training images, "
                      f"{record['rows']['validation']:,} validation images for model selection; the test split is "
                      "never used in training)")
    return f"""# Model card: {record['model_id']}

- **Family**: {record['family']}
- **Trained on**: {trained_on}{_rows_line(record)}
- **Validation accuracy**: {record['validation_accuracy']:.4f} ({_kept(record)})
- **Training time**: {record['train_seconds']:.1f} s on {record['threads']} thread(s){_machine_line(record)}; seed {record['seed']}
- **Recipe**: {_recipe_line(record)}
- **Calibration**: {_calibration_line(record)}
- **Code**: {record['code_version']} (model code {record['model_code']}); {libraries}
- **Trained at**: {record['trained_at']}
- **Intended use**: classifying 28x28 grayscale digits (or items) like those of its dataset; images of other
  kinds must be converted the way `mnist predict` converts them, and will score worse the further they are
  from the training data.

| config | value |
| --- | --- |
{config}
"""


@task(name="resolve-model", cache_policy=NO_CACHE)
def resolve_model(home: str | None, registry_url: str | None, reference: str, dataset: str | None) -> tuple[str, str]:
    """The model id of a reference (alias, id, prefix) and the dataset version to evaluate on."""
    root, registry = _open(home, registry_url, create=False)
    try:
        model_id = registry.resolve(reference)
        version = dataset_store.resolve_version(root, dataset) if dataset else registry.get(model_id)["dataset_version"]
        return model_id, version
    finally:
        registry.close()
