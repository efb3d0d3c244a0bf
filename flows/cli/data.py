"""`mnist ingest`, `mnist datasets` and `mnist eda`: datasets and their reports."""

import argparse
import json

from mnist_pipeline.flows.cli.shared import (
    Options, dataset_summary, existing_root, ingest_settings, prepare_prefect, read_manifest,
)


def add_commands(commands, options: Options) -> None:
    ingest = commands.add_parser(
        "ingest", parents=[options.home, options.source, options.force], help="fetch, validate and publish a dataset version",
        description="Fetch a source, validate it with Great Expectations and publish it as a "
        "versioned Parquet dataset. Prints the dataset version.",
    )
    ingest.add_argument("--json", action="store_true", help="print the manifest as JSON")
    ingest.set_defaults(handler=_ingest)

    datasets = commands.add_parser(
        "datasets", parents=[options.home], help="list dataset versions, or show one",
        description="List the dataset versions in the storage root, or show one's manifest.",
    )
    datasets.add_argument("version", nargs="?", help="a version (or unique prefix) to show")
    datasets.add_argument("--json", action="store_true", help="machine-readable output")
    datasets.set_defaults(handler=_datasets)

    eda = commands.add_parser(
        "eda", parents=[options.home], help="write the EDA report of a dataset version",
        description="Draw the exploratory data analysis report (HTML with embedded figures, "
        "plus the PNGs) of a dataset version into the storage root and print its path.",
    )
    eda.add_argument("--dataset", metavar="VERSION", help="version or unique prefix (default: newest)")
    eda.add_argument("--seed", type=int, help="seed of the sample grid and PCA sample (default 0)")
    eda.add_argument("--force", action="store_true", help="redraw even if the report exists")
    eda.set_defaults(handler=_eda)


def _ingest(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import IngestConfig

    config = IngestConfig(
        home=args.home, source=args.source, force=args.force, settings=ingest_settings(args)
    )
    prepare_prefect(args.home)
    from mnist_pipeline.flows.ingest import ingest

    outcome = ingest(config)
    manifest = read_manifest(args.home, outcome.version)
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
        print(dataset_summary(manifest))
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from mnist_pipeline.storage import datasets

    root = existing_root(args.home)
    if args.version:
        manifest = datasets.read_manifest(root, datasets.resolve_version(root, args.version))
        print(json.dumps(manifest, indent=2) if args.json else dataset_summary(manifest, detailed=True))
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


def _eda(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import EdaConfig

    settings = {} if args.seed is None else {"seed": args.seed}
    config = EdaConfig(home=args.home, dataset=args.dataset, force=args.force, settings=settings)
    prepare_prefect(args.home)
    from mnist_pipeline.flows.eda import eda

    outcome = eda(config)
    print(f"EDA report of dataset {outcome.version}: {outcome.report}")
    return 0
