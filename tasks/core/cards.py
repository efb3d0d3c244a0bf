"""What the registry shows of a model and of a promotion: the model card, and the decision page
with its evidence. Pure: records and decisions in, markdown out."""

from mnist_pipeline.tasks.core.pages import p_value_text
from mnist_pipeline.tasks.core.promotion import Decision
from mnist_pipeline.tasks.core.records import TrainingRecord


def decision_markdown(decision: Decision) -> str:
    """The promotion decision with its evidence, as the artifact of the run that made it."""
    d = decision

    def shown(value, text=str):
        return "-" if value is None else text(value)

    def accuracy(value):
        return shown(value, lambda v: f"{v:.4f}")

    return "\n".join([
        f"# Promotion: {d.challenger} {d.verdict}", "", f"**Why:** {d.reason}", "",
        "| | challenger | champion |", "| --- | --- | --- |",
        f"| model | {d.challenger} | {d.champion or '(none)'} |",
        f"| problem (source and classes) | {shown(d.challenger_lineage)} | {shown(d.champion_lineage)} |",
        f"| test accuracy on {d.dataset_version} | {accuracy(d.challenger_accuracy)} | {accuracy(d.champion_accuracy)} |",
        *([f"| accuracy on the {d.compared_images:,} test images neither model saw | "
           f"{accuracy(d.challenger_accuracy_compared)} | {accuracy(d.champion_accuracy_compared)} |"]
          if d.compared_images is not None else []),
        f"| images only this model got right | {shown(d.challenger_only_correct)} | {shown(d.champion_only_correct)} |",
        *(["", f"Compared on {d.compared_images:,} test images; {d.excluded_images:,} left out because one of the "
           "models trained or was validated on them (an earlier dataset version's splits)."]
          if d.excluded_images else []),
        "", f"McNemar exact p-value: {p_value_text(d.p_value)} (significance level {d.alpha}); accuracy floor {d.floor}."
        + (" A smoke run: its best model becomes the candidate, never production." if d.smoke else ""),
    ]) + "\n"


def _kept(record: TrainingRecord) -> str:
    """Which weights the model kept, and why training stopped where it did."""
    stopped = f"; {record.stopped_early}" if record.stopped_early else ""
    return f"kept the weights of step {record.best_step:,} of {record.steps:,}{stopped}"


def _recipe_line(record: TrainingRecord) -> str:
    if record.is_ensemble:
        return "its members' own (see their model cards)"
    if not record.recipe:
        return "none: this model's config sets its own random changes (see the config below)"
    return record.recipe.describe()


def _calibration_line(record: TrainingRecord) -> str:
    calibration = record.calibration
    if not calibration:
        return "not recorded"
    return (f"temperature {calibration.temperature:.3f}, fitted on the validation split; validation ECE "
            f"{calibration.validation_ece_before:.4f} before, {calibration.validation_ece_after:.4f} after "
            "(the test split's, before and after, are in the evaluation)")


def _machine_line(record: TrainingRecord) -> str:
    where = record.trained_on
    if not where:
        return ""
    worker = f", Dask worker {where.dask_worker}" if where.dask_worker else ""
    return f" of {where.host} (pid {where.pid}{worker})"


def _rows_line(record: TrainingRecord) -> str:
    """Why a family that plans its own cost (the SVM) trained on the rows it did."""
    plan = record.row_plan
    if not plan:
        return ""
    return f"\n- **Rows used**: {plan.rows:,} of {plan.offered:,} training images; {plan.reason}"


def model_card(record: TrainingRecord) -> str:
    config = "\n".join(f"| {k} | {v} |" for k, v in record.config.items())
    libraries = ", ".join(f"{k} {v}" for k, v in record.libraries.items())
    if record.is_ensemble:  # an ensemble: what it combines, and how much each counts
        trained_on = (f"a weighted vote of {len(record.members)} models of dataset version "
                      f"`{record.dataset_version}`, weighted on its {record.rows['validation']:,} validation "
                      "images: " + ", ".join(f"`{m.model_id}` {m.weight:.3f}" for m in record.members))
    else:
        trained_on = (f"dataset version `{record.dataset_version}` ({record.rows['train']:,} training images, "
                      f"{record.rows['validation']:,} validation images for model selection; the test split is "
                      "never used in training)")
    return f"""# Model card: {record.model_id}

- **Family**: {record.family}
- **Trained on**: {trained_on}{_rows_line(record)}
- **Validation accuracy**: {record.validation_accuracy:.4f} ({_kept(record)})
- **Training time**: {record.train_seconds:.1f} s on {record.threads} thread(s){_machine_line(record)}, device {record.device}; seed {record.seed}
- **Recipe**: {_recipe_line(record)}
- **Calibration**: {_calibration_line(record)}
- **Code**: {record.code_version} (model code {record.model_code}); {libraries}
- **Trained at**: {record.trained_at}
- **Intended use**: classifying 28x28 grayscale digits (or items) like those of its dataset; images of other
  kinds must be converted the way `mnist predict` converts them, and will score worse the further they are
  from the training data.

| config | value |
| --- | --- |
{config}
"""
