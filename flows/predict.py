"""The ``predict`` flow: score files of images with a registered model, as `mnist predict` does.

Pictures, IDX and Parquet files are scored into the flow's result (what the command prints); with
an output file, one Parquet input is scored into a Parquet file of predictions a batch at a time.
"""

from prefect import flow

from mnist_pipeline.flows.config import PredictConfig
from mnist_pipeline.tasks import predict as steps
from mnist_pipeline.tasks.core.results import Scored
from mnist_pipeline.tasks.core.scoring import Predictions
from mnist_pipeline.tasks.options import FLOW_RESULTS_AS_JSON


@flow(name="predict", flow_run_name="predict-with-{config.model}", log_prints=True, **FLOW_RESULTS_AS_JSON)
def predict(config: PredictConfig) -> Predictions | Scored:
    """Score the input files with a registered model (production by default): the predictions
    (label, class name, probabilities) per image, or, with an output file, written there."""
    store = config.store()
    if config.output:
        return steps.score_parquet(store, config.model, config.inputs[0], config.output)
    return steps.score_files(store, config.model, config.inputs, config.preprocess)
