"""`mnist train-all`: the whole pipeline, as the nightly deployment runs it."""

import argparse
import sys

from mnist_pipeline.flows.cli.shared import (
    EXIT_FAILED, Options, dataset_summary, ingest_settings, prepare_prefect, read_manifest,
)


def add_commands(commands, options: Options) -> None:
    train_all = commands.add_parser(
        "train-all", parents=[options.home, options.registry, options.source, options.force], help="run the whole pipeline locally",
        description="Run the `mnist` flow (what the train-all deployment runs) in this process: "
        "ingest and validate, the EDA report, then the model families trained in parallel. "
        "Families already trained with the same data, config and code are reused.",
    )
    train_all.add_argument(
        "--models", type=_families, metavar="LIST",
        help="comma-separated families to train: logreg,svm,mlp,cnn (default: all four)",
    )
    train_all.add_argument(
        "--smoke", action="store_true",
        help="tiny subset and a few dozen optimizer steps per family, to check a set-up in seconds",
    )
    train_all.add_argument(
        "--no-ensemble", action="store_true",
        help="do not combine the trained families into a weighted soft vote (the `ensemble` model)",
    )
    train_all.add_argument("--train-seed", type=int, help="seed of model training (default 0)")
    train_all.add_argument(
        "--parallelism", type=int, help="trainings at once (default: one per CPU core)"
    )
    train_all.add_argument(
        "--dask", metavar="ADDRESS", help="train on an existing Dask cluster (tcp://host:8786)"
    )
    train_all.add_argument(
        "--time-budget", type=float, metavar="SECONDS",
        help="wall-clock allowance per family (default 900): a torch family stops at its next "
        "validation and keeps its best weights; an SVM not yet fitted fails alone",
    )
    train_all.add_argument(
        "--no-progress", action="store_true", help="no progress bars on the terminal"
    )
    train_all.add_argument(
        "--min-test-accuracy", type=float, metavar="A",
        help="promotion floor: the best model needs this test accuracy (default 0.80)",
    )
    train_all.add_argument(
        "--alpha", type=float, help="promotion significance level of McNemar's test (default 0.05)"
    )
    train_all.set_defaults(handler=_train_all)


def _train_all(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import TrainAllConfig

    config = TrainAllConfig(
        home=args.home, source=args.source, force=args.force,
        ingest=ingest_settings(args), train=_train_settings(args),
        promotion=_promotion_settings(args), registry_url=args.registry,
    )
    prepare_prefect(args.home)
    from mnist_pipeline.flows.mnist import mnist

    state = mnist(config, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):  # a stage before training failed: nothing to show
        raise result
    print(f"dataset {result.dataset_version}")
    print(dataset_summary(read_manifest(args.home, result.dataset_version)))
    print(f"  EDA report: {result.eda_report}")
    print(_leaderboard(result.models, result.failed, result.evaluations, result.left_out))
    if result.promotion:
        promotion = result.promotion
        verdict = "promoted to production" if promotion["promote"] else "not promoted"
        print(f"  {promotion['challenger']} {verdict}: {promotion['reason']}")
    if result.failed:
        print(f"error: {state.message}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _leaderboard(models: dict, failed: dict, evaluations: dict, left_out: dict) -> str:
    lines = ["  models (by validation accuracy):     validation  test"]
    for summary in sorted(models.values(), key=lambda s: -s["validation_accuracy"]):
        status = "reused" if summary["reused"] else f"trained in {summary['train_seconds']:.1f} s"
        test = evaluations.get(summary["family"], {}).get("accuracy")
        lines.append(
            f"    {summary['family']:<7} {summary['model_id']:<24} {summary['validation_accuracy']:.4f}"
            f"    {'-' if test is None else f'{test:.4f}'}  ({status})"
        )
    lines += [f"    {family:<7} FAILED: {reason}" for family, reason in failed.items()]
    lines += [f"    {family:<7} {reason}" for family, reason in left_out.items()]
    return "\n".join(lines)


def _families(text: str) -> list[str]:
    from mnist_pipeline.tasks.core.models.configs import FAMILIES

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown) or text!r}; "
            f"choose from {','.join(FAMILIES)}"
        )
    return names


def _train_settings(args: argparse.Namespace) -> dict:
    settings = {
        "smoke": args.smoke,
        "ensemble": not args.no_ensemble,
        "progress_bar": not args.no_progress and sys.stderr.isatty(),
    }
    for option, name in (("models", "models"), ("train_seed", "seed"), ("parallelism", "parallelism"),
                         ("dask", "dask_address"), ("time_budget", "time_budget_s")):
        if getattr(args, option) is not None:
            settings[name] = getattr(args, option)
    return settings


def _promotion_settings(args: argparse.Namespace) -> dict:
    settings = {}
    if args.min_test_accuracy is not None:
        settings["min_test_accuracy"] = args.min_test_accuracy
    if args.alpha is not None:
        settings["alpha"] = args.alpha
    return settings
