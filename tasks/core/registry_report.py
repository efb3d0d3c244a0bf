"""The registry report: every model version with its metrics per dataset, production's accuracy
over time, and the history of the aliases, as one self-contained HTML page and a markdown
version for the Prefect UI. Pure: it takes what the registry lists and returns text and a PNG."""

import datetime
import io
from dataclasses import dataclass

from mnist_pipeline.tasks.core.pages import html_figure, html_page, html_table, markdown_figure, markdown_table


@dataclass(frozen=True)
class RegistryReport:
    html: str
    markdown: str
    figure: bytes | None  # production's accuracy over time (None before the first promotion)


def build_registry_report(versions: list[dict], history: list[dict], location: str) -> RegistryReport:
    """``versions`` as ``Registry.list_versions`` gives them, ``history`` as ``Registry.history``."""
    by_id = {v["model_id"]: v for v in versions}
    version_rows = [_version_row(v) for v in sorted(versions, key=lambda v: v["registered_at"], reverse=True)]
    production = [h for h in history if h["alias"] == "production"]
    points = [(h["changed_at"], by_id[h["to_model"]]) for h in production if h["to_model"] in by_id]
    figure = _production_figure(points) if points else None
    history_rows = [{"when (UTC)": h["changed_at"][:19].replace("T", " "), "alias": h["alias"],
                     "from": h["from_model"] or "(none)", "to": h["to_model"], "how": h["action"],
                     "why": h["reason"]} for h in reversed(history)]
    current = {name: next((h["to_model"] for h in reversed(history) if h["alias"] == name), None)
               for name in ("production", "candidate")}
    heading = (f"{len(versions)} model version(s); production: {current['production'] or '(none)'}; "
               f"candidate: {current['candidate'] or '(none)'}. Registry: {location}.")
    numeric = ("validation", "test accuracy by dataset")
    html_body = [
        f"<p>{heading}</p>",
        "<section id='production-over-time'><h2>Production's test accuracy over time</h2>"
        + (html_figure("Production over time", figure, "Each step is a promotion (or rollback); the accuracy is "
                       "the model's on the test split of the dataset it was trained on.")
           if figure else "<p class='none'>No model has been promoted yet.</p>") + "</section>",
        "<section id='versions'><h2>Model versions</h2>" + html_table(version_rows, numeric=numeric) + "</section>",
        "<section id='alias-history'><h2>Alias history</h2>" + html_table(history_rows) + "</section>",
    ]
    markdown = "\n".join([
        "# Model registry", "", heading, "",
        "## Production's test accuracy over time", "",
        markdown_figure("production over time", figure, max_width=640) if figure else "No model has been promoted yet.",
        "", "## Model versions", "", markdown_table(version_rows[:30], numeric=numeric),
        "## Alias history (newest first)", "", markdown_table(history_rows[:30]),
    ])
    return RegistryReport(html_page("Model registry", "\n".join(html_body)), markdown, figure)


def _version_row(version: dict) -> dict:
    tests = "; ".join(f"{dataset}: {e['accuracy']:.4f}" for dataset, e in version["evaluations"].items())
    source = (version.get("source") or "?") + (" (smoke)" if version.get("smoke") else "")
    return {"model": version["model_id"], "family": version["family"], "source": source,
            "dataset": version["dataset_version"], "registered (UTC)": version["registered_at"][:16].replace("T", " "),
            "validation": f"{version['validation_accuracy']:.4f}", "test accuracy by dataset": tests or "-",
            "aliases": ", ".join(version["aliases"]) or "-"}


def _production_figure(points: list[tuple[str, dict]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [datetime.datetime.fromisoformat(when) for when, _ in points]
    accuracies = [model["metrics"].get("accuracy", float("nan")) for _, model in points]
    now = datetime.datetime.now(datetime.timezone.utc)
    figure, axes = plt.subplots(figsize=(8, 3.5), layout="constrained")
    axes.step(times + [max(now, times[-1])], accuracies + accuracies[-1:], where="post", color="#4C72B0")
    axes.plot(times, accuracies, "o", color="#4C72B0")
    for when, accuracy, (_, model) in zip(times, accuracies, points):
        axes.annotate(model["family"], (when, accuracy), textcoords="offset points", xytext=(4, 6), fontsize=8)
    axes.set(title="Production model: test accuracy on its dataset", xlabel="time (UTC)", ylabel="test accuracy")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
