"""The ``mnist`` flow, run by the ``train-all`` deployment: every stage of the pipeline.

Validated ingestion, the EDA report, the model families trained in parallel, then each trained
model registered and evaluated on the test split, and the best one (by validation accuracy)
promoted to production when the evidence says it beats the champion. A family that fails does
not stop the others; the run then ends Failed, naming it, after the survivors went through
every stage.
"""

from contextlib import nullcontext

from prefect import flow, tags
from prefect.states import Completed, Failed

from mnist_pipeline.flows.config import TrainAllConfig
from mnist_pipeline.flows.eda import eda
from mnist_pipeline.flows.ingest import ingest
from mnist_pipeline.flows.runners import training_runner
from mnist_pipeline.flows.train import train
from mnist_pipeline.tasks import ingest as ingest_steps
from mnist_pipeline.tasks import registry as steps
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.artifacts import SMOKE_TAG
from mnist_pipeline.tasks.core.errors import TrainingFailed
from mnist_pipeline.tasks.core.results import MirrorReport, PipelineOutcome
from mnist_pipeline.tasks.summary import run_summary
from mnist_pipeline.tasks.options import FLOW_RESULTS_AS_JSON


def _run_name() -> str:
    from prefect.runtime import flow_run

    config = flow_run.parameters["config"]
    smoke = "-smoke" if config.train.smoke else ""
    return f"train-all-{ingest_steps.source_name(config.source)}{smoke}"


@flow(name="mnist", flow_run_name=_run_name, log_prints=True, **FLOW_RESULTS_AS_JSON)
def mnist(config: TrainAllConfig = TrainAllConfig()):
    """The nightly pipeline: ingest, EDA, train every family and the ensemble, evaluate and
    register them, and promote the best when the evidence says so."""
    store = config.store()  # storage root and registry decided once, where the run starts
    # A smoke run's subflows and tasks carry the tag, and its artifacts keys of their own.
    with tags(SMOKE_TAG) if config.train.smoke else nullcontext():
        return _stages(config, store)


def _stages(config: TrainAllConfig, store: Store):
    ingested = ingest(config.ingest_config(ingest_steps.resolve_source(config.source), store), return_state=True)
    dataset = ingested.result()
    drawn = eda(config.eda_config(dataset.version, store), return_state=True)
    report = drawn.result()
    trained = train.with_options(task_runner=training_runner(config.train))(
        config.train_config(dataset.version, store), return_state=True
    )
    training = TrainingFailed.outcome_of(trained.result(raise_on_failure=False))
    evaluations, promotion = {}, None
    for family, model in training.trained.items():
        steps.register_model(store, model.model_id)
        evaluations[family] = steps.evaluate_model(store, model.model_id, dataset.version, config.force)
    if evaluations:
        steps.evaluation_leaderboard(dataset.version, training.trained, evaluations)
        promotion = steps.promote_best(store, dataset.version, list(evaluations.values()), config.promotion.rules(),
                                       config.train.smoke)
        steps.registry_report(store)
    mirror = steps.mirror_to_mlflow(store) if store.mlflow_uri else MirrorReport(None)
    result = PipelineOutcome(
        dataset_version=dataset.version,
        dataset_reused=dataset.reused,
        eda_report=report.report,
        changes=report.changes,
        training=training,
        evaluations=evaluations,
        promotion=promotion,
        mirror=mirror,
    )
    run_summary(result, {name: state.state_details.flow_run_id for name, state in
                         (("ingest", ingested), ("eda", drawn), ("train", trained))})
    if training.failed:
        return Failed(message=training.failure_message(), data=TrainingFailed(training.failure_message(), result))
    return Completed(data=result)
