"""The task runner the training stage runs on: threads here, or an existing Dask cluster; and
where on the cluster a task may run."""

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from mnist_pipeline.flows.config import TrainSettings
from mnist_pipeline.tasks.core.devices import GPU_RESOURCE


def training_runner(settings: TrainSettings) -> TaskRunner:
    if settings.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.dask_address)
    # Threads suffice on one machine: torch and libsvm release the GIL while they compute,
    # and each training caps its own thread pools (see tasks/train.py).
    return ThreadPoolTaskRunner(max_workers=settings.workers())


def submit(task, *args, gpu: bool = False) -> PrefectFuture:
    """``task.submit(*args)``; with ``gpu``, to a Dask worker that declares the GPU resource only
    (``dask worker ... --resources GPU=1``: one such task at a time per GPU)."""
    if not gpu:
        return task.submit(*args)
    import dask

    with dask.annotate(resources={GPU_RESOURCE: 1}):
        return task.submit(*args)
