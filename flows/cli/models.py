"""`mnist eval`, `mnist predict` and `mnist models ...`: the registry and what it serves."""

import argparse
import json
import sys

from mnist_pipeline.flows.cli.options import (
    EVAL_DATASET,
    EVAL_MODEL,
    FORCE,
    HOME,
    MLFLOW,
    PREDICT,
    REGISTRY,
    add_command,
    given,
)
from mnist_pipeline.flows.cli.shared import EXIT_FAILED, EXIT_USAGE, prepare_prefect, store_of


def add_commands(commands) -> None:
    evaluate = add_command(
        commands, "eval", HOME, REGISTRY, MLFLOW, EVAL_MODEL, EVAL_DATASET, FORCE, help="(re-)evaluate a registered model version",
        description="Evaluate a model version on a dataset's test split (default: the split it "
        "was trained with) and print its metrics; stored with the model.",
    )
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=_eval)

    predict = add_command(
        commands, "predict", HOME, REGISTRY, *PREDICT, help="classify images with the production model",
        description="Run the `predict` flow and print the predicted label, its class name (for "
        "datasets that name their classes) and its probability for each input: PNG/JPEG images, "
        "IDX image files (.gz or not), or Parquet files with an `image` column. A 28x28 "
        "single-channel image is used as it is (inverted if its background is light); other sizes "
        "are converted the way the model's dataset was made (digits: fitted into 20x20 and centred "
        "by mass; named items: trimmed, longest edge 28, centred). With --output, a Parquet file of "
        "predictions is written instead.",
    )
    predict.add_argument("files", nargs="+", metavar="FILE")
    predict.add_argument("--json", action="store_true", help="one JSON object per input")
    predict.set_defaults(handler=_predict)

    models = commands.add_parser(
        "models", help="list, show, promote, roll back or report registered models",
        description="The model registry: versions, their metrics and aliases.",
    )
    actions = models.add_subparsers(title="model commands", metavar="ACTION")

    def action(name: str, handler, help: str, *options, **parser_args) -> argparse.ArgumentParser:
        parser = add_command(actions, name, HOME, REGISTRY, *options, help=help, **parser_args)
        parser.set_defaults(handler=handler)
        return parser

    listing = action("list", _models_list, "list model versions")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = action("show", _models_show, "show one version and its card")
    show.add_argument("version", help="model id, prefix or alias")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    promote = action("promote", _models_promote, "make a version production", MLFLOW)
    promote.add_argument("version", help="model id, prefix or alias")
    promote.add_argument("--reason", default="promoted by hand", help="recorded in the alias history")
    promote.add_argument("--force", action="store_true",
                         help="promote a smoke model, or one of another source than production, anyway")
    rollback = action("rollback", _models_rollback, "move production back to its previous version", MLFLOW)
    rollback.add_argument("--reason", default="rolled back by hand", help="recorded in the alias history")
    rollback.add_argument("--force", action="store_true",
                          help="roll back even to a model of another source than production's")
    report = action(
        "report", _models_report, "write the registry report (one HTML page)",
        description="Write one self-contained HTML page with every model version's metrics per "
        "dataset, production's test accuracy over time and the alias history, and print its path "
        "(default: <storage root>/reports/registry.html; train-all runs write it too).",
    )
    report.add_argument("--output", metavar="FILE", help="write the page here instead")
    action("sync-mlflow", _models_sync_mlflow, "bring the MLflow mirror up to date", MLFLOW,
           description="Give every registered version its MLflow run (under its pipeline run's) and its "
           "version of the lineage's registered model, and set the production and candidate aliases where "
           "ours are. Idempotent: what the mirror holds is kept, what it lacks is made. Needs --mlflow or "
           "MLFLOW_TRACKING_URI, and `pip install 'mnist-pipeline[mlflow]'`.")
    history = action("history", _models_history, "every alias change")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(handler=lambda args: models.print_help() or EXIT_USAGE)


