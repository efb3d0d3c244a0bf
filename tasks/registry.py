"""Prefect tasks of the evaluation and registry stage: evaluate, register, promote.

Each model is evaluated once per test split (the result is stored with the model and found
again), registered with its lineage and model card, and the run's best model by validation
accuracy is promoted when the decision in ``tasks/core/promotion.py`` says so; the registry only
records what was decided.
"""

from dataclasses import asdict, replace

import numpy as np
from mnist_pipeline.storage import datasets as dataset_store
from mnist_pipeline.storage import evaluations as evaluation_store
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage import reports
from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.core import evaluation as evaluating
from mnist_pipeline.tasks.core.cards import decision_markdown, model_card
from mnist_pipeline.tasks.core.dataset import row_hashes
from mnist_pipeline.tasks.core.eda.changes import data_changes
from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.promotion import (
    Contender,
    Decision,
    PromotionRules,
    Unseen,
    decide,
    needs_comparison,
)
from mnist_pipeline.tasks.core.records import TrainingRecord
from mnist_pipeline.tasks.core.registry_report import RegistryReport, build_registry_report
from mnist_pipeline.tasks.core.results import Evaluation, FlowRun, MirrorReport, TrainedModel
from mnist_pipeline.tasks.core.tables import leaderboard
from mnist_pipeline.tasks.mirror import mirror_quietly
from mnist_pipeline.tasks.options import STORAGE_IS_THE_CACHE
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.logging import get_run_logger

PROMOTE_ATTEMPTS = 5


def current_flow_run() -> FlowRun | None:
    """The pipeline run this task runs in: its id, name and page in the UI (None outside a run)."""
    from prefect.runtime import flow_run

    return FlowRun(flow_run.id, flow_run.name, flow_run.ui_url) if flow_run.id else None


def ensure_evaluated(root: StorageRoot, registry: Registry, record: TrainingRecord, dataset_version: str,
                     force: bool = False) -> Evaluation:
    """The model's scores on the dataset's test split, evaluating it when not done before."""
    model_id = record.model_id
    existing = None if force else evaluation_store.find_evaluation(root, model_id, dataset_version)
    if existing:
        if registry.evaluation(model_id, dataset_version) is None:
            registry.add_evaluation(model_id, dataset_version, existing)
        return Evaluation.of(record, dataset_version, existing,
                             evaluation_store.report_url(root, model_id, dataset_version))
    files = model_store.read_model_files(root, model_id, record)
    model = catalog.load(files)
    test = dataset_store.read_split(root, dataset_version, "test")
    class_names = dataset_store.read_manifest(root, dataset_version).class_names
    size = sum(len(v) for v in files.values())
    reused = None if force else _members_on(root, record, dataset_version, test.sample_ids)
    if reused is not None:  # an ensemble: its members were just evaluated on this split
        probabilities, speeds = reused
        result = evaluating.evaluate_scores(model, model.combine(probabilities), test, class_names, size,
                                            evaluating.combined_speed(speeds))
    else:
        result = evaluating.evaluate(model, test, class_names, size)
    report = evaluating.markdown(model_id, record.family, dataset_version, result.metrics)
    page = evaluating.html_report(model_id, record.family, dataset_version, result.metrics, result.figures)
    evaluation_store.write_evaluation(
        root, model_id, dataset_version, result.metrics, result.figures, report, page,
        {"sample_id": result.sample_ids, "predicted": result.predicted,
         "confidence": result.confidence, "correct": result.correct},
        result.probabilities, force=force,
    )
    registry.add_evaluation(model_id, dataset_version, result.metrics)
    return Evaluation.of(record, dataset_version, result.metrics,
                         evaluation_store.report_url(root, model_id, dataset_version))


def _members_on(root: StorageRoot, record: TrainingRecord, dataset_version: str,
                sample_ids: np.ndarray) -> tuple[dict[str, np.ndarray], list[dict]] | None:
    """An ensemble's members' stored probabilities on this test split and their measured speeds,
    when every member has them for exactly these images (else None: score the split)."""
    members = [m.model_id for m in record.members if m.weight > 0]
    stored = {}
    for member_id in members:
        found = evaluation_store.read_probabilities(root, member_id, dataset_version)
        if found is None or not np.array_equal(found[0], sample_ids):
            return None
        stored[member_id] = found[1]
    speeds = [evaluation_store.find_evaluation(root, m, dataset_version) for m in members]
    return (stored, speeds) if stored else None


