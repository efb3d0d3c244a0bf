"""`mnist train-all`: the whole pipeline, as the nightly deployment runs it."""

import argparse
import sys

from mnist_pipeline.flows.cli.options import (
    FORCE, HOME, INGEST, MLFLOW, PROMOTION, REGISTRY, SOURCE, TRAIN, add_command, given,
)
from mnist_pipeline.flows.cli.shared import EXIT_FAILED, dataset_summary, prepare_prefect

# What `mnist train-all` shows of each model (the leaderboard of tasks/core/tables.py).
LEADERBOARD_COLUMNS = ("family", "model_id", "validation_accuracy", "test_accuracy", "status", "note")


def add_commands(commands) -> None:
    train_all = add_command(
        commands, "train-all", HOME, REGISTRY, MLFLOW, SOURCE, FORCE, *INGEST, *TRAIN, *PROMOTION,
        help="run the whole pipeline locally",
        description="Run the `mnist` flow (what the train-all deployment runs) in this process: "
        "ingest and validate, the EDA report, then the model families trained in parallel, each "
        "evaluated and registered, and the best promoted when the evidence says so. "
        "Families already trained with the same data, config and code are reused.",
    )
    train_all.set_defaults(handler=_train_all)


def _train_all(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import TrainAllConfig

    train = {"progress_bar": sys.stderr.isatty(), **dict(given(args, *TRAIN))}  # bars on a terminal
    config = TrainAllConfig(**dict(given(args, HOME, REGISTRY, MLFLOW, SOURCE, FORCE)), ingest=dict(given(args, *INGEST)),
                            train=train, promotion=dict(given(args, *PROMOTION)))
    prepare_prefect(args.home)
    from mnist_pipeline.flows.mnist import mnist
    from mnist_pipeline.storage import datasets
    from mnist_pipeline.tasks.core.errors import TrainingFailed
    from mnist_pipeline.tasks.core.tables import leaderboard

    state = mnist(config, return_state=True)
    # A stage before training failed: its error, and nothing to show; a family failed: the rest.
    result = TrainingFailed.outcome_of(state.result(raise_on_failure=False))
    print(f"dataset {result.dataset_version}")
    print(dataset_summary(datasets.read_manifest(config.store().root, result.dataset_version)))
    print(f"  EDA report: {result.eda_report}")
    if result.changes:
        print(f"  new data:   {result.changes.describe()}")
    print("  models (by validation accuracy):")
    training = result.training
    board = leaderboard(training.trained, training.failed, training.left_out, result.evaluations)
    print(board.select(*LEADERBOARD_COLUMNS).text())
    if result.promotion:
        print(f"  {result.promotion.challenger} {result.promotion.verdict}: {result.promotion.reason}")
    if result.mirror.enabled:
        print(f"  {result.mirror.describe()}")
    if training.failed:
        print(f"error: {state.message}", file=sys.stderr)
        return EXIT_FAILED
    return 0
