"""The ``mnist`` flow, run by the ``train-all`` deployment: every stage of the pipeline.

Validated ingestion, the EDA report, the model families trained in parallel, then each trained
model registered and evaluated on the test split, and the best one (by validation accuracy)
promoted to production when the evidence says it beats the champion. A family that fails does
not stop the others; the run then ends Failed, naming it, after the survivors went through
every stage.
"""

from contextlib import nullcontext
from dataclasses import asdict, dataclass

from prefect import flow, tags
from prefect.states import Completed, Failed

from mnist_pipeline.flows.config import TrainAllConfig
from mnist_pipeline.flows.eda import eda
from mnist_pipeline.flows.ingest import ingest
from mnist_pipeline.flows.runners import training_runner
from mnist_pipeline.flows.train import train
from mnist_pipeline.tasks import ingest as ingest_steps
from mnist_pipeline.tasks import registry as steps
from mnist_pipeline.tasks.artifacts import SMOKE_TAG
from mnist_pipeline.tasks.summary import run_summary


@dataclass(frozen=True)
class PipelineOutcome:
    dataset_version: str
    dataset_reused: bool  # the source was ingested before: nothing decoded or written
    eda_report: str  # URL of the HTML report
    models: dict[str, dict]  # family -> training summary (model_id, validation_accuracy, ...)
    failed: dict[str, str]  # family -> why it failed
    left_out: dict[str, str]  # family -> why a fitted model was not kept (an ensemble that adds nothing)
    evaluations: dict[str, dict]  # family -> test-split summary (accuracy, macro_f1, ...)
    promotion: dict | None  # the promotion decision and its evidence (None: nothing to promote)


def _run_name() -> str:
    from prefect.runtime import flow_run

    config = flow_run.parameters["config"]
    smoke = "-smoke" if config.train.smoke else ""
    return f"train-all-{ingest_steps.source_name(config.source)}{smoke}"


@flow(name="mnist", flow_run_name=_run_name, log_prints=True)
def mnist(config: TrainAllConfig = TrainAllConfig()):
    """The nightly pipeline: ingest, EDA, train every family and the ensemble, evaluate and
    register them, and promote the best when the evidence says so."""
    config = config.resolved()  # storage root and registry decided once, where the run starts
    # A smoke run's subflows and tasks carry the tag, and its artifacts keys of their own.
    with tags(SMOKE_TAG) if config.train.smoke else nullcontext():
        return _stages(config)


def _stages(config: TrainAllConfig):
    ingested = ingest(config.ingest_config(ingest_steps.resolve_source(config.source)), return_state=True)
    dataset = ingested.result()
    drawn = eda(config.eda_config(dataset.version), return_state=True)
    report = drawn.result()
    trained = train.with_options(task_runner=training_runner(config.train))(
        config.train_config(dataset.version), return_state=True
    )
    training = trained.result(raise_on_failure=False)
    evaluated, promotion = [], None
    for summary in training.trained.values():
        steps.register_model(config.home, config.registry_url, summary["model_id"])
        evaluated.append(steps.evaluate_model(
            config.home, config.registry_url, summary["model_id"], dataset.version, config.force
        ))
    if evaluated:
        steps.evaluation_leaderboard(dataset.version, evaluated)
        promotion = steps.promote_best(
            config.home, config.registry_url, dataset.version, evaluated,
            config.promotion.min_test_accuracy, config.promotion.alpha, config.train.smoke,
        )
        steps.registry_report(config.home, config.registry_url)
    result = PipelineOutcome(
        dataset_version=dataset.version,
        dataset_reused=dataset.reused,
        eda_report=report.report,
        models=training.trained,
        failed=training.failed,
        left_out=training.left_out,
        evaluations={e["family"]: e for e in evaluated},
        promotion=promotion,
    )
    run_summary(asdict(result), {name: state.state_details.flow_run_id for name, state in
                         (("ingest", ingested), ("eda", drawn), ("train", trained))})
    if training.failed:
        return Failed(message=training.failure_message(), data=result)
    return Completed(data=result)
