"""The ``mnist`` command line: one module per command group (``data``, ``training``, ``models``,
``server``), each holding its commands' parsers beside their handlers; ``options`` maps every
option to the flow config field it sets.

Only the standard library is imported at start-up, so ``mnist --help`` answers at once;
each command imports Prefect, Great Expectations or pyarrow when it runs.
"""

import argparse
import sys
from collections.abc import Sequence

from mnist_pipeline.flows.cli import data, models, server, training
from mnist_pipeline.flows.cli.shared import EXIT_FAILED, EXIT_USAGE, user_error


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
        shown = user_error(error)
        if shown is None:
            raise
        print(f"error: {shown}", file=sys.stderr)
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist",
        description="An orchestrated pipeline for MNIST-format digit datasets: validated "
        "ingestion to Parquet, EDA, training, evaluation and a model registry.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in (data, training, models, server):
        group.add_commands(commands)
    return parser
