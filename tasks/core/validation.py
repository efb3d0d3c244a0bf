"""The Great Expectations suite every ingest must pass before anything is published.

Rather than 784 per-pixel expectations on a 70,000 x 785 table (about 40 s), the suite checks
two derived frames (see :mod:`mnist_pipeline.tasks.core.dataset`): a per-image profile (label, geometry,
pixel range, nulls) and a one-row summary (rows per split, class shares, test duplicates).
Both validate in well under a second on the full datasets.
"""

import functools
import itertools
import logging
from dataclasses import dataclass

import pandas as pd

from mnist_pipeline.tasks.core.dataset import count_duplicates, image_profile, split_summary
from mnist_pipeline.tasks.core.digits import IMAGE_SHAPE, NUM_CLASSES, SPLITS, Digits
from mnist_pipeline.tasks.core.errors import ValidationFailed
from mnist_pipeline.tasks.core.tables import Table

PROFILE_COLUMNS = [
    "sample_id", "split", "label", "height", "width",
    "pixel_min", "pixel_max", "n_null", "n_non_integer",
]


@dataclass(frozen=True)
class Bounds:
    """What the summary must satisfy; built from the ingest config and the source."""

    expected_source_rows: dict[str, int]  # exact official split sizes; empty when unknown
    min_rows_per_split: int
    min_class_share: float
    max_class_share: float
    max_test_duplicate_share: float
    max_blank_share: float = 0.01
    max_duplicate_share: float = 0.01


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    results: dict  # {"images": ..., "summary": ...}: GX results as JSON dicts
    data_docs: dict[str, str]  # page name -> Data Docs HTML

    def failures(self) -> list[str]:
        return [
            describe_failure(result)
            for suite in self.results.values()
            for result in suite["results"]
            if not result["success"]
        ]


def image_expectations() -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=PROFILE_COLUMNS),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(NUM_CLASSES))),
        gxe.ExpectColumnValuesToBeBetween(
            column="height", min_value=IMAGE_SHAPE[0], max_value=IMAGE_SHAPE[0]
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="width", min_value=IMAGE_SHAPE[1], max_value=IMAGE_SHAPE[1]
        ),
        gxe.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0, max_value=255),
        gxe.ExpectColumnValuesToBeBetween(column="pixel_max", min_value=0, max_value=255),
        gxe.ExpectColumnValuesToBeBetween(column="n_null", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="n_non_integer", min_value=0, max_value=0),
    ]


def summary_expectations(bounds: Bounds) -> list:
    import great_expectations.expectations as gxe

    expectations = []
    for split, rows in sorted(bounds.expected_source_rows.items()):
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=f"source_rows_{split}", min_value=rows, max_value=rows
            )
        )
    for split in SPLITS:
        expectations += [
            gxe.ExpectColumnValuesToBeBetween(
                column=f"rows_{split}", min_value=bounds.min_rows_per_split
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=f"classes_present_{split}", min_value=NUM_CLASSES, max_value=NUM_CLASSES
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=f"class_share_min_{split}", min_value=bounds.min_class_share
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=f"class_share_max_{split}", max_value=bounds.max_class_share
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=f"blank_share_{split}", min_value=0, max_value=bounds.max_blank_share
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=f"duplicate_share_{split}", min_value=0, max_value=bounds.max_duplicate_share
            ),
        ]
    expectations.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="test_duplicate_share", min_value=0, max_value=bounds.max_test_duplicate_share
        )
    )
    return expectations


def validate(profile: pd.DataFrame, summary: pd.DataFrame, bounds: Bounds) -> ValidationReport:
    """Run the suite on the two frames; never raises for failed expectations (see ``check``)."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite

    context = _context()
    run = next(_RUNS)  # names are unique within the process-wide context
    source = context.data_sources.add_pandas(f"ingest-{run}")
    results, docs = {}, {}
    for name, frame, expectations, index_columns in (
        ("images", profile, image_expectations(), ["sample_id", "split"]),
        ("summary", summary, summary_expectations(bounds), []),
    ):
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        # A suite built from a list: adding 784-odd expectations one by one is very slow.
        suite = context.suites.add(ExpectationSuite(name=f"mnist-{name}-{run}", expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"mnist-{name}-{run}", data=batch, suite=suite)
        )
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
        if index_columns:
            result_format["unexpected_index_column_names"] = index_columns
        result = definition.run(
            batch_parameters={"dataframe": frame}, result_format=result_format
        )
        results[name] = result.to_json_dict()
        docs[name] = render_data_docs(result)
    success = all(r["success"] for r in results.values())
    return ValidationReport(success, results, docs)


_RUNS = itertools.count()


@functools.cache
def _context():
    """One ephemeral Great Expectations context per process: a long-lived process (a worker,
    the test suite) builds it once."""
    import great_expectations as gx

    _quiet_great_expectations()
    context = gx.get_context(mode="ephemeral")
    _disable_progress_bars(context)
    return context


@dataclass(frozen=True)
class CheckedSplits:
    """What validation found in a decoded source's splits (whether or not it passed)."""

    report: ValidationReport
    summary: pd.DataFrame  # the one-row frame the summary suite checked
    duplicates: dict[str, int]  # dataset.count_duplicates: within each split, and test leaks


