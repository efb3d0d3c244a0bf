"""The pipeline's tables: rows built once from typed results by a pure function, then rendered to
the terminal, markdown (Prefect artifacts), HTML (reports) or table artifacts from those rows.

The leaderboard of a run is one table whatever shows it: the training artifact, the evaluation
artifact, the run summary and ``mnist train-all`` each pick the columns they show.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mnist_pipeline.tasks.core.eda.changes import DataChanges
from mnist_pipeline.tasks.core.pages import class_label, html_table, markdown_table
from mnist_pipeline.tasks.core.results import Evaluation, LeftOut, TrainedModel

MISSING = "-"
Cell = str | int | float
Row = dict[str, Cell]  # one cell per column, by column name


@dataclass(frozen=True)
class Table:
    """Rows of cells by column name (every row has every column); ``numeric`` columns align right."""

    rows: tuple[Row, ...]
    numeric: tuple[str, ...] = ()

    def select(self, *columns: str) -> "Table":
        return Table(tuple({c: row[c] for c in columns} for row in self.rows),
                     tuple(c for c in self.numeric if c in columns))

    def head(self, rows: int) -> "Table":
        return Table(self.rows[:rows], self.numeric)

    def with_column(self, name: str, cells: Sequence) -> "Table":
        return Table(tuple({**row, name: cell} for row, cell in zip(self.rows, cells, strict=True)), self.numeric)

    def records(self) -> list[Row]:
        """The rows for a Prefect table artifact."""
        return [dict(row) for row in self.rows]

    def markdown(self) -> str:
        return markdown_table(self.records(), numeric=self.numeric)

    def html(self) -> str:
        return html_table(self.records(), numeric=self.numeric)

    def text(self, indent: str = "    ") -> str:
        """Aligned columns for a terminal, a header line first."""
        if not self.rows:
            return f"{indent}(none)"
        columns = list(self.rows[0])
        cells = [columns] + [[str(row[c]) for c in columns] for row in self.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]

        def line(values: list[str]) -> str:
            return indent + "  ".join(v.rjust(w) if c in self.numeric else v.ljust(w)
                                      for v, w, c in zip(values, widths, columns)).rstrip()

        return "\n".join(line(values) for values in cells)


def leaderboard(trained: Mapping[str, TrainedModel], failed: Mapping[str, str] = {},
                left_out: Mapping[str, LeftOut] = {},
                evaluations: Mapping[str, Evaluation] | None = None) -> Table:
    """A run's models ranked by validation accuracy (the test split only reports), then the
    families that failed and the models left out; with ``evaluations``, their test-split scores."""
    evaluations = evaluations or {}
    ranked = sorted(trained.values(), key=lambda m: -m.validation_accuracy)
    rows = [_model_row(rank, model, evaluations.get(model.family)) for rank, model in enumerate(ranked, 1)]
    rows += [_missing_row(family, status=f"FAILED: {reason}") for family, reason in failed.items()]
    rows += [_missing_row(family, status="left out", note=model.reason) for family, model in left_out.items()]
    return Table(tuple(rows), numeric=NUMERIC)


NUMERIC = ("validation_accuracy", "test_accuracy", "macro_f1", "ece", "ece_before_temperature", "images_per_s",
           "latency_ms", "size_kib", "train_seconds")


def _model_row(rank: int, model: TrainedModel, evaluation: Evaluation | None) -> Row:
    scores = {"test_accuracy": MISSING, "macro_f1": MISSING, "ece": MISSING, "ece_before_temperature": MISSING,
              "images_per_s": MISSING, "latency_ms": MISSING, "size_kib": MISSING, "report": MISSING}
    if evaluation is not None:
        scores = {"test_accuracy": _rounded(evaluation.accuracy), "macro_f1": _rounded(evaluation.macro_f1),
                  "ece": _rounded(evaluation.ece), "ece_before_temperature": _rounded(evaluation.ece_uncalibrated),
                  "images_per_s": _rounded(evaluation.throughput, 0),
                  "latency_ms": _rounded(evaluation.latency_ms, 2), "size_kib": evaluation.size_kib,
                  "report": evaluation.report or MISSING}
    steps = MISSING if model.steps is None else f"{model.steps} ({model.best_step})"
    return {"rank": rank, "family": model.family, "model_id": model.model_id,
            "validation_accuracy": _rounded(model.validation_accuracy), **scores,
            "train_seconds": model.train_seconds, "steps (best)": steps, "note": model.stopped_early or "",
            "status": model.status}


def _missing_row(family: str, status: str, note: str = "") -> Row:
    row = dict.fromkeys(("rank", "model_id", *NUMERIC, "steps (best)", "report"), MISSING)
    return {**row, "family": family, "note": note, "status": status}


def _rounded(value: float | None, digits: int = 4):
    if value is None:
        return MISSING
    return int(round(value)) if digits == 0 else round(value, digits)


def changes_table(changes: DataChanges) -> Table:
    """Per class: the images a version added since the previous one, and the class's share of all
    images before and now (the EDA report and the run summary show it)."""
    return Table(tuple({"class": class_label(label, changes.class_names[label]), "added": f"{changes.added[label]:,}",
                        "share before": f"{changes.previous_shares[label]:.3f}",
                        "share now": f"{changes.current_shares[label]:.3f}",
                        "change (pp)": f"{changes.share_change[label] * 100:+.2f}"}
                       for label in range(len(changes.added))),
                 numeric=("added", "share before", "share now", "change (pp)"))
