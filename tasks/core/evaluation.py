"""Evaluating a trained model once on a held-out split: metrics, figures, per-image predictions.

Pure: takes a classifier and digits, returns numbers, PNG bytes and markdown.
"""

import time
from dataclasses import dataclass

import numpy as np
from mnist_pipeline.tasks.core.calibration import expected_calibration_error, reliability
from mnist_pipeline.tasks.core.digits import NUM_CLASSES, Digits
from mnist_pipeline.tasks.core.models.base import Classifier
from mnist_pipeline.tasks.core.pages import (
    class_label,
    figure_png,
    html_figure,
    html_page,
    markdown_figure,
)
from mnist_pipeline.tasks.core.tables import Row, Table

THROUGHPUT_BATCH = 1000
GALLERY_SIZE = 24


@dataclass(frozen=True)
class TestSplitResult:
    """Everything an evaluation measured on one test split (tasks/core/results.Evaluation is the
    summary of it that the stages pass on)."""

    metrics: dict  # what metrics.json keeps
    # One row per evaluated image, in the split's order: what McNemar's test pairs up.
    sample_ids: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    probabilities: np.ndarray  # (n, classes) calibrated: what an ensemble of this model reuses
    figures: dict[str, bytes]


@dataclass(frozen=True)
class Speed:
    """How fast a model scores: batch throughput and one-image latency."""

    throughput_images_per_s: float
    throughput_batch_size: int
    latency_ms_one_image: float
    from_members: bool = False  # an ensemble's, added up from its members' measured speeds

    def metrics(self) -> dict[str, float | int | bool]:
        """As metrics.json names them."""
        shown = {"throughput_images_per_s": self.throughput_images_per_s,
                 "throughput_batch_size": self.throughput_batch_size,
                 "latency_ms_one_image": self.latency_ms_one_image}
        return {**shown, "speed_from_members": True} if self.from_members else shown


def evaluate(
    model: Classifier,
    split: Digits,
    class_names: list[str],
    size_bytes: int,
    *,
    measure_speed: bool = True,
) -> TestSplitResult:
    """Score ``split`` with ``model`` (timing that pass when ``measure_speed``) and evaluate it."""
    if measure_speed:
        scores, measured = speed(model, split.images)
    else:
        scores, measured = model.log_scores(split.images), None
    return evaluate_scores(model, scores, split, class_names, size_bytes, measured)


def evaluate_scores(
    model: Classifier, scores: np.ndarray, split: Digits, class_names: list[str], size_bytes: int,
    measured: Speed | None = None,
) -> TestSplitResult:
    """The evaluation of ``model``'s uncalibrated ``scores`` (``log_scores``) on ``split``: its
    calibrated probabilities decide, and the ECE is reported before and after the temperature."""
    proba = model.probabilities(scores)
    predicted = proba.argmax(axis=1)
    confidence = proba[np.arange(len(proba)), predicted]
    labels = split.labels.astype(np.int64)
    correct = predicted == labels
    confusion = confusion_matrix(labels, predicted)
    per_class = per_class_scores(confusion, class_names)
    ece, bins = reliability(confidence, correct)
    metrics = {
        "images": int(len(labels)),
        "accuracy": float(correct.mean()),
        "macro_f1": float(np.mean([row["f1"] for row in per_class])),
        "expected_calibration_error": ece,
        "expected_calibration_error_uncalibrated": expected_calibration_error(model.probabilities(scores, False), labels),
        "temperature": float(model.temperature),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "calibration_bins": bins,
        "model_size_bytes": int(size_bytes),
    }
    metrics.update(measured.metrics() if measured else {})
    errors = np.flatnonzero(~correct)
    worst = errors[np.argsort(-confidence[errors])][:GALLERY_SIZE]
    metrics["most_confident_errors"] = [
        {"sample_id": int(split.sample_ids[i]), "label": int(labels[i]), "predicted": int(predicted[i]),
         "confidence": round(float(confidence[i]), 4)}
        for i in worst
    ]
    figures = {
        "confusion_matrix": _confusion_figure(confusion, class_names),
        "reliability": _reliability_figure(bins, ece),
        "confident_errors": _gallery_figure(split, worst, predicted, confidence, class_names),
    }
    return TestSplitResult(metrics, split.sample_ids, predicted.astype(np.uint8), confidence.astype(np.float32), correct,
                      proba, figures)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    return np.bincount(labels * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def per_class_scores(confusion: np.ndarray, class_names: list[str]) -> list[Row]:
    true_positive = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros(NUM_CLASSES), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(NUM_CLASSES), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(NUM_CLASSES), where=both > 0)
    return [
        {"label": c, "name": class_names[c], "precision": round(float(precision[c]), 5),
         "recall": round(float(recall[c]), 5), "f1": round(float(f1[c]), 5), "support": int(actual[c])}
        for c in range(NUM_CLASSES)
    ]


def speed(model: Classifier, images: np.ndarray, batch_size: int = THROUGHPUT_BATCH) -> tuple[np.ndarray, Speed]:
    """The scores of ``images`` and how fast that pass was: batch throughput (images/s over the
    whole split, after a warm-up) and one-image latency."""
    model.predict_proba(images[:batch_size])  # warm-up: allocations, lazy initialisation
    started = time.perf_counter()
    chunks = []
    for start in range(0, len(images), batch_size):
        chunks.append(model.log_scores(images[start : start + batch_size]))
        model.probabilities(chunks[-1])  # timed too: what predict_proba costs
    elapsed = time.perf_counter() - started
    latencies = []
    for i in range(min(50, len(images))):
        one = time.perf_counter()
        model.predict_proba(images[i : i + 1])
        latencies.append(time.perf_counter() - one)
    scores = np.concatenate(chunks) if chunks else model.log_scores(images)
    return scores, Speed(round(len(images) / elapsed, 1), batch_size, round(float(np.median(latencies)) * 1000, 3))


