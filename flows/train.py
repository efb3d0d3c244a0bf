"""The ``train`` flow: every chosen model family trained concurrently on one dataset version.

A family that fails (an error, or its time budget) does not stop the others: the flow waits
for all of them, records the survivors, and ends Failed naming the family that did not make it.
"""

from mnist_pipeline.flows.config import TrainConfig
from mnist_pipeline.flows.runners import submit
from mnist_pipeline.tasks import eda as dataset_steps
from mnist_pipeline.tasks import train as steps
from mnist_pipeline.tasks.core.errors import TrainingFailed
from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.models.ensemble import ENSEMBLE
from mnist_pipeline.tasks.core.results import LeftOut, TrainOutcome
from mnist_pipeline.tasks.options import FLOW_RESULTS_AS_JSON
from prefect import flow
from prefect.states import Completed, Failed


def _run_name() -> str:
    from prefect.runtime import flow_run

    config = flow_run.parameters["config"]
    return f"train-{config.dataset or 'newest'}{'-smoke' if config.settings.smoke else ''}"


@flow(name="train", flow_run_name=_run_name, log_prints=True, **FLOW_RESULTS_AS_JSON)
def train(config: TrainConfig = TrainConfig()):
    """Train the chosen families on a dataset version (side by side, then the CNN on every core)
    and the ensemble over them; a family that fails fails alone."""
    store = config.store()  # once, here: the tasks on Dask workers get this root and registry
    settings = config.settings
    version = dataset_steps.resolve_dataset(store, config.dataset)
    to_gpu_workers = steps.check_device(settings.device, settings.dask_address)
    # The trial runs here: on a cluster, with whatever device this machine has.
    recipe = steps.choose_recipe(store, version, settings.seed, settings.subset(), settings.trial(),
                                 settings.needs_trial(), config.force,
                                 "auto" if settings.dask_address else settings.device)

    def job(family: str, **members) -> steps.TrainJob:
        return steps.TrainJob(
            store=store, dataset_version=version, family=family,
            config=settings.family_config(family, recipe), seed=settings.seed, subset=settings.subset(),
            threads=settings.threads(family), budget_s=settings.time_budget_s, force=config.force,
            progress_bar=settings.progress_bar, recipe=recipe if settings.uses_recipe(family) else None,
            device=settings.device, **members,
        )

    # Side by side, one core each; then, one at a time, the families that use every core.
    trained, failed = steps.gather({f: submit(steps.train_model, job(f), gpu=to_gpu_workers and catalog.declaration(f).on_device)
                                    for f in settings.side_by_side()})
    for family in settings.one_at_a_time():
        done, not_done = steps.outcome(family, steps.train_model(job(family), return_state=True))
        trained.update(done)
        failed.update(not_done)
    left_out = {}
    if settings.ensemble and len(trained) >= 2:
        members = tuple(sorted(model.model_id for model in trained.values()))
        combined = steps.train_ensemble(job(ENSEMBLE, member_ids=members), return_state=True)
        done, not_done = steps.outcome(ENSEMBLE, combined)
        left_out = {f: result for f, result in done.items() if isinstance(result, LeftOut)}
        trained.update({f: result for f, result in done.items() if f not in left_out})
        failed.update(not_done)
    steps.training_leaderboard(version, trained, failed, left_out)
    outcome = TrainOutcome(version, trained, failed, left_out)
    if failed:
        return Failed(message=outcome.failure_message(), data=TrainingFailed(outcome.failure_message(), outcome))
    return Completed(data=outcome)
