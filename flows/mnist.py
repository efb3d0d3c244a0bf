"""The ``mnist`` flow, run by the ``train-all`` deployment: every stage of the pipeline.

Stages so far: validated ingestion. EDA, training, evaluation and promotion join as they land.
"""

from prefect import flow

from flows.config import TrainAllConfig
from flows.ingest import ingest


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"train-all-{flow_run.parameters['config'].source.split('/')[-1]}"


@flow(name="mnist", flow_run_name=_run_name, log_prints=True)
def mnist(config: TrainAllConfig = TrainAllConfig()) -> dict:
    outcome = ingest(config.ingest_config())
    return {"dataset_version": outcome.version, "dataset_reused": outcome.reused}
