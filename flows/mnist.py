"""The ``mnist`` flow, run by the ``train-all`` deployment: every stage of the pipeline.

Stages so far: validated ingestion, then the EDA report. Training, evaluation and promotion join as they land.
"""

from prefect import flow

from flows.config import TrainAllConfig
from flows.eda import eda
from flows.ingest import ingest


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"train-all-{flow_run.parameters['config'].source.split('/')[-1]}"


@flow(name="mnist", flow_run_name=_run_name, log_prints=True)
def mnist(config: TrainAllConfig = TrainAllConfig()) -> dict:
    dataset = ingest(config.ingest_config())
    report = eda(config.eda_config(dataset.version))
    return {
        "dataset_version": dataset.version,
        "dataset_reused": dataset.reused,
        "eda_report": report.report,
    }
