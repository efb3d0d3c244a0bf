"""The ``evaluate`` flow: (re-)evaluate one registered model on a dataset's test split."""

from prefect import flow

from flows.config import EvaluateConfig
from tasks import registry as steps


@flow(name="evaluate", flow_run_name="evaluate-{config.model}", log_prints=True)
def evaluate(config: EvaluateConfig) -> dict:
    model_id, dataset = steps.resolve_model(config.home, config.registry_url, config.model, config.dataset)
    return steps.evaluate_model(config.home, config.registry_url, model_id, dataset, config.force)
