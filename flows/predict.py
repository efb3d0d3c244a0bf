"""The ``predict`` flow: score a Parquet file of images into a Parquet file of predictions."""

from prefect import flow

from flows.config import PredictConfig
from tasks import predict as steps


@flow(name="predict", flow_run_name="predict-with-{config.model}", log_prints=True)
def predict(config: PredictConfig) -> dict:
    return steps.score_parquet(config.home, config.registry_url, config.model, config.input, config.output)
