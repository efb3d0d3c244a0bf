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
from tasks.core.models import ENSEMBLE


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
    digits = steps.dataset_is_digits(config.home, version)
    training = steps.train_model.with_options(refresh_cache=config.force)

    def arguments(family: str) -> tuple:
        return (config.home, version, family, settings.family_config(family, digits), settings.seed,
                settings.subset(), settings.threads(family), settings.time_budget_s, config.force,
                settings.progress_bar)

    # Side by side, one core each; then, one at a time, the families that use every core.
    trained, failed = steps.gather({f: training.submit(*arguments(f)) for f in settings.side_by_side()})
    for family in settings.one_at_a_time():
        done, not_done = steps.outcome(family, training(*arguments(family), return_state=True))
        trained.update(done)
        failed.update(not_done)
    if settings.ensemble and len(trained) >= 2:
        combined = steps.train_ensemble.with_options(refresh_cache=config.force)(
            config.home, version, sorted(s["model_id"] for s in trained.values()),
            settings.family_config(ENSEMBLE, digits), settings.seed, settings.subset(), config.force,
            return_state=True,
        )
        trained_ensemble, failed_ensemble = steps.outcome(ENSEMBLE, combined)
        trained.update(trained_ensemble)
        failed.update(failed_ensemble)
    steps.training_leaderboard(version, trained, failed)
    outcome = TrainOutcome(version, trained, failed)
    if failed:
        return Failed(message=outcome.failure_message(), data=outcome)
    return Completed(data=outcome)
