"""The ``train`` flow: every chosen model family trained concurrently on one dataset version.

A family that fails (an error, or its time budget) does not stop the others: the flow waits
for all of them, records the survivors, and ends Failed naming the family that did not make it.
"""

from dataclasses import dataclass, field

from prefect import flow
from prefect.states import Completed, Failed

from flows.config import TrainConfig
from tasks import eda as dataset_steps
from tasks import train as steps


@dataclass(frozen=True)
class TrainOutcome:
    dataset_version: str
    trained: dict[str, dict]  # family -> summary (model_id, validation_accuracy, ...)
    failed: dict[str, str] = field(default_factory=dict)  # family -> reason

    def failure_message(self) -> str:
        return "training failed for " + "; ".join(f"{family} ({reason})" for family, reason in self.failed.items())


def _run_name() -> str:
    from prefect.runtime import flow_run

    config = flow_run.parameters["config"]
    return f"train-{config.dataset or 'newest'}{'-smoke' if config.settings.smoke else ''}"


@flow(name="train", flow_run_name=_run_name, log_prints=True)
def train(config: TrainConfig = TrainConfig()):
    settings = config.settings
    version = dataset_steps.resolve_dataset(config.home, config.dataset)
    futures = {
        family: steps.train_model.with_options(refresh_cache=config.force).submit(
            config.home, version, family, settings.family_config(family), settings.seed,
            settings.subset(), settings.threads(), settings.time_budget_s, config.force,
            settings.progress_bar,
        )
        for family in settings.ordered_models()
    }
    trained, failed = steps.gather(futures)
    steps.training_leaderboard(version, trained, failed)
    outcome = TrainOutcome(version, trained, failed)
    if failed:
        return Failed(message=outcome.failure_message(), data=outcome)
    return Completed(data=outcome)