@task(name="register-model", task_run_name="register-{model_id}", **STORAGE_IS_THE_CACHE)
def register_model(store: Store, model_id: str) -> bool:
    """Add a trained model to the registry with its lineage and a generated model card."""
    root = store.root
    record = model_store.read_record(root, model_id)
    lineage = dataset_store.lineage_of(dataset_store.read_manifest(root, record.dataset_version))
    run = current_flow_run()
    with store.registry() as registry:
        if run is not None:
            registry.record_flow_run(run)
        added = registry.register(record, model_store.model_url(root, model_id), model_card(record), lineage,
                                  run.id if run else None)
    get_run_logger().info("%s %s", model_id, "registered" if added else "was already registered")
    return added


@task(name="evaluate-model", task_run_name="evaluate-{model_id}-on-{dataset_version}", **STORAGE_IS_THE_CACHE)
def evaluate_model(store: Store, model_id: str, dataset_version: str, force: bool = False) -> Evaluation:
    """Evaluate on the test split (once per model and split) and leave a markdown artifact."""
    root = store.root
    record = model_store.read_record(root, model_id)
    with store.registry() as registry:
        evaluation = ensure_evaluated(root, registry, record, dataset_version, force)
    metrics = evaluation_store.find_evaluation(root, model_id, dataset_version)
    figures = evaluation_store.read_figures(root, model_id, dataset_version)
    text = evaluating.markdown_with_figures(model_id, record.family, dataset_version, metrics, figures)
    text += f"\nHTML report (every figure, full size): `{evaluation.report}`\n" if evaluation.report else ""
    create_markdown_artifact(key=artifact_key(f"evaluation-{record.family}"), markdown=text,
                             description=f"{model_id} on the test split of {dataset_version}")
    get_run_logger().info("%s: %s", model_id, evaluation.describe())
    return evaluation


@task(name="evaluation-leaderboard", **STORAGE_IS_THE_CACHE)
def evaluation_leaderboard(dataset_version: str, trained: dict[str, TrainedModel],
                           evaluations: dict[str, Evaluation]) -> None:
    evaluated = {family: model for family, model in trained.items() if family in evaluations}
    table = leaderboard(evaluated, evaluations=evaluations).select(*EVALUATION_COLUMNS)
    create_table_artifact(key=artifact_key("evaluation-leaderboard"), table=table.records(),
                          description=f"Test split of {dataset_version}, ranked by validation accuracy")


EVALUATION_COLUMNS = ("rank", "family", "validation_accuracy", "test_accuracy", "macro_f1", "ece",
                      "ece_before_temperature", "images_per_s", "latency_ms", "size_kib", "model_id")


@task(name="promote-best", **STORAGE_IS_THE_CACHE)
def promote_best(store: Store, dataset_version: str, candidates: list[Evaluation], rules: PromotionRules,
                 smoke: bool = False) -> Decision:
    """Make the run's best model (by validation accuracy) the candidate, and production if the
    evidence, on the test images neither it nor the champion has seen, says so; a smoke run, a
    champion of another source, or data that drifted past the rules' gate since the champion's
    dataset, never changes production."""
    logger = get_run_logger()
    root = store.root
    challenger_id = max(candidates, key=lambda c: c.validation_accuracy).model_id
    run = current_flow_run()
    flow_run_id = run.id if run else None
    with store.registry() as registry:
        challenger = _contender(root, registry, challenger_id, dataset_version)
        for _ in range(PROMOTE_ATTEMPTS):
            champion_id, revision = registry.alias("production")
            champion = _champion(root, registry, challenger, champion_id, dataset_version, smoke)
            scored = champion is not None and champion.correct is not None and champion is not challenger
            unseen = unseen_test_images(root, dataset_version, [challenger_id, champion.model_id]) if scored else None
            decision = decide(challenger, champion, rules, smoke=smoke, unseen=unseen)
            if decision.promote and scored:  # the drift gate (a model fit on both datasets) only where it can hold
                hold = drift_hold(root, champion.model_id, dataset_version, rules.hold_on_drift_auc)
                decision = decide(challenger, champion, rules, smoke=smoke, unseen=unseen, hold=hold)
            if registry.record_promotion(asdict(decision), revision, flow_run_id):
                break
            logger.warning("production changed while deciding (another run promoted); deciding again")
        else:
            decision = replace(decision, promote=False,
                               reason=f"production kept changing; gave up after {PROMOTE_ATTEMPTS} attempts")
            registry.record_promotion(asdict(decision), revision, flow_run_id)
    create_markdown_artifact(key=artifact_key("promotion-decision"), markdown=decision_markdown(decision),
                             description=f"promotion of {challenger_id}")
    logger.info("promotion of %s: %s (%s)", challenger_id, decision.verdict, decision.reason)
    return decision


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


