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
    version_table = versions_table(sorted(versions, key=lambda v: v.registered_at, reverse=True))
    points = production_points(versions, history)
    figure = figure_png(production_figure(points)) if points else None
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
        + (html_figure("Production over time", figure, "A point per move of production (a promotion, a rollback "
                       "or a move by hand): the model's accuracy on the test split of the dataset it was trained on, "
                       "and that split's size (n).")
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


@dataclass(frozen=True)
class ProductionPoint:
    """One move of production: when, to which model, how, and that model's test accuracy on its
    own dataset's test split (None: not evaluated) and the size of that split."""

    when: datetime.datetime
    model_id: str
    family: str
    action: str  # promote, rollback or manual
    accuracy: float | None
    test_images: int | None


def production_points(versions: Sequence[RegisteredModel], history: Sequence[AliasChange]) -> list[ProductionPoint]:
    """Production's story, one point per move, oldest first."""
    by_id = {v.model_id: v for v in versions}
    return [ProductionPoint(datetime.datetime.fromisoformat(h.changed_at), h.to_model, by_id[h.to_model].family,
                            h.action, by_id[h.to_model].test_accuracy, by_id[h.to_model].metrics.get("images"))
            for h in history if h.alias == "production" and h.to_model in by_id]


# How each kind of move is drawn.
MARKERS = {"promote": ("o", "promotion"), "rollback": ("v", "rollback"), "manual": ("s", "moved by hand")}


def production_figure(points: list[ProductionPoint]):
    """Production's test accuracy over the nights: a step line through a point per move (its
    marker says how production moved; the label names the family and the test split's size),
    dates on the time axis (at least a day around the moves), accuracy up to 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    times = [p.when for p in points]
    accuracies = [p.accuracy if p.accuracy is not None else float("nan") for p in points]
    now = datetime.datetime.now(datetime.timezone.utc)
    figure, axes = plt.subplots(figsize=(8, 3.5), layout="constrained")
    axes.step(times + [max(now, times[-1])], accuracies + accuracies[-1:], where="post", color="#4C72B0", zorder=1)
    for action, (marker, label) in MARKERS.items():
        chosen = [(p.when, a) for p, a in zip(points, accuracies) if p.action == action]
        if chosen:
            axes.scatter(*zip(*chosen), marker=marker, s=40, color="#4C72B0", label=label, zorder=2)
    for point, accuracy in zip(points, accuracies):
        size = "" if point.test_images is None else f"\nn={point.test_images:,}"
        axes.annotate(f"{point.family}{size}", (point.when, accuracy), textcoords="offset points", xytext=(4, 6),
                      fontsize=7)
    # A lone promotion would otherwise span microseconds (ticks like 53:56.490000): show days.
    start, end = min(times), max(max(times), now)
    margin = max((end - start) * 0.05, datetime.timedelta(hours=12))
    axes.set_xlim(start - margin, end + margin)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    known = [a for a in accuracies if a == a]
    bottom = min(known) if known else 0.0
    axes.set_ylim(max(0.0, bottom - max(0.02, (1 - bottom) * 0.5)), 1.0)
    axes.set(title="Production model: test accuracy on its dataset's test split", xlabel="date (UTC)",
             ylabel="test accuracy")
    axes.legend(loc="lower right", fontsize=8)
    return figure
