"""Assembling the EDA report: figures as PNGs, key numbers, and one self-contained HTML page."""

import html
from dataclasses import dataclass

import numpy as np

from mnist_pipeline.tasks.core.dataset import duplicate_groups
from mnist_pipeline.tasks.core.digits import SPLITS, Digits, concat
from mnist_pipeline.tasks.core.eda import figures, stats
from mnist_pipeline.tasks.core.pages import figure_png, html_page, png_data_uri
from mnist_pipeline.tasks.core.tables import Table

# Bumped when the report's content changes, so stored reports of older code are not reused.
REPORT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Previous:
    """The previous dataset version of the same source, for drift."""

    version: str
    class_counts: dict[str, dict[str, int]]
    train: Digits


@dataclass
class EdaReport:
    html: str
    figures: dict[str, bytes]  # name -> PNG
    key_numbers: dict[str, object]


def build_report(
    version: str,
    manifest: dict,
    splits: dict[str, Digits],
    previous: Previous | None,
    seed: int = 0,
    projection_sample: int = 5000,
) -> EdaReport:
    """Compute every section of the report for one dataset version."""
    class_names = manifest["class_names"]
    train = splits["train"]
    parts = [splits[s] for s in SPLITS]  # all splits, never concatenated: that would copy every image
    groups = duplicate_groups(splits)
    across = [g for g in groups if len(g.splits) > 1]
    means, stds = stats.class_mean_std(train)

    pngs = {
        "class-distribution": figures.class_distribution(manifest["class_counts"], class_names),
        "samples": figures.sample_grid(train, class_names, seed=seed),
        "mean-std": figures.mean_and_std_images(means, stds, class_names),
        "pixel-histogram": figures.pixel_histogram(stats.pixel_value_counts([p.images for p in parts])),
        "ink-bbox": figures.ink_and_bounding_box(train, class_names),
        "projection": _projection(parts, class_names, projection_sample, seed),
        "duplicates": figures.duplicate_examples(_duplicate_examples(groups, splits), len(groups)),
    }
    drift = None
    if previous is not None:
        drift = stats.drift(
            previous.version,
            stats.total_counts(manifest["class_counts"]),
            stats.total_counts(previous.class_counts),
            train.images.mean(axis=0),
            previous.train.images.mean(axis=0),
        )
        pngs["drift"] = figures.drift_figure(drift, class_names)
    pngs = {name: figure_png(figure) for name, figure in pngs.items()}

    key_numbers = {
        "dataset version": version,
        "source": manifest["source"]["spec"],
        "rows (train / validation / test)": " / ".join(f"{len(splits[s]):,}" for s in SPLITS),
        "classes": len(class_names),
        "mean intensity (0-255)": round(sum(int(p.images.sum(dtype=np.int64)) for p in parts)
                                        / max(sum(p.images.size for p in parts), 1), 2),
        "mean ink per image (full-white pixels)": round(float(np.concatenate([stats.ink(p.images)
                                                                              for p in parts]).mean()), 1),
        "duplicate groups (within a split / across splits)": f"{len(groups) - len(across)} / {len(across)}",
        "validation": "passed" if manifest["validation"]["success"] else "FAILED",
        "previous version": previous.version if previous else "none",
    }
    if drift is not None:
        key_numbers["largest class-share change (pp)"] = round(drift.max_share_change * 100, 2)
        key_numbers["mean |mean-image difference|"] = round(drift.mean_abs_pixel_difference, 3)
    page = render_html(version, key_numbers, pngs, drift is not None)
    return EdaReport(page, pngs, key_numbers)


def _projection(parts: list[Digits], class_names, sample: int, seed: int):
    """PCA of a seeded sample of the rows of ``parts`` (taken as one sequence, not concatenated)."""
    from sklearn.decomposition import PCA

    total = sum(len(p) for p in parts)
    rng = np.random.default_rng(seed)
    rows = rng.choice(total, size=min(sample, total), replace=False)
    chosen = _rows_of(parts, rows)
    flat = chosen.images.reshape(len(rows), -1).astype(np.float32) / 255.0
    pca = PCA(n_components=2, svd_solver="randomized", random_state=seed)
    points = pca.fit_transform(flat)
    return figures.projection(points, chosen.labels, pca.explained_variance_ratio_, class_names)


def _rows_of(parts: list[Digits], rows: np.ndarray) -> Digits:
    """Rows ``rows`` (in that order) of the parts as if concatenated."""
    starts = np.cumsum([0, *(len(p) for p in parts)])
    owner = np.searchsorted(starts, rows, side="right") - 1
    grouped = concat([part.take(rows[owner == i] - starts[i]) for i, part in enumerate(parts)])
    return grouped.take(np.argsort(np.argsort(owner, kind="stable"), kind="stable"))


def _duplicate_examples(groups, splits, limit: int = 6):
    examples = []
    # Cross-split groups first: they are the ones that matter for an honest test score.
    for group in sorted(groups, key=lambda g: -len(g.splits))[:limit]:
        split, row = group.members[0]
        where = ", ".join(f"{s}#{r}" for s, r in group.members[:3])
        examples.append((splits[split].images[row], where + (" ..." if len(group.members) > 3 else "")))
    return examples


TITLES = {
    "class-distribution": ("Class distribution", "Images per class and each class's share, per split."),
    "samples": ("Sample images", "Random training images of each class."),
    "mean-std": ("Mean and standard deviation per class", "Where each class puts its ink, and how much it varies."),
    "pixel-histogram": ("Pixel intensities", "Distribution of all pixel values."),
    "ink-bbox": ("Ink and bounding box", "Total intensity and the size of the box around the non-zero pixels."),
    "projection": ("2-D projection", "PCA of a seeded sample, coloured by class."),
    "duplicates": ("Exact duplicates", "Byte-identical images within and across splits."),
    "drift": ("Drift against the previous version", "Class shares and mean image compared with the previous version of the same source."),
}


def key_numbers_table(key_numbers: dict[str, object]) -> Table:
    """The report's key numbers, one row each: in its HTML page and in the markdown artifact."""
    return Table(tuple({"key number": name, "value": value} for name, value in key_numbers.items()))


def render_html(version: str, key_numbers: dict, pngs: dict[str, bytes], has_drift: bool) -> str:
    parts = [f"<section id='key-numbers'><h2>Key numbers</h2>{key_numbers_table(key_numbers).html()}</section>"]
    for name, (title, caption) in TITLES.items():
        if name == "drift" and not has_drift:
            parts.append(
                "<section id='drift'><h2>Drift against the previous version</h2>"
                "<p class='none'>No previous version of this source: nothing to compare with.</p></section>"
            )
            continue
        parts.append(
            f"<section id='{name}'><h2>{html.escape(title)}</h2><p>{html.escape(caption)}</p>"
            f"<img alt='{html.escape(title)}' src='{png_data_uri(pngs[name])}'></section>"
        )
    return html_page(f"EDA report: dataset {version}", "\n".join(parts))


def report_code_key() -> str:
    """A short hash of the report code and every project module it imports: part of its storage key."""
    from mnist_pipeline.tasks.core.lineage import source_key

    return source_key(f"eda-report v{REPORT_FORMAT_VERSION}", __name__)
