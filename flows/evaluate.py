"""The ``evaluate`` flow: (re-)evaluate one registered model on a dataset's test split."""

from dataclasses import dataclass

from prefect import flow

from mnist_pipeline.flows.config import EvaluateConfig
from mnist_pipeline.tasks import registry as steps


@dataclass(frozen=True)
class EvaluateOutcome:
    model_id: str
    family: str
    dataset_version: str
    accuracy: float
    macro_f1: float
    ece: float  # expected calibration error (calibrated: at the validation-fitted temperature)
    ece_uncalibrated: float | None  # the same before the temperature
    throughput: float | None  # images per second in batches of 1,000
    latency_ms: float | None  # one image
    size_kib: int
    validation_accuracy: float
    report: str | None  # URL of the HTML report


@flow(name="evaluate", flow_run_name="evaluate-{config.model}", log_prints=True)
def evaluate(config: EvaluateConfig) -> EvaluateOutcome:
    """Evaluate a registered model on a dataset's test split (once per model and split): accuracy,
    per-class metrics, confusion, calibration, speed; a report and an artifact."""
    config = config.resolved()
    model_id, dataset = steps.resolve_model(config.home, config.registry_url, config.model, config.dataset)
    summary = steps.evaluate_model(config.home, config.registry_url, model_id, dataset, config.force)
    return EvaluateOutcome(dataset_version=dataset, **summary)