def check_splits(splits: dict[str, Digits], source_rows: dict[str, int], bounds: Bounds) -> CheckedSplits:
    """Run the whole suite on a decoded source's train / validation / test splits; never raises
    (:func:`check` does, naming what failed)."""
    duplicates = count_duplicates(splits)
    summary = split_summary(splits, source_rows, duplicates)
    return CheckedSplits(validate(image_profile(splits), summary, bounds), summary, duplicates)


def splits_table(checked: CheckedSplits) -> Table:
    """Per split: rows, class shares, blank images and duplicates, as validation saw them."""
    row, duplicates = checked.summary.iloc[0], checked.duplicates
    return Table(tuple({"split": split, "rows": f"{int(row[f'rows_{split}']):,}",
                        "smallest class share": f"{row[f'class_share_min_{split}']:.3f}",
                        "largest class share": f"{row[f'class_share_max_{split}']:.3f}",
                        "blank images": f"{row[f'blank_share_{split}']:.2%}",
                        "duplicates within": f"{duplicates[f'within_{split}']:,}"} for split in SPLITS),
                 numeric=("rows", "smallest class share", "largest class share", "blank images", "duplicates within"))


def markdown(source: str, checked: CheckedSplits) -> str:
    """The validation result for the Prefect UI: the splits, the test leak, what failed."""
    lines = [
        f"# Dataset validation {'passed' if checked.report.success else 'FAILED'}", f"Source: `{source}`", "",
        splits_table(checked).markdown(),
        f"Test images with an exact copy in train or validation: {checked.duplicates['test_in_train_or_validation']:,}",
        "",
    ]
    failures = checked.report.failures()
    if failures:
        lines += ["## Failed expectations", *[f"- {f}" for f in failures]]
    return "\n".join(lines)


def check(report: ValidationReport, source: str) -> None:
    """Raise :class:`ValidationFailed` naming every failed expectation and its offending values."""
    if report.success:
        return
    failures = "\n".join(f"  - {line}" for line in report.failures())
    raise ValidationFailed(
        f"the data from {source} failed validation, so nothing was published:\n{failures}\n"
        "Fix the source data (or the thresholds in the ingest config, if they are too strict).",
        report.results,
    )


def describe_failure(result: dict) -> str:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("batch_id", "column")}
    column = config["kwargs"].get("column")
    subject = f"column {column!r}: " if column else ""
    detail = result.get("result") or {}
    parts = [f"{subject}{config['type']}({_short(kwargs)})"]
    if detail.get("unexpected_count"):
        parts.append(f"{detail['unexpected_count']} unexpected value(s)")
        if detail.get("partial_unexpected_list"):
            parts.append(f"e.g. {detail['partial_unexpected_list'][:5]}")
        rows = detail.get("partial_unexpected_index_list") or []
        if rows:
            parts.append(f"at {rows[:5]}")
    elif "observed_value" in detail:
        parts.append(f"observed {detail['observed_value']!r}")
    if result.get("exception_info", {}).get("raised_exception"):
        parts.append(f"error: {result['exception_info']['exception_message']}")
    return ", ".join(parts)


def render_data_docs(result) -> str:
    """Great Expectations' own Data Docs page for one validation result."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    return _page_view().render(ValidationResultsPageRenderer().render(result))


@functools.cache
def _page_view():
    # One view for the process: it caches its Jinja templates, which otherwise cost 0.3 s a page.
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView()


def _short(kwargs: dict) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if v is not None)
    return text if len(text) < 120 else text[:117] + "..."


def _disable_progress_bars(context) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)


def _quiet_great_expectations() -> None:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
