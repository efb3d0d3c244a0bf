"""The ``mnist`` flow, run by the ``train-all`` deployment: every stage of the pipeline.

Validated ingestion, the EDA report, the model families trained in parallel, then each trained
model registered and evaluated on the test split, and the best one (by validation accuracy)
promoted to production when the evidence says it beats the champion. A family that fails does
not stop the others; the run then ends Failed, naming it, after the survivors went through
every stage.
"""

from prefect import flow
from prefect.states import Completed, Failed

from flows.config import TrainAllConfig
from flows.eda import eda
from flows.ingest import ingest
from flows.runners import training_runner
from flows.train import train
from tasks import registry as steps


def _run_name() -> str:
    from prefect.runtime import flow_run

    config = flow_run.parameters["config"]
    smoke = "-smoke" if config.train.smoke else ""
    return f"train-all-{config.source.split('/')[-1]}{smoke}"


@flow(name="mnist", flow_run_name=_run_name, log_prints=True)
def mnist(config: TrainAllConfig = TrainAllConfig()):
    dataset = ingest(config.ingest_config())
    report = eda(config.eda_config(dataset.version))
    training = train.with_options(task_runner=training_runner(config.train))(
        config.train_config(dataset.version), return_state=True
    ).result(raise_on_failure=False)
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
    result = {
        "dataset_version": dataset.version,
        "dataset_reused": dataset.reused,
        "eda_report": report.report,
        "models": training.trained,
        "failed": training.failed,
        "evaluations": {e["family"]: e for e in evaluated},
        "promotion": promotion,
    }
    if training.failed:
        return Failed(message=training.failure_message(), data=result)
    return Completed(data=result)
