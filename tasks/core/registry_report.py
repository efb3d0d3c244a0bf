"""The registry report: every model version with its metrics per dataset, production's accuracy
over time, and the history of the aliases, as one self-contained HTML page and a markdown
version for the Prefect UI. Pure: it takes what the registry lists and returns text and a PNG."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from mnist_pipeline.tasks.core.pages import figure_png, html_figure, html_page, markdown_figure
from mnist_pipeline.tasks.core.results import AliasChange, RegisteredModel
from mnist_pipeline.tasks.core.tables import Table


@dataclass(frozen=True)
class RegistryReport:
    html: str
    markdown: str
    figure: bytes | None  # production's accuracy over time (None before the first promotion)


def build_registry_report(versions: Sequence[RegisteredModel], history: Sequence[AliasChange],
                          location: str) -> RegistryReport:
    """``versions`` as ``Registry.list_versions`` gives them, ``history`` as ``Registry.history``."""
    by_id = {v.model_id: v for v in versions}
    version_table = versions_table(sorted(versions, key=lambda v: v.registered_at, reverse=True))
    production = [h for h in history if h.alias == "production"]
    points = [(h.changed_at, by_id[h.to_model]) for h in production if h.to_model in by_id]
    figure = _production_figure(points) if points else None
    history_table = Table(tuple({"when (UTC)": h.changed_at[:19].replace("T", " "), "alias": h.alias,
                                 "from": h.from_model or "(none)", "to": h.to_model, "how": h.action,
                                 "why": h.reason} for h in reversed(history)))
    current = {name: next((h.to_model for h in reversed(history) if h.alias == name), None)
               for name in ("production", "candidate")}
    heading = (f"{len(versions)} model version(s); production: {current['production'] or '(none)'}; "
               f"candidate: {current['candidate'] or '(none)'}. Registry: {location}.")
    html_body = [
        f"<p>{heading}</p>",
        "<section id='production-over-time'><h2>Production's test accuracy over time</h2>"
        + (html_figure("Production over time", figure, "Each step is a promotion (or rollback); the accuracy is "
                       "the model's on the test split of the dataset it was trained on.")
           if figure else "<p class='none'>No model has been promoted yet.</p>") + "</section>",
        "<section id='versions'><h2>Model versions</h2>" + version_table.html() + "</section>",
        "<section id='alias-history'><h2>Alias history</h2>" + history_table.html() + "</section>",
    ]
    markdown = "\n".join([
        "# Model registry", "", heading, "",
        "## Production's test accuracy over time", "",
        markdown_figure("production over time", figure, max_width=640) if figure else "No model has been promoted yet.",
        "", "## Model versions", "", version_table.head(30).markdown(),
        "## Alias history (newest first)", "", history_table.head(30).markdown(),
    ])
    return RegistryReport(html_page("Model registry", "\n".join(html_body)), markdown, figure)


def versions_table(versions: Sequence[RegisteredModel]) -> Table:
    """Registered model versions, one row each: what the registry report and `mnist models list` show."""
    return Table(tuple({
        "model": v.model_id, "family": v.family, "source": v.source + (" (smoke)" if v.smoke else ""),
        "dataset": v.dataset_version, "registered (UTC)": v.registered_at[:16].replace("T", " "),
        "validation": f"{v.validation_accuracy:.4f}",
        "test accuracy by dataset": "; ".join(f"{d}: {e.accuracy:.4f}" for d, e in v.evaluations.items()) or "-",
        "aliases": ", ".join(v.aliases) or "-",
    } for v in versions), numeric=("validation", "test accuracy by dataset"))


def _production_figure(points: list[tuple[str, RegisteredModel]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [datetime.datetime.fromisoformat(when) for when, _ in points]
    accuracies = [model.test_accuracy if model.test_accuracy is not None else float("nan") for _, model in points]
    now = datetime.datetime.now(datetime.timezone.utc)
    figure, axes = plt.subplots(figsize=(8, 3.5), layout="constrained")
    axes.step(times + [max(now, times[-1])], accuracies + accuracies[-1:], where="post", color="#4C72B0")
    axes.plot(times, accuracies, "o", color="#4C72B0")
    for when, accuracy, (_, model) in zip(times, accuracies, points):
        axes.annotate(model.family, (when, accuracy), textcoords="offset points", xytext=(4, 6), fontsize=8)
    axes.set(title="Production model: test accuracy on its dataset", xlabel="time (UTC)", ylabel="test accuracy")
    figure.autofmt_xdate()
    return figure_png(figure)
