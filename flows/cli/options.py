"""Every `mnist` option that sets a flow config field, mapped to that field in one place.

An :class:`Option` names the config class and field it sets; the command's handler turns the
options given into the config's fields with :func:`given`, and an option left out leaves the
config's default. Help texts never restate a default: ``--help`` shows the config's own, read
when the help is printed (so that parsing a command line imports no config, no pydantic).
"""

import argparse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

CONFIG_MODULE = "mnist_pipeline.flows.config"


@dataclass(frozen=True)
class Option:
    flag: str  # "--seed", or a positional's name
    field: str  # the config field it sets
    declared_in: str  # the class of flows/config.py that declares the field (for its default)
    help: str
    type: Callable | None = None
    metavar: str | None = None
    const: object = None  # a flag without a value: sets the field to this
    repeat: bool = False  # may be given several times: the field gets the list
    choices: Sequence[str] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        kwargs: dict = {"help": self.help, "default": None}
        if self.const is not None:
            kwargs.update(action="store_const", const=self.const)
        else:
            kwargs.update(type=self.type, metavar=self.metavar, choices=self.choices)
            if self.repeat:
                kwargs["action"] = "append"
        if self.flag.startswith("-"):
            kwargs["dest"] = self.dest
        else:
            kwargs["nargs"] = "?"
        action = parser.add_argument(self.flag, **kwargs)
        action.config_default = (self.declared_in, self.field)  # read by ConfigDefaultsFormatter


def add_options(parser: argparse.ArgumentParser, *options: Option) -> None:
    for option in options:
        option.add_to(parser)


def given(args: argparse.Namespace, *options: Option) -> Iterator[tuple[str, object]]:
    """``(field, value)`` for each of ``options`` the command line gives (one not given sets
    nothing, so the config keeps its default): ``dict(given(...))`` is a config's fields."""
    for option in options:
        value = getattr(args, option.dest, None)
        if value is not None:
            yield option.field, value


class ConfigDefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each config option's text with the config's default (when it has one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        where = getattr(action, "config_default", None)
        if where is None or action.const is not None:  # a flag: its text says what it turns on or off
            return text
        default, unset = _config_default(*where)
        if default is None:  # what leaving it unset means, as the config says
            return f"{text} (default: {unset})" if unset else text
        return text if default == [] else f"{text} (default: {_shown(default)})"


def _config_default(declared_in: str, field: str) -> tuple[object, str | None]:
    """A config field's default, and what leaving it unset (None) means where the config says."""
    import importlib

    info = getattr(importlib.import_module(CONFIG_MODULE), declared_in).model_fields[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return info.get_default(call_default_factory=True), extra.get("unset")


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):  # 6000 and a port's 8000 plain, 60,000 grouped
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value).replace("%", "%%")


def _class_names(text: str) -> list[str]:
    return text.split(",")


def _families(text: str) -> list[str]:
    from mnist_pipeline.tasks.core.models import catalog

    try:
        return catalog.known([name.strip() for name in text.split(",") if name.strip()])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# Where the run keeps things (every config: flows/config.py `Located`, `Redoable`).
HOME = Option("--home", "home", "Located", "storage root (a folder or fsspec URL)")
REGISTRY = Option("--registry", "registry_url", "Located", "registry database (SQLAlchemy URL)", metavar="URL")
MLFLOW = Option("--mlflow", "mlflow_uri", "Located", "MLflow tracking server to mirror runs, model versions and "
                "aliases to", metavar="URI")
FORCE = Option("--force", "force", "Redoable", "redo every step even when its result is stored (decode, validate, "
               "draw, train, evaluate)", const=True)
SOURCE = Option("--source", "source", "SourceTarget", "mnist (download), fashion-mnist, mnist-sample (offline, "
                "5,000 digits), idx:DIR (four local IDX files), csv:PATH (Kaggle train.csv), batches:DIR (a folder "
                "labelled batches accumulate in) or BASE+batches:DIR (batches added to a published dataset)")

# How a source becomes a dataset version (IngestSettings: `mnist ingest`'s settings, train-all's ingest).
INGEST = (
    Option("--class-names", "class_names", "IngestSettings", "your own IDX/CSV data's ten class names, labels 0..9 "
           "in order (or a classes.txt beside the data, one per line); published datasets keep their own",
           type=_class_names, metavar="A,B,..."),
    Option("--seed", "seed", "IngestSettings", "key of the hash that draws each image's split", type=int),
    Option("--validation-fraction", "validation_fraction", "IngestSettings",
           "share of train held out for validation", type=float),
    Option("--test-fraction", "test_fraction", "IngestSettings", "test share drawn from images without a published "
           "split", type=float),
    Option("--mirror", "mirrors", "IngestSettings", "a mirror to try before the built-in ones (repeatable)",
           metavar="URL", repeat=True),
    Option("--max-images-per-split", "max_images_per_split", "IngestSettings", "refuse sources with more images "
           "per split (files are checked before reading and while decompressing)", type=int, metavar="N"),
)

