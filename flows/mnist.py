"""The ``mnist`` flow, run by the ``train-all`` deployment: every stage of the pipeline.

Stages: validated ingestion, the EDA report, then the model families trained in parallel
(evaluation and promotion join as they land). A family that fails does not stop the others;
the run then ends Failed, naming it, after the survivors have gone through every stage.
"""

from prefect import flow
from prefect.states import Completed, Failed

from flows.config import TrainAllConfig
from flows.eda import eda
from flows.ingest import ingest
from flows.runners import training_runner
from flows.train import train


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
    result = {
        "dataset_version": dataset.version,
        "dataset_reused": dataset.reused,
        "eda_report": report.report,
        "models": training.trained,
        "failed": training.failed,
    }
    if training.failed:
        return Failed(message=training.failure_message(), data=result)
    return Completed(data=result)