def _eval(args: argparse.Namespace) -> int:
    import dataclasses

    from mnist_pipeline.flows.config import EvaluateConfig

    config = EvaluateConfig(**dict(given(args, HOME, REGISTRY, MLFLOW, EVAL_MODEL, EVAL_DATASET, FORCE)))
    prepare_prefect(args.home)
    from mnist_pipeline.flows.evaluate import evaluate

    evaluation = evaluate(config)
    if args.json:
        print(json.dumps(dataclasses.asdict(evaluation), indent=2))
    else:
        print(f"{evaluation.model_id} ({evaluation.family}): {evaluation.describe()}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import PredictConfig

    config = PredictConfig(**dict(given(args, HOME, REGISTRY, *PREDICT)), inputs=args.files)
    if config.output:
        from mnist_pipeline.storage.evaluations import check_prediction_output

        check_prediction_output(config.inputs[0], config.output)  # before a flow run is started for nothing
    prepare_prefect(args.home)
    from mnist_pipeline.flows.predict import predict

    outcome = predict(config)
    if config.output:
        print(f"{outcome.rows} predictions by {outcome.model_id} written to {outcome.output}")
        return 0
    for file in outcome.files:
        if file.error is not None:  # a bad file is reported on its own line; the others were scored
            print(f"error: {file.error}", file=sys.stderr)
        for line in _prediction_lines(file, outcome, args.json):
            print(line)
    if outcome.unreadable:
        if len(outcome.files) > 1:
            print(f"{outcome.unreadable} of {len(outcome.files)} input files could not be scored (see above)",
                  file=sys.stderr)
        return EXIT_FAILED
    return 0


def _prediction_lines(file, outcome, as_json: bool):
    """One line per image of a scored file: JSON, or tab-separated (with the class name as a
    column of its own, between label and probability, when the classes are not the digits)."""
    from mnist_pipeline.tasks.core.scoring import answers, names_digits

    scores = file.scores
    if scores is None:  # a file that could not be read: its error line says so
        return
    if as_json:  # the rows `mnist serve` answers
        yield from (json.dumps(answer.as_json()) for answer in answers(scores, outcome.model_id, list(file.names)))
        return
    for i, name in enumerate(file.names):
        label, label_name = int(scores.predicted[i]), scores.label_names[i]
        if names_digits(outcome.class_names):
            yield f"{name}\t{label}\t{scores.probability[i]:.4f}"
        else:
            yield f"{name}\t{label}\t{label_name}\t{scores.probability[i]:.4f}"


def _models_list(args: argparse.Namespace) -> int:
    from mnist_pipeline.tasks.core.registry_report import versions_table

    with store_of(args).registry(create=False) as registry:
        versions, location = registry.list_versions(), registry.location
    if args.json:
        print(json.dumps([v.as_json(card=False) for v in versions], indent=2))
    elif not versions:
        print(f"no registered models in the registry {location}; run `mnist train-all`.")
    else:
        print(versions_table(versions).text(indent=""))
    return 0


def _models_show(args: argparse.Namespace) -> int:
    with store_of(args).registry(create=False) as registry:
        model = registry.get(registry.resolve(args.version))
    if args.json:
        print(json.dumps(model.as_json(), indent=2))
        return 0
    print(model.card)
    print(f"aliases: {', '.join(model.aliases) or '(none)'}")
    for version, evaluation in model.evaluations.items():
        print(f"test accuracy on {version}: {evaluation.accuracy:.4f} (evaluated {evaluation.evaluated_at})")
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    from mnist_pipeline.tasks.aliases import promote_by_hand

    with store_of(args).registry(create=False) as registry:
        model_id = registry.resolve(args.version)
        replaced = promote_by_hand(registry, model_id, reason=args.reason, force=args.force)
    if replaced == model_id:
        print(f"{model_id} already is production")
    else:
        print(f"production: {replaced or '(none)'} -> {model_id}")
        _mirror_aliases(args)
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    from mnist_pipeline.tasks.aliases import roll_back

    with store_of(args).registry(create=False) as registry:
        previous, now = roll_back(registry, "production", reason=args.reason, force=args.force)
    print(f"production: {previous} -> {now} (rolled back)")
    _mirror_aliases(args)
    return 0


def _mirror_aliases(args: argparse.Namespace) -> None:
    """After an alias moved: the MLflow mirror follows, where one is configured; a mirror that
    cannot be reached is a warning (the registry, the source of truth, has moved)."""
    from mnist_pipeline.tasks.mirror import mirror_quietly

    report = mirror_quietly(store_of(args), None, lambda line: print(f"warning: {line}", file=sys.stderr))
    if report.up_to_date:
        print(report.describe())


def _models_sync_mlflow(args: argparse.Namespace) -> int:
    from mnist_pipeline.storage.mlflow_mirror import MirrorUnavailable
    from mnist_pipeline.tasks.core.errors import InputError
    from mnist_pipeline.tasks.mirror import sync_mlflow

    store = store_of(args)
    if not store.mlflow_uri:
        raise InputError("no MLflow server to sync: pass --mlflow URI or set MLFLOW_TRACKING_URI")
    try:
        report = sync_mlflow(store)
    except MirrorUnavailable as error:
        raise MirrorUnavailable(f"cannot bring the MLflow mirror at {store.mlflow_uri} up to date ({error}); "
                                "check that the server is running and that --mlflow (or MLFLOW_TRACKING_URI) "
                                "names it") from error
    print(report.describe())
    return 0 if report.error is None else EXIT_FAILED


def _models_report(args: argparse.Namespace) -> int:
    from mnist_pipeline.tasks.registry import write_registry_report

    _, url = write_registry_report(store_of(args), args.output)
    print(f"registry report: {url}")
    return 0


def _models_history(args: argparse.Namespace) -> int:
    import dataclasses

    with store_of(args).registry(create=False) as registry:
        entries, location = registry.history(), registry.location
    if args.json:
        print(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        return 0
    if not entries:
        print(f"no alias has been set in the registry {location}; `mnist train-all` promotes the first model.")
    for e in entries:
        print(f"{e.changed_at[:19]}  {e.alias:<10} {e.from_model or '(none)':<24} -> {e.to_model:<24} "
              f"{e.action:<8} {e.reason}")
    return 0
