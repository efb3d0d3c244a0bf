"""The Great Expectations suite every ingest must pass before anything is published.

Rather than 784 per-pixel expectations on a 70,000 x 785 table (about 40 s), the suite checks
two derived frames (see :mod:`mnist_pipeline.tasks.core.dataset`): a per-image profile (label, geometry,
pixel range, nulls) and a one-row summary (rows per split, class shares, test duplicates).
Both validate in well under a second on the full datasets.
"""

import functools
import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mnist_pipeline.tasks.core.batches import Part
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


# A split drawn by content is a random sample of the whole dataset: its class shares stray from
# the whole's by sampling noise, about sqrt(p (1 - p) / rows). The whole dataset must keep its
# class shares within [min_class_share, max_class_share]; each split within those bounds widened
# by this many such standard deviations (a split of data inside the bounds falls outside them
# with a chance under 1 in 10,000 per class). So a small split is not refused for its luck, while
# a split that lost a class, or a published test split that hoards one, still is.
SHARE_NOISE_Z = 4.0


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    results: dict  # suite name -> GX result as a JSON dict: "images" (or one per part), "summary"
    data_docs: dict[str, str]  # page name -> Data Docs HTML
    # The part of a batch source each per-part image suite checked (suite name -> part).
    parts: dict[str, Part] = field(default_factory=dict)

    def failures(self, suite: str | None = None) -> list[str]:
        return [
            describe_failure(result)
            for name, outcome in self.results.items() if suite is None or name == suite
            for result in outcome["results"]
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


def share_bounds(bounds: Bounds, rows: int | None = None) -> tuple[float, float]:
    """The class shares a split of ``rows`` images may have (the whole dataset's: ``rows`` None)."""
    def noise(share: float) -> float:
        return 0.0 if rows is None else SHARE_NOISE_Z * math.sqrt(share * (1 - share) / max(rows, 1))

    return (max(0.0, bounds.min_class_share - noise(bounds.min_class_share)),
            min(1.0, bounds.max_class_share + noise(bounds.max_class_share)))


def summary_expectations(bounds: Bounds, rows: dict[str, int]) -> list:
    """The dataset-level expectations, for splits of ``rows`` images each."""
    import great_expectations.expectations as gxe

    lowest, highest = share_bounds(bounds)
    expectations = [
        gxe.ExpectColumnValuesToBeBetween(column="class_share_min_all", min_value=lowest),
        gxe.ExpectColumnValuesToBeBetween(column="class_share_max_all", max_value=highest),
    ]
    for split, expected in sorted(bounds.expected_source_rows.items()):
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=f"source_rows_{split}", min_value=expected, max_value=expected
            )
        )
    for split in SPLITS:
        lowest, highest = share_bounds(bounds, rows[split])
        expectations += [
            gxe.ExpectColumnValuesToBeBetween(
                column=f"rows_{split}", min_value=bounds.min_rows_per_split
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=f"classes_present_{split}", min_value=NUM_CLASSES, max_value=NUM_CLASSES
            ),
            gxe.ExpectColumnValuesToBeBetween(column=f"class_share_min_{split}", min_value=lowest),
            gxe.ExpectColumnValuesToBeBetween(column=f"class_share_max_{split}", max_value=highest),
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


def validate(profiles: dict[str, pd.DataFrame], summary: pd.DataFrame, bounds: Bounds) -> ValidationReport:
    """Run the image suite on each per-image profile (``profiles``: suite name -> frame, "images"
    for a source checked whole) and the summary suite on the one-row summary; never raises for
    failed expectations (see ``check``)."""
    rows = {split: int(summary[f"rows_{split}"].iloc[0]) for split in SPLITS}
    suites = [(name, profile, image_expectations(), ["sample_id", "split"]) for name, profile in profiles.items()]
    suites.append(("summary", summary, summary_expectations(bounds, rows), []))
    results, docs = {}, {}
    for name, frame, expectations, index_columns in suites:
        result = _run_suite(name, frame, expectations, index_columns)
        results[name] = result.to_json_dict()
        docs[name] = render_data_docs(result)
    success = all(r["success"] for r in results.values())
    return ValidationReport(success, results, docs)


def _run_suite(name: str, frame: pd.DataFrame, expectations: list, index_columns: list[str]):
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite

    context = _context()
    run = next(_RUNS)  # names are unique within the process-wide context
    batch = context.data_sources.add_pandas(f"ingest-{run}").add_dataframe_asset(name) \
        .add_batch_definition_whole_dataframe(name)
    # A suite built from a list: adding 784-odd expectations one by one is very slow.
    suite = context.suites.add(ExpectationSuite(name=f"mnist-{run}", expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=f"mnist-{run}", data=batch, suite=suite))
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    return definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)


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
    parts: tuple[Part, ...] = ()  # a batch source's parts (its published dataset, each batch)


