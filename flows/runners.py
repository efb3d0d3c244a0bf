"""The task runner the training stage runs on: threads here, or an existing Dask cluster."""

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from mnist_pipeline.flows.config import TrainSettings


def training_runner(settings: TrainSettings) -> TaskRunner:
    if settings.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.dask_address)
    # Threads suffice on one machine: torch and libsvm release the GIL while they compute,
    # and each training caps its own thread pools (see tasks/train.py).
    return ThreadPoolTaskRunner(max_workers=settings.workers())
