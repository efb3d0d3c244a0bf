"""The ``evaluate`` flow: (re-)evaluate one registered model on a dataset's test split."""

from prefect import flow

from mnist_pipeline.flows.config import EvaluateConfig
from mnist_pipeline.tasks import registry as steps
from mnist_pipeline.tasks.core.results import Evaluation
from mnist_pipeline.tasks.options import FLOW_RESULTS_AS_JSON


@flow(name="evaluate", flow_run_name="evaluate-{config.model}", log_prints=True, **FLOW_RESULTS_AS_JSON)
def evaluate(config: EvaluateConfig) -> Evaluation:
    """Evaluate a registered model on a dataset's test split (once per model and split): accuracy,
    per-class metrics, confusion, calibration, speed; a report and an artifact."""
    store = config.store()
    model_id, dataset = steps.resolve_model(store, config.model, config.dataset)
    evaluation = steps.evaluate_model(store, model_id, dataset, config.force)
    if store.mlflow_uri:  # its scores on this dataset version, in the MLflow mirror
        steps.mirror_to_mlflow(store, pipeline=False)
    return evaluation
