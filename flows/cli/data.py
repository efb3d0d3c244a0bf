"""`mnist ingest`, `mnist datasets` and `mnist eda`: datasets and their reports."""

import argparse
import json

from mnist_pipeline.flows.cli.options import (
    DATASET,
    EDA_SEED,
    FORCE,
    HOME,
    INGEST,
    SOURCE,
    add_command,
    given,
)
from mnist_pipeline.flows.cli.shared import dataset_summary, prepare_prefect, store_of

INGEST_STATUS = {
    "reused": "unchanged, already ingested",
    "published": "published",
    "unchanged": "decoded and validated again: identical to the stored copy, nothing written",
    "repaired": "repaired: the damaged stored copy was written again",
}


def add_commands(commands) -> None:
    ingest = add_command(
        commands, "ingest", HOME, SOURCE, FORCE, *INGEST, help="fetch, validate and publish a dataset version",
        description="Fetch a source, validate it with Great Expectations and publish it as a "
        "versioned Parquet dataset. Prints the dataset version.",
    )
    ingest.add_argument("--json", action="store_true", help="print the manifest as JSON")
    ingest.set_defaults(handler=_ingest)

    datasets = add_command(
        commands, "datasets", HOME, help="list dataset versions, or show one",
        description="List the dataset versions in the storage root, or show one's manifest.",
    )
    datasets.add_argument("version", nargs="?", help="a version (or unique prefix) to show")
    datasets.add_argument("--json", action="store_true", help="machine-readable output")
    datasets.set_defaults(handler=_datasets)

    eda = add_command(
        commands, "eda", HOME, DATASET, EDA_SEED, FORCE, help="write the EDA report of a dataset version",
        description="Draw the exploratory data analysis report (HTML with embedded figures, "
        "plus the PNGs) of a dataset version into the storage root and print its path.",
    )
    eda.set_defaults(handler=_eda)


def _ingest(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import IngestConfig

    config = IngestConfig(**dict(given(args, HOME, SOURCE, FORCE)), settings=dict(given(args, *INGEST)))
    prepare_prefect(args.home)
    from mnist_pipeline.flows.ingest import ingest
    from mnist_pipeline.storage import datasets

    outcome = ingest(config)
    manifest = datasets.read_manifest(config.store().root, outcome.version)
    if args.json:
        print(json.dumps(manifest.as_json(), indent=2))
    else:
        print(f"dataset {outcome.version} ({INGEST_STATUS[outcome.status]})")
        print(dataset_summary(manifest))
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from mnist_pipeline.storage import datasets

    root = store_of(args).existing_root()
    if args.version:
        manifest = datasets.read_manifest(root, datasets.resolve_version(root, args.version))
        print(json.dumps(manifest.as_json(), indent=2) if args.json else dataset_summary(manifest, detailed=True))
        return 0
    manifests = datasets.list_manifests(root)
    if args.json:
        print(json.dumps([manifest.as_json() for manifest in manifests], indent=2))
    elif not manifests:
        print(f"no dataset versions in {root.url}; run `mnist ingest`.")
    else:
        print(f"{'version':<17} {'created (UTC)':<20} {'train':>7} {'valid':>6} {'test':>6}  source")
        for manifest in manifests:
            rows = manifest.rows
            print(
                f"{manifest.version:<17} {manifest.created_at[:19].replace('T', ' '):<20} "
                f"{rows['train']:>7} {rows['validation']:>6} {rows['test']:>6}  {manifest.source.spec}"
            )
    return 0


def _eda(args: argparse.Namespace) -> int:
    from mnist_pipeline.flows.config import EdaConfig

    config = EdaConfig(**dict(given(args, HOME, DATASET, FORCE)), settings=dict(given(args, EDA_SEED)))
    prepare_prefect(args.home)
    from mnist_pipeline.flows.eda import eda

    outcome = eda(config)
    print(f"EDA report of dataset {outcome.version}: {outcome.report}")
    return 0