# What train-all trains and how (TrainSettings).
TRAIN = (
    Option("--models", "models", "TrainSettings", "comma-separated families to train", type=_families,
           metavar="LIST"),
    Option("--smoke", "smoke", "TrainSettings", "tiny subset and a few dozen optimizer steps per family, to check "
           "a set-up in seconds", const=True),
    Option("--no-ensemble", "ensemble", "TrainSettings", "do not combine the trained families into a weighted soft "
           "vote (the `ensemble` model)", const=False),
    Option("--train-seed", "seed", "TrainSettings", "seed of model training", type=int),
    Option("--parallelism", "parallelism", "TrainSettings", "trainings at once",
           type=int),
    Option("--dask", "dask_address", "TrainSettings", "train on an existing Dask cluster (tcp://host:8786)",
           metavar="ADDRESS"),
    Option("--device", "device", "TrainSettings", "where the torch families train: auto (CUDA, then MPS, then the "
           "CPU), cpu, cuda or mps; on a Dask cluster, cuda and mps go to workers started with --resources GPU=1",
           choices=("auto", "cpu", "cuda", "mps")),
    Option("--time-budget", "time_budget_s", "TrainSettings", "wall-clock allowance per family: a torch family "
           "stops at its next validation and keeps its best weights; an SVM not yet fitted fails alone",
           type=float, metavar="SECONDS"),
    Option("--no-progress", "progress_bar", "TrainSettings", "no progress bars on the terminal (they are drawn "
           "when stderr is a terminal)", const=False),
)

# When the run's best model replaces production (PromotionSettings).
PROMOTION = (
    Option("--min-test-accuracy", "min_test_accuracy", "PromotionSettings", "promotion floor: the best model needs "
           "this test accuracy", type=float, metavar="A"),
    Option("--alpha", "alpha", "PromotionSettings", "promotion significance level of McNemar's test", type=float),
    Option("--min-unseen-test-images", "min_unseen_test_images", "PromotionSettings", "compare champion and "
           "challenger only when at least this many test images were seen by neither", type=int, metavar="N"),
    Option("--hold-on-drift-auc", "hold_on_drift_auc", "PromotionSettings", "hold promotion while the new images "
           "are this distinguishable from production's data (domain classifier ROC AUC)", type=float, metavar="AUC"),
)

EDA_SEED = Option("--seed", "seed", "EdaSettings", "seed of the sample grid and PCA sample", type=int)
DATASET = Option("--dataset", "dataset", "DatasetTarget", "dataset version or unique prefix",
                 metavar="VERSION")
EVAL_MODEL = Option("model", "model", "EvaluateConfig", "model id, prefix or alias")
EVAL_DATASET = Option("--dataset", "dataset", "EvaluateConfig", "dataset version whose test split to use", metavar="VERSION")
PREDICT = (
    Option("--model", "model", "PredictConfig", "model id, prefix or alias"),
    Option("--preprocess", "preprocess", "PredictConfig", "how pictures become 28x28: auto (28x28 single-channel "
           "pictures as they are, other sizes the way the model's dataset was made), none (pixels as they are; "
           "28x28 only) or digit (MNIST's digit conversion whatever the size)", choices=("auto", "none", "digit")),
    Option("--output", "output", "PredictConfig", "score one Parquet FILE into this Parquet file, a batch at a time",
           metavar="PARQUET"),
)


SERVE = (
    Option("--model", "model", "ServeConfig", "model id, prefix or alias to serve (an alias is followed when it moves)"),
    Option("--host", "host", "ServeConfig", "address to listen on; other than loopback, only with a token"),
    Option("--port", "port", "ServeConfig", "port to listen on", type=int),
    Option("--token", "token", "ServeConfig", "token clients send as `Authorization: Bearer TOKEN`"),
    Option("--poll", "poll_seconds", "ServeConfig", "seconds between two looks at the alias", type=float, metavar="SECONDS"),
)


def add_command(commands, name: str, *options: Option, **parser_args) -> argparse.ArgumentParser:
    """A subcommand with these config options, whose help shows the config's defaults."""
    parser = commands.add_parser(name, formatter_class=ConfigDefaultsFormatter, **parser_args)
    add_options(parser, *options)
    return parser