def check_splits(splits: dict[str, Digits], source_rows: dict[str, int], bounds: Bounds,
                 parts: tuple[Part, ...] = ()) -> CheckedSplits:
    """Run the whole suite on a decoded source's train / validation / test splits; never raises
    (:func:`check` does, naming what failed). When a batch source's images fail, the image suite
    runs again on each batch on its own, so that the error names the batches that fail and why
    (on success, one run checks them all: a folder's nightly cost does not grow with its batches)."""
    duplicates = count_duplicates(splits)
    summary = split_summary(splits, source_rows, duplicates)
    report = validate({"images": image_profile(splits)}, summary, bounds)
    batches = [part for part in parts if part.batch and part.kept]
    if report.results["images"]["success"] or not batches:
        return CheckedSplits(report, summary, duplicates, parts)
    # Only the image suite, once per part: the summary was checked above, and a failed run
    # publishes no Data Docs.
    owners = {f"images {part.name}": part for part in parts if part.kept}
    by_part = {suite: _run_suite(suite, image_profile({name: digits.take(np.flatnonzero(part.holds(digits.sample_ids)))
                                                       for name, digits in splits.items()}),
                                 image_expectations(), ["sample_id", "split"]).to_json_dict()
               for suite, part in owners.items()}
    return CheckedSplits(ValidationReport(False, {**report.results, **by_part}, report.data_docs, owners), summary,
                         duplicates, parts)


def splits_table(checked: CheckedSplits) -> Table:
    """Per split: rows, class shares, blank images and duplicates, as validation saw them."""
    row, duplicates = checked.summary.iloc[0], checked.duplicates
    return Table(tuple({"split": split, "rows": f"{int(row[f'rows_{split}']):,}",
                        "smallest class share": f"{row[f'class_share_min_{split}']:.3f}",
                        "largest class share": f"{row[f'class_share_max_{split}']:.3f}",
                        "largest gap to the whole's shares": f"{row[f'class_share_gap_{split}']:.3f}",
                        "blank images": f"{row[f'blank_share_{split}']:.2%}",
                        "duplicates within": f"{duplicates[f'within_{split}']:,}"} for split in SPLITS),
                 numeric=("rows", "smallest class share", "largest class share", "largest gap to the whole's shares",
                          "blank images", "duplicates within"))


def parts_table(checked: CheckedSplits) -> Table:
    """Per part of a batch source: its rows, the copies of earlier parts' images it repeats (left
    out), and whether its images passed."""
    suites = {part.name: suite for suite, part in checked.report.parts.items()}

    def outcome(part: Part) -> str:
        if not part.kept:
            return "-"  # nothing kept to check: every image repeats an earlier part's
        if part.name not in suites:  # checked with the others, and they all passed
            return "passed" if checked.report.results["images"]["success"] else "-"
        return "FAILED" if checked.report.failures(suites[part.name]) else "passed"

    return Table(tuple({"part": part.name, "rows": f"{part.rows:,}", "first sample id": f"{part.first_id:,}",
                        "copies of earlier images (left out)": f"{part.duplicates:,}", "images checked": outcome(part)}
                       for part in checked.parts), numeric=("rows", "first sample id", "copies of earlier images (left out)"))


def markdown(source: str, checked: CheckedSplits) -> str:
    """The validation result for the Prefect UI: the splits, the test leak, what failed."""
    lines = [
        f"# Dataset validation {'passed' if checked.report.success else 'FAILED'}", f"Source: `{source}`", "",
        splits_table(checked).markdown(),
        *([parts_table(checked).markdown()] if len(checked.parts) > 1 else []),
        f"Test images with an exact copy in train or validation: {checked.duplicates['test_in_train_or_validation']:,}",
        "",
    ]
    failures = checked.report.failures()
    if failures:
        lines += ["## Failed expectations", *[f"- {f}" for f in failures]]
    return "\n".join(lines)


def check(report: ValidationReport, source: str) -> None:
    """Raise :class:`ValidationFailed` naming every failed expectation and its offending values; a
    batch that fails is named in one line with its reasons (it blocks the run, nothing is
    published, and the batch stays where it is for a person to fix or remove)."""
    if report.success:
        return
    failed = {part: report.failures(suite) for suite, part in report.parts.items() if report.failures(suite)}
    if failed:
        reasons = [f"{part.name} failed validation ({' | '.join(lines)}; its rows 1 to {part.rows:,} are sample ids "
                   f"{part.first_id:,} to {part.first_id + part.rows - 1:,})" for part, lines in failed.items()]
        if report.failures("summary"):
            reasons.append(f"the whole dataset failed validation ({' | '.join(report.failures('summary'))})")
        raise ValidationFailed(f"{'; '.join(reasons)}; nothing was published from {source}: fix or remove "
                               f"{'that batch' if len(failed) == 1 else 'those batches'} and run again",
                               report.results)
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
