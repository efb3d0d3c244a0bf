"""The ``predict`` flow: score a Parquet file of images into a Parquet file of predictions."""

from dataclasses import dataclass

from prefect import flow

from mnist_pipeline.flows.config import PredictConfig
from mnist_pipeline.tasks import predict as steps


@dataclass(frozen=True)
class PredictOutcome:
    model_id: str
    rows: int  # predictions written
    output: str  # where


@flow(name="predict", flow_run_name="predict-with-{config.model}", log_prints=True)
def predict(config: PredictConfig) -> PredictOutcome:
    """Score a Parquet file of images with a registered model (production by default) and write
    the predictions (label, class name, probabilities) to the output Parquet file named."""
    config = config.resolved()
    return PredictOutcome(**steps.score_parquet(config.home, config.registry_url, config.model, config.input,
                                                config.output))