def unseen_test_images(root: StorageRoot, dataset_version: str, model_ids: list[str]) -> Unseen:
    """The images of a dataset version's test split that none of ``model_ids`` trained or was
    validated on, compared by their pixels (the models' own datasets may be older versions, with
    other splits, even of an earlier release's format)."""
    test = dataset_store.read_split(root, dataset_version, "test")
    learned_from: dict[tuple[str, tuple[str, ...]], str] = {}  # models that saw the same splits: read once
    for model_id in model_ids:
        learned = model_store.read_record(root, model_id).seen
        learned_from.setdefault((learned.dataset_version, tuple(learned.splits)), model_id)
    seen = []
    for (version, splits), model_id in learned_from.items():
        try:
            seen += [row_hashes(digits.images) for digits in dataset_store.read_splits(root, version, splits,
                                                                                        outdated_ok=True)]
        except dataset_store.DatasetNotFound:
            return Unseen.unknown(len(test), f"dataset {version}, which {model_id} learned from, is no longer in "
                                  f"{root.url}")
        except dataset_store.DatasetDamaged as error:
            return Unseen.unknown(len(test), f"dataset {version}, which {model_id} learned from, is damaged: "
                                  f"{error.problem}")
    return Unseen.of(test.sample_ids, row_hashes(test.images), seen)


def drift_hold(root: StorageRoot, champion_id: str, dataset_version: str, max_auc: float | None) -> str | None:
    """Why the drift gate holds a promotion (None: it does not): the images this dataset version
    holds beyond the one production learned from are distinguishable from that one's (a domain
    classifier's ROC AUC above ``max_auc``). Measured against production's data, not the previous
    night's, so that drift a gate held stays held until a person promotes."""
    if max_auc is None:
        return None
    learned = model_store.read_record(root, champion_id).seen.dataset_version
    if learned == dataset_version:
        return None
    try:
        before = dataset_store.read_splits(root, learned, outdated_ok=True)
    except (dataset_store.DatasetNotFound, dataset_store.DatasetDamaged) as error:
        return f"the drift since production's dataset {learned} cannot be measured ({error})"
    now = dataset_store.read_splits(root, dataset_version)
    class_names = dataset_store.read_manifest(root, dataset_version).class_names
    return data_changes(learned, before, now, class_names).hold(max_auc)


def _contender(root: StorageRoot, registry: Registry, model_id: str, dataset_version: str) -> Contender:
    rows = evaluation_store.read_predictions(root, model_id, dataset_version)
    order = np.argsort(rows["sample_id"], kind="stable")
    lineage, _ = registry.lineage(model_id)
    return Contender(model_id, lineage, dataset_version, rows["sample_id"][order], rows["correct"][order].astype(bool))


def write_registry_report(store: Store, output: str | None = None) -> tuple[RegistryReport, str]:
    """Build the registry report (every version, production over time, alias history) and write
    its HTML page to ``output``, else into the storage root; the report and the page's URL."""
    with store.registry(create=False) as registry:
        report = build_registry_report(registry.list_versions(), registry.history(), registry.location)
    return report, reports.write_registry_report(store.root, report.html, output)


@task(name="registry-report", **STORAGE_IS_THE_CACHE)
def registry_report(store: Store) -> str:
    """Write the registry report to the storage root and show it as a markdown artifact; returns
    the HTML page's URL."""
    report, url = write_registry_report(store)
    create_markdown_artifact(key=artifact_key("registry-report"), markdown=report.markdown + f"\nHTML report: `{url}`\n",
                             description="every model version, production over time, alias history")
    return url


@task(name="resolve-model", **STORAGE_IS_THE_CACHE)
def resolve_model(store: Store, reference: str, dataset: str | None) -> tuple[str, str]:
    """The model id of a reference (alias, id, prefix) and the dataset version to evaluate on."""
    with store.registry(create=False) as registry:
        model_id = registry.resolve(reference)
        trained_on = registry.get(model_id).dataset_version
    return model_id, dataset_store.resolve_version(store.root, dataset) if dataset else trained_on


@task(name="mirror-to-mlflow", **STORAGE_IS_THE_CACHE)
def mirror_to_mlflow(store: Store, pipeline: bool = True) -> MirrorReport:
    """Bring the MLflow mirror up to date (when one is configured) after this run's registrations
    and promotion (``pipeline``: a run that gets a parent run of its own in MLflow); a mirror that
    cannot be reached is one warning, never a failed run."""
    logger = get_run_logger()
    report = mirror_quietly(store, current_flow_run() if pipeline else None, logger.warning)
    if report.up_to_date:
        logger.info(report.describe())
    return report