def combined_speed(members: list[dict]) -> Speed | None:
    """An ensemble's speed from its members' measured speeds (their metrics; it runs each of
    them, one after the other, and the weighted sum costs next to nothing), for an evaluation
    that reuses the members' stored probabilities instead of scoring the split again."""
    if not members or any("throughput_images_per_s" not in m for m in members):
        return None
    return Speed(round(1 / sum(1 / m["throughput_images_per_s"] for m in members), 1),
                 members[0]["throughput_batch_size"], round(sum(m["latency_ms_one_image"] for m in members), 3),
                 from_members=True)


def metrics_table(metrics: dict, family: str) -> Table:
    """An evaluation's headline figures, as its markdown and HTML reports show them."""
    rows = [("accuracy", f"{metrics['accuracy']:.4f}"), ("macro F1", f"{metrics['macro_f1']:.4f}"),
            ("expected calibration error", f"{metrics['expected_calibration_error']:.4f}")]
    if "expected_calibration_error_uncalibrated" in metrics:
        rows.append((f"ECE before the temperature ({metrics['temperature']:.3f})",
                     f"{metrics['expected_calibration_error_uncalibrated']:.4f}"))
    rows.append(("images", f"{metrics['images']:,}"))
    if "throughput_images_per_s" in metrics:
        rows += [(f"throughput (batch {metrics['throughput_batch_size']})",
                  f"{metrics['throughput_images_per_s']:,.0f} images/s"),
                 ("latency, one image", f"{metrics['latency_ms_one_image']:.2f} ms")]
    rows += [("model size", f"{metrics['model_size_bytes'] / 1024:,.0f} KiB"), ("family", family)]
    return Table(tuple({"metric": metric, "value": value} for metric, value in rows), numeric=("value",))


def per_class_table(metrics: dict) -> Table:
    """Precision, recall, F1 and support per class, as the reports show them."""
    return Table(tuple({"class": class_label(r["label"], r["name"]), "precision": f"{r['precision']:.3f}",
                        "recall": f"{r['recall']:.3f}", "F1": f"{r['f1']:.3f}", "support": r["support"]}
                       for r in metrics["per_class"]), numeric=("precision", "recall", "F1", "support"))


def markdown(model_id: str, family: str, dataset_version: str, metrics: dict, split: str = "test") -> str:
    return "\n".join([f"# {model_id} on dataset {dataset_version} ({split} split)", "",
                      metrics_table(metrics, family).markdown(), per_class_table(metrics).markdown()])


FIGURE_TITLES = {
    "confusion_matrix": "Confusion matrix",
    "reliability": "Reliability diagram",
    "confident_errors": "Most confidently wrong test images",
}


def markdown_with_figures(model_id: str, family: str, dataset_version: str, metrics: dict,
                          figures: dict[str, bytes], max_width: int = 480) -> str:
    """The markdown report with its figures inline (scaled down), for the Prefect UI."""
    text = markdown(model_id, family, dataset_version, metrics)
    return text + "\n" + "".join(f"\n### {FIGURE_TITLES.get(name, name)}\n\n{markdown_figure(FIGURE_TITLES.get(name, name), png, max_width)}"
                                 for name, png in figures.items())


def html_report(model_id: str, family: str, dataset_version: str, metrics: dict, figures: dict[str, bytes],
                split: str = "test") -> str:
    """One self-contained HTML page of an evaluation: metrics, per-class scores, every figure."""
    body = [
        f"<p>Model <code>{model_id}</code> ({family}) on the {split} split of dataset <code>{dataset_version}</code>.</p>",
        "<section id='metrics'><h2>Metrics</h2>" + metrics_table(metrics, family).html() + "</section>",
        "<section id='per-class'><h2>Per class</h2>" + per_class_table(metrics).html() + "</section>",
        "<section id='figures'><h2>Figures</h2>"
        + "".join(html_figure(FIGURE_TITLES.get(name, name), png) for name, png in figures.items()) + "</section>",
    ]
    return html_page(f"Evaluation of {model_id} on {dataset_version}", "\n".join(body))


def _confusion_figure(confusion: np.ndarray, class_names: list[str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    labels = [class_label(label, name) for label, name in enumerate(class_names)]
    figure, axes = plt.subplots(figsize=(7, 6))
    sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes,
                xticklabels=labels, yticklabels=labels, annot_kws={"size": 7})
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix")
    return figure_png(figure)


def _reliability_figure(bins: list[dict], ece: float) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    axes.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(f"Reliability diagram (ECE {ece:.4f})")
    axes.legend(loc="upper left")
    return figure_png(figure)


def _gallery_figure(split: Digits, rows: np.ndarray, predicted, confidence, class_names) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 8
    figure, grid = plt.subplots(max(1, -(-len(rows) // columns)), columns, figsize=(columns * 1.3, 1.6 * max(1, -(-len(rows) // columns))))
    for axes in np.atleast_1d(grid).ravel():
        axes.axis("off")
    for axes, i in zip(np.atleast_1d(grid).ravel(), rows):
        axes.imshow(split.images[i], cmap="gray_r")
        guess, truth = int(predicted[i]), int(split.labels[i])
        axes.set_title(f"{class_label(guess, class_names[guess])} {confidence[i]:.2f}\n"
                       f"true {class_label(truth, class_names[truth])}", fontsize=6)
    figure.suptitle("Most confidently wrong test images (predicted, confidence / true)", fontsize=8)
    return figure_png(figure)
