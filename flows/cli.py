"""The ``mnist`` command line.

Only the standard library is imported at start-up, so ``mnist --help`` answers at once;
each command imports Prefect, Great Expectations or pyarrow when it runs.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence

EXIT_USAGE, EXIT_FAILED = 2, 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one readable line for the errors users can act on
        if not _is_user_error(error):
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist",
        description="An orchestrated pipeline for MNIST-format digit datasets: validated "
        "ingestion to Parquet, EDA, training, evaluation and a model registry.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    home = argparse.ArgumentParser(add_help=False)
    home.add_argument(
        "--home",
        help="storage root (a folder or fsspec URL); default: $MNIST_HOME, "
        "else ~/.local/share/mnist-pipeline",
    )
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument(
        "--source",
        help="mnist (download), fashion-mnist, mnist-sample (offline, 5,000 digits), idx:DIR "
        "(four local IDX files) or csv:PATH (Kaggle train.csv); default: the Prefect Variable "
        "mnist_source where set, else mnist",
    )
    source.add_argument("--seed", type=int, help="seed of the validation/test split (default 0)")
    source.add_argument(
        "--validation-fraction", type=float, help="share of train held out for validation (0.1)"
    )
    source.add_argument(
        "--test-fraction", type=float, help="test share carved from sources without one (1/7)"
    )
    source.add_argument(
        "--mirror", action="append", default=[], metavar="URL",
        help="a mirror to try before the built-in ones (repeatable)",
    )
    source.add_argument(
        "--max-images-per-split", type=int, metavar="N",
        help="refuse sources with more images per split (default 1,000,000; files are checked "
        "before reading and while decompressing)",
    )

    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument(
        "--registry", metavar="URL",
        help="registry database (SQLAlchemy URL); default: $MNIST_REGISTRY_URL, else SQLite in the storage root",
    )

    force = argparse.ArgumentParser(add_help=False)
    force.add_argument(
        "--force", action="store_true",
        help="redo every step even when its result exists (decode, validate, draw, train)",
    )

    ingest = commands.add_parser(
        "ingest", parents=[home, source, force], help="fetch, validate and publish a dataset version",
        description="Fetch a source, validate it with Great Expectations and publish it as a "
        "versioned Parquet dataset. Prints the dataset version.",
    )
    ingest.add_argument("--json", action="store_true", help="print the manifest as JSON")
    ingest.set_defaults(handler=_ingest)

    datasets = commands.add_parser(
        "datasets", parents=[home], help="list dataset versions, or show one",
        description="List the dataset versions in the storage root, or show one's manifest.",
    )
    datasets.add_argument("version", nargs="?", help="a version (or unique prefix) to show")
    datasets.add_argument("--json", action="store_true", help="machine-readable output")
    datasets.set_defaults(handler=_datasets)

    eda = commands.add_parser(
        "eda", parents=[home], help="write the EDA report of a dataset version",
        description="Draw the exploratory data analysis report (HTML with embedded figures, "
        "plus the PNGs) of a dataset version into the storage root and print its path.",
    )
    eda.add_argument("--dataset", metavar="VERSION", help="version or unique prefix (default: newest)")
    eda.add_argument("--seed", type=int, help="seed of the sample grid and PCA sample (default 0)")
    eda.add_argument("--force", action="store_true", help="redraw even if the report exists")
    eda.set_defaults(handler=_eda)

    train_all = commands.add_parser(
        "train-all", parents=[home, registry, source, force], help="run the whole pipeline locally",
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

    evaluate = commands.add_parser(
        "eval", parents=[home, registry], help="(re-)evaluate a registered model version",
        description="Evaluate a model version on a dataset's test split (default: the split it "
        "was trained with) and print its metrics; stored with the model.",
    )
    evaluate.add_argument("model", nargs="?", default="production", help="model id, prefix or alias (production)")
    evaluate.add_argument("--dataset", metavar="VERSION", help="dataset version whose test split to use")
    evaluate.add_argument("--force", action="store_true", help="evaluate again even if done before")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=_eval)

    predict = commands.add_parser(
        "predict", parents=[home, registry], help="classify images with the production model",
        description="Print the predicted label, its class name (for datasets that name their "
        "classes) and its probability for each input: PNG/JPEG images, IDX image files (.gz or "
        "not), or Parquet files with an `image` column. A 28x28 single-channel image is used as "
        "it is (inverted if its background is light); other sizes are converted the way the "
        "model's dataset was made (digits: fitted into 20x20 and centred by mass; named items: "
        "trimmed, longest edge 28, centred). With --output, a Parquet file of predictions is "
        "written through the `predict` flow instead.",
    )
    predict.add_argument("files", nargs="+", metavar="FILE")
    predict.add_argument("--model", default="production", help="model id, prefix or alias (production)")
    predict.add_argument(
        "--preprocess", choices=("auto", "none", "digit"), default="auto",
        help="how image files become 28x28: auto (as above), none (pixels as they are; 28x28 only) "
        "or digit (MNIST's digit conversion whatever the size)",
    )
    predict.add_argument("--json", action="store_true", help="one JSON object per input")
    predict.add_argument("--output", metavar="PARQUET", help="score one Parquet FILE into this Parquet file")
    predict.set_defaults(handler=_predict)

    models = commands.add_parser(
        "models", help="list, show, promote, roll back or report registered models",
        description="The model registry: versions, their metrics and aliases.",
    )
    model_commands = models.add_subparsers(title="model commands", metavar="ACTION")
    listing = model_commands.add_parser("list", parents=[home, registry], help="list model versions")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_models_list)
    show = model_commands.add_parser("show", parents=[home, registry], help="show one version and its card")
    show.add_argument("version", help="model id, prefix or alias")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_models_show)
    promote = model_commands.add_parser("promote", parents=[home, registry], help="make a version production")
    promote.add_argument("version", help="model id, prefix or alias")
    promote.add_argument("--reason", default="promoted by hand", help="recorded in the alias history")
    promote.add_argument("--force", action="store_true",
                         help="promote a smoke model, or one of another source than production, anyway")
    promote.set_defaults(handler=_models_promote)
    rollback = model_commands.add_parser(
        "rollback", parents=[home, registry], help="move production back to its previous version"
    )
    rollback.add_argument("--reason", default="rolled back by hand", help="recorded in the alias history")
    rollback.add_argument("--force", action="store_true",
                          help="roll back even to a model of another source than production's")
    rollback.set_defaults(handler=_models_rollback)
    report = model_commands.add_parser(
        "report", parents=[home, registry], help="write the registry report (one HTML page)",
        description="Write one self-contained HTML page with every model version's metrics per "
        "dataset, production's test accuracy over time and the alias history, and print its path "
        "(default: <storage root>/reports/registry.html; train-all runs write it too).",
    )
    report.add_argument("--output", metavar="FILE", help="write the page here instead")
    report.set_defaults(handler=_models_report)
    history = model_commands.add_parser("history", parents=[home, registry], help="every alias change")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.set_defaults(handler=_models_history)
    models.set_defaults(handler=lambda args: models.print_help() or EXIT_USAGE)

    up = commands.add_parser(
        "up", parents=[home], help="start a local Prefect server, work pool, deployments and worker",
        description="Start a Prefect server bound to 127.0.0.1, create the `mnist` process work "
        "pool, apply deployments/prefect.yaml and start a worker, then wait; Ctrl-C stops them. "
        "Runs use the storage root given here.",
    )
    up.add_argument("--port", type=int, default=4200, help="server port (default 4200)")
    up.add_argument("--logs", metavar="DIR", help="log folder (default: <storage root>/logs)")
    up.add_argument("--project", metavar="DIR", help="checkout holding deployments/prefect.yaml")
    up.add_argument("--no-worker", action="store_true", help="do not start a worker")
    up.set_defaults(handler=_up)
    return parser


def _up(args: argparse.Namespace) -> int:
    from flows.up import up

    return up(args.port, args.home, args.logs, args.project, worker=not args.no_worker)


def _families(text: str) -> list[str]:
    from tasks.core.models.configs import FAMILIES

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown) or text!r}; "
            f"choose from {','.join(FAMILIES)}"
        )
    return names


def _promotion_settings(args: argparse.Namespace) -> dict:
    settings = {}
    if args.min_test_accuracy is not None:
        settings["min_test_accuracy"] = args.min_test_accuracy
    if args.alpha is not None:
        settings["alpha"] = args.alpha
    return settings


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


def _ingest_settings(args: argparse.Namespace) -> dict:
    settings = {"mirrors": args.mirror}
    for name in ("seed", "validation_fraction", "test_fraction", "max_images_per_split"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    return settings


def _ingest(args: argparse.Namespace) -> int:
    from flows.config import IngestConfig

    config = IngestConfig(
        home=args.home, source=args.source, force=args.force, settings=_ingest_settings(args)
    )
    _prepare_prefect(args.home)
    from flows.ingest import ingest

    outcome = ingest(config)
    manifest = _manifest(args.home, outcome.version)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        state = {
            "reused": "unchanged, already ingested",
            "published": "published",
            "unchanged": "decoded and validated again: identical to the stored copy, nothing written",
            "repaired": "repaired: the damaged stored copy was written again",
        }[outcome.status]
        print(f"dataset {outcome.version} ({state})")
        print(_summary(manifest))
    return 0


def _train_all(args: argparse.Namespace) -> int:
    from flows.config import TrainAllConfig

    config = TrainAllConfig(
        home=args.home, source=args.source, force=args.force,
        ingest=_ingest_settings(args), train=_train_settings(args),
        promotion=_promotion_settings(args), registry_url=args.registry,
    )
    _prepare_prefect(args.home)
    from flows.mnist import mnist

    state = mnist(config, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):  # a stage before training failed: nothing to show
        raise result
    print(f"dataset {result['dataset_version']}")
    print(_summary(_manifest(args.home, result["dataset_version"])))
    print(f"  EDA report: {result['eda_report']}")
    print(_leaderboard(result["models"], result["failed"], result["evaluations"]))
    if result["promotion"]:
        promotion = result["promotion"]
        verdict = "promoted to production" if promotion["promote"] else "not promoted"
        print(f"  {promotion['challenger']} {verdict}: {promotion['reason']}")
    if result["failed"]:
        print(f"error: {state.message}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _leaderboard(models: dict, failed: dict, evaluations: dict) -> str:
    lines = ["  models (by validation accuracy):     validation  test"]
    for summary in sorted(models.values(), key=lambda s: -s["validation_accuracy"]):
        status = "reused" if summary["reused"] else f"trained in {summary['train_seconds']:.1f} s"
        test = evaluations.get(summary["family"], {}).get("accuracy")
        lines.append(
            f"    {summary['family']:<7} {summary['model_id']:<24} {summary['validation_accuracy']:.4f}"
            f"    {'-' if test is None else f'{test:.4f}'}  ({status})"
        )
    lines += [f"    {family:<7} FAILED: {reason}" for family, reason in failed.items()]
    return "\n".join(lines)


def _eda(args: argparse.Namespace) -> int:
    from flows.config import EdaConfig

    settings = {} if args.seed is None else {"seed": args.seed}
    config = EdaConfig(home=args.home, dataset=args.dataset, force=args.force, settings=settings)
    _prepare_prefect(args.home)
    from flows.eda import eda

    outcome = eda(config)
    print(f"EDA report of dataset {outcome.version}: {outcome.report}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from flows.config import EvaluateConfig

    config = EvaluateConfig(home=args.home, registry_url=args.registry, model=args.model,
                            dataset=args.dataset, force=args.force)
    _prepare_prefect(args.home)
    from flows.evaluate import evaluate

    summary = evaluate(config)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['model_id']} ({summary['family']}): test accuracy {summary['accuracy']:.4f}, "
              f"macro F1 {summary['macro_f1']:.4f}, ECE {summary['ece']:.4f}, "
              f"{summary['throughput']:,.0f} images/s, {summary['latency_ms']:.2f} ms per image, "
              f"{summary['size_kib']:,} KiB")
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.output:
        if len(args.files) != 1:
            from tasks.core.errors import InputError

            raise InputError(f"--output scores exactly one Parquet FILE, got {len(args.files)}")
        from flows.config import PredictConfig
        from storage.evaluations import check_prediction_output

        check_prediction_output(args.files[0], args.output)  # here too: no server started for nothing
        config = PredictConfig(home=args.home, registry_url=args.registry, model=args.model,
                               input=args.files[0], output=args.output)
        _prepare_prefect(args.home)
        from flows.predict import predict

        outcome = predict(config)
        print(f"{outcome['rows']} predictions by {outcome['model_id']} written to {outcome['output']}")
        return 0
    from tasks.core.scoring import score
    from tasks.predict import load_registered, read_images

    registered = load_registered(args.home, args.registry, args.model)
    for path in args.files:
        names, images = read_images(path, args.preprocess, registered.digits)
        scores = score(registered.model, images, registered.class_names)
        for i, name in enumerate(names):
            label, label_name = int(scores.predicted[i]), scores.label_names[i]
            if args.json:
                print(json.dumps({"input": name, "label": label, "label_name": label_name,
                                  "probability": round(float(scores.probability[i]), 6),
                                  "probabilities": [round(float(p), 6) for p in scores.probabilities[i]],
                                  "model_id": registered.model_id}))
            elif registered.digits:
                print(f"{name}\t{label}\t{scores.probability[i]:.4f}")
            else:  # the class name as a column of its own, between label and probability
                print(f"{name}\t{label}\t{label_name}\t{scores.probability[i]:.4f}")
    return 0


def _existing_root(home: str | None):
    """The storage root, which must exist: commands that only read never create one."""
    from storage.root import StorageRoot

    return StorageRoot(home).require_existing()


def _registry(args: argparse.Namespace):
    """The registry of an existing storage root (never created by a command that reads or moves aliases)."""
    from storage.registry import Registry
    from storage.root import StorageRoot

    return Registry.open_existing(StorageRoot(args.home), args.registry)


def _models_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    versions = registry.list_versions()
    if args.json:
        print(json.dumps([{k: v for k, v in m.items() if k != "card"} for m in versions], indent=2))
    elif not versions:
        print(f"no registered models in the registry {registry.location}; run `mnist train-all`.")
    else:
        print(f"{'model id':<24} {'family':<7} {'source':<22} {'dataset':<17} {'registered (UTC)':<17} "
              f"{'valid':>7} {'test':>7}  aliases")
        for m in versions:
            test = m["metrics"].get("accuracy")
            source = m["source"] or "?"
            if ":" in source and "/" in source:  # idx:/long/path/name -> idx:name
                source = f"{source.split(':', 1)[0]}:{source.rsplit('/', 1)[1]}"
            source += " (smoke)" if m["smoke"] else ""
            print(f"{m['model_id']:<24} {m['family']:<7} {source:<22} {m['dataset_version']:<17} "
                  f"{m['registered_at'][:16].replace('T', ' '):<17} {m['validation_accuracy']:7.4f} "
                  f"{'-' if test is None else f'{test:7.4f}':>7}  {','.join(m['aliases'])}")
    return 0


def _models_show(args: argparse.Namespace) -> int:
    registry = _registry(args)
    model = registry.get(registry.resolve(args.version))
    if args.json:
        print(json.dumps(model, indent=2))
        return 0
    print(model["card"])
    print(f"aliases: {', '.join(model['aliases']) or '(none)'}")
    for version, evaluation in model["evaluations"].items():
        print(f"test accuracy on {version}: {evaluation['accuracy']:.4f} (evaluated {evaluation['evaluated_at']})")
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    registry = _registry(args)
    model_id = registry.resolve(args.version)
    replaced = registry.promote(model_id, reason=args.reason, force=args.force)
    if replaced == model_id:
        print(f"{model_id} already is production")
    else:
        print(f"production: {replaced or '(none)'} -> {model_id}")
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    registry = _registry(args)
    previous, now = registry.rollback("production", reason=args.reason, force=args.force)
    print(f"production: {previous} -> {now} (rolled back)")
    return 0


def _models_report(args: argparse.Namespace) -> int:
    from storage import reports
    from storage.root import StorageRoot
    from tasks.core.registry_report import build_registry_report

    registry = _registry(args)
    report = build_registry_report(registry.list_versions(), registry.history(), registry.location)
    print(f"registry report: {reports.write_registry_report(StorageRoot(args.home), report.html, args.output)}")
    return 0


def _models_history(args: argparse.Namespace) -> int:
    registry = _registry(args)
    entries = registry.history()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no alias has been set in the registry {registry.location}; `mnist train-all` promotes the first model.")
    for e in entries:
        print(f"{e['changed_at'][:19]}  {e['alias']:<10} {e['from_model'] or '(none)':<24} -> {e['to_model']:<24} "
              f"{e['action']:<8} {e['reason']}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from storage import datasets

    root = _existing_root(args.home)
    if args.version:
        manifest = datasets.read_manifest(root, datasets.resolve_version(root, args.version))
        print(json.dumps(manifest, indent=2) if args.json else _summary(manifest, detailed=True))
        return 0
    manifests = datasets.list_manifests(root)
    if args.json:
        print(json.dumps(manifests, indent=2))
    elif not manifests:
        print(f"no dataset versions in {root.url}; run `mnist ingest`.")
    else:
        print(f"{'version':<17} {'created (UTC)':<20} {'train':>7} {'valid':>6} {'test':>6}  source")
        for m in manifests:
            rows = m["rows"]
            print(
                f"{m['version']:<17} {m['created_at'][:19].replace('T', ' '):<20} "
                f"{rows['train']:>7} {rows['validation']:>6} {rows['test']:>6}  {m['source']['spec']}"
            )
    return 0


def _manifest(home: str | None, version: str) -> dict:
    from storage import datasets
    from storage.root import StorageRoot

    return datasets.read_manifest(StorageRoot(home), version)


def _summary(manifest: dict, detailed: bool = False) -> str:
    rows = manifest["rows"]
    validation = manifest["validation"]
    checks = sum(s["evaluated_expectations"] for s in validation["statistics"].values())
    lines = [
        f"  source:     {manifest['source']['spec']}",
        f"  rows:       train {rows['train']:,} | validation {rows['validation']:,} | "
        f"test {rows['test']:,}",
        f"  validation: {'passed' if validation['success'] else 'FAILED'} ({checks} expectations)",
        f"  duplicates: {manifest['duplicates']['test_in_train_or_validation']} test images "
        "also in train/validation",
    ]
    if detailed:
        names = manifest["class_names"]
        lines.append(f"  created:    {manifest['created_at']} by {manifest['code_version']}")
        lines.append("  classes (train counts):")
        for label, count in manifest["class_counts"]["train"].items():
            lines.append(f"    {label}: {names[int(label)]:<12} {count:>6}")
        lines.append(f"  split:      {manifest['split']}")
    return "\n".join(lines)


def _prepare_prefect(home: str | None) -> None:
    """Settings for the flow this command runs in-process, made before Prefect is imported."""
    from flows.up import heartbeat_env

    # No network here or on many build machines: keep Prefect's telemetry off unless asked.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Heartbeats let a server's crash automation mark this run Crashed if the process is killed.
    for name, value in heartbeat_env().items():
        os.environ.setdefault(name, value)
    # The secret of the server `mnist up` started for this storage root, sent to that server only.
    api_url = os.environ.get("PREFECT_API_URL")
    if api_url and not os.environ.get("PREFECT_API_AUTH_STRING"):
        from storage import services
        from storage.root import StorageRoot

        auth = services.auth_for(StorageRoot(home), api_url)
        if auth:
            os.environ["PREFECT_API_AUTH_STRING"] = auth
    import prefect.main  # noqa: F401  (sets up Prefect's logging, which the next line adjusts)

    _quiet_user_error_tracebacks()


def _is_user_error(error: BaseException) -> bool:
    """Errors about input, configuration or stored data: one line. Anything else is a bug and
    keeps its traceback."""
    from pydantic import ValidationError

    from tasks.core.errors import MnistError

    return isinstance(error, (MnistError, ValidationError))


def _quiet_user_error_tracebacks() -> None:
    """Prefect logs each failed task and flow run with its traceback on the console; for the
    errors the user can act on, the log line and our closing `error:` line say it all. (The
    Prefect API, and so the UI, still gets the full log.)"""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _UserErrorFormatter):
            handler.setFormatter(_UserErrorFormatter(handler.formatter))


class _UserErrorFormatter:
    """Formats like the formatter it wraps, without the traceback of user errors."""

    def __init__(self, inner) -> None:
        import logging

        self.inner = inner or logging.Formatter()

    def format(self, record) -> str:
        import logging

        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_user_error(error):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return self.inner.format(record)

    def __getattr__(self, name):
        return getattr(self.inner, name)


if __name__ == "__main__":
    sys.exit(main())
