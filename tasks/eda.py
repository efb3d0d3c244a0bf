"""Prefect tasks of the EDA stage: build the report once per (dataset version, report code)."""

import json
from dataclasses import dataclass

from mnist_pipeline.storage import datasets as dataset_store
from mnist_pipeline.storage import reports
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.storage.store import Store
from mnist_pipeline.tasks.artifacts import artifact_key
from mnist_pipeline.tasks.core.digits import SPLITS
from mnist_pipeline.tasks.core.eda.changes import DataChanges
from mnist_pipeline.tasks.core.eda.report import TITLES, Previous, build_report, key_numbers_table
from mnist_pipeline.tasks.core.pages import markdown_figure
from mnist_pipeline.tasks.core.records import Manifest
from mnist_pipeline.tasks.options import STORAGE_IS_THE_CACHE
from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.logging import get_run_logger

# The figures shown in the Prefect UI's artifact (the rest are in the HTML report).
INLINE_FIGURES = ("class-distribution", "samples", "mean-std")


@task(name="resolve-dataset", **STORAGE_IS_THE_CACHE)
def resolve_dataset(store: Store, reference: str | None) -> str:
    """The full dataset version for a prefix, or the newest one."""
    return dataset_store.resolve_version(store.root, reference)


@dataclass(frozen=True)
class Drawn:
    """A dataset version's EDA report: where its page is, and what the version changed since the
    previous version of the same problem (None: there is none)."""

    url: str
    changes: DataChanges | None


@task(name="eda-report", task_run_name="eda-report-{version}", **STORAGE_IS_THE_CACHE)
def eda_report(store: Store, version: str, report_key: str, seed: int, force: bool) -> Drawn:
    """Write the EDA report of a dataset version (unless it is stored) and return it."""
    logger = get_run_logger()
    root = store.root
    existing = reports.find_eda_report(root, version, report_key)
    if existing and not force:
        logger.info("EDA report for %s already exists: %s", version, existing)
        changes = reports.read_eda_changes(root, version, report_key)
        return Drawn(existing, DataChanges.from_json(json.loads(changes)) if changes else None)
    manifest = dataset_store.read_manifest(root, version)
    splits = dict(zip(SPLITS, dataset_store.read_splits(root, version), strict=True))
    report = build_report(version, manifest, splits, _previous(root, manifest), seed=seed)
    url = reports.write_eda_report(
        root, version, report_key, report.html, report.figures, json.dumps(report.key_numbers, indent=2),
        json.dumps(report.changes.as_json(), indent=2) if report.changes else None,
    )
    logger.info("EDA report written: %s", url)
    if report.changes:
        logger.info("what changed: %s", report.changes.describe())
    return Drawn(url, report.changes)


def _previous(root: StorageRoot, manifest: Manifest) -> Previous | None:
    """The newest earlier version of the same problem (the same known dataset, or source, and class
    names), of any format: what this version changed is counted against it."""
    lineage = dataset_store.lineage_of(manifest)
    earlier = [m for m in dataset_store.list_manifests(root)
               if m.created_at < manifest.created_at and dataset_store.lineage_of(m) == lineage]
    if not earlier:
        return None
    previous = earlier[-1].version
    try:
        return Previous(previous, dict(zip(SPLITS, dataset_store.read_splits(root, previous, outdated_ok=True),
                                           strict=True)))
    except dataset_store.DatasetDamaged as error:  # an old copy's damage never stops tonight's report
        get_run_logger().warning("what changed since dataset %s is not shown: %s", previous, error.problem)
        return None


@task(name="eda-artifacts", **STORAGE_IS_THE_CACHE)
def eda_artifacts(store: Store, version: str, report_key: str, url: str) -> None:
    """Key numbers and figure paths as a markdown artifact, and a link to the HTML report."""
    root = store.root
    key_numbers = json.loads(reports.read_eda_summary(root, version, report_key))
    figures = reports.eda_figures(root, version, report_key)
    lines = [f"# EDA report: dataset {version}", "",
             key_numbers_table(key_numbers).markdown()]
    for name in INLINE_FIGURES:  # the key figures inline; the HTML report has them all, full size
        if name in figures:
            title = TITLES[name][0]
            lines += ["", f"## {title}", "", markdown_figure(title, figures[name], max_width=720)]
    lines += ["", f"HTML report (every figure, full size): `{url}`"]
    create_markdown_artifact(key=artifact_key("eda-report"), markdown="\n".join(lines), description=f"EDA of {version}")
    link = url if "://" in url else f"file://{url}"
    create_link_artifact(key=artifact_key("eda-report-html"), link=link, link_text=f"EDA report {version}")
