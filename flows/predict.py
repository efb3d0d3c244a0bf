"""The ``predict`` flow: score a Parquet file of images into a Parquet file of predictions."""

from prefect import flow

from mnist_pipeline.flows.config import PredictConfig
from mnist_pipeline.tasks import predict as steps
from mnist_pipeline.tasks.core.results import Scored
from mnist_pipeline.tasks.options import FLOW_RESULTS_AS_JSON


@flow(name="predict", flow_run_name="predict-with-{config.model}", log_prints=True, **FLOW_RESULTS_AS_JSON)
def predict(config: PredictConfig) -> Scored:
    """Score a Parquet file of images with a registered model (production by default) and write
    the predictions (label, class name, probabilities) to the output Parquet file named."""
    return steps.score_parquet(config.store(), config.model, config.input, config.output)
