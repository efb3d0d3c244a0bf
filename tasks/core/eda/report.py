"""Assembling the EDA report: figures as PNGs, key numbers, and one self-contained HTML page."""

import html
from dataclasses import dataclass

import numpy as np
from mnist_pipeline.tasks.core.dataset import duplicate_groups
from mnist_pipeline.tasks.core.digits import SPLITS, Digits, rows_of
from mnist_pipeline.tasks.core.eda import figures, stats
from mnist_pipeline.tasks.core.eda.changes import DataChanges, data_changes
from mnist_pipeline.tasks.core.pages import figure_png, html_page, p_value_text, png_data_uri
from mnist_pipeline.tasks.core.records import Manifest
from mnist_pipeline.tasks.core.tables import Table, changes_table

# Bumped when the report's content changes, so stored reports of older code are not reused.
REPORT_FORMAT_VERSION = 2


@dataclass(frozen=True)
class Previous:
    """The previous dataset version of the same problem, for what changed since."""

    version: str
    splits: dict[str, Digits]


@dataclass
class EdaReport:
    html: str
    figures: dict[str, bytes]  # name -> PNG
    key_numbers: dict[str, object]
    changes: DataChanges | None  # against the previous version (None: there is none)


def build_report(
    version: str,
    manifest: Manifest,
    splits: dict[str, Digits],
    previous: Previous | None,
    seed: int = 0,
    projection_sample: int = 5000,
) -> EdaReport:
    """Compute every section of the report for one dataset version."""
    class_names = list(manifest.class_names)
    train = splits["train"]
    parts = [splits[s] for s in SPLITS]  # all splits, never concatenated: that would copy every image
    groups = duplicate_groups(splits)
    across = [g for g in groups if len(g.splits) > 1]
    means, stds = stats.class_mean_std(train)

    pngs = {
        "class-distribution": figures.class_distribution(manifest.class_counts, class_names),
        "samples": figures.sample_grid(train, class_names, seed=seed),
        "mean-std": figures.mean_and_std_images(means, stds, class_names),
        "pixel-histogram": figures.pixel_histogram(stats.pixel_value_counts([p.images for p in parts])),
        "ink-bbox": figures.ink_and_bounding_box(train, class_names),
        "projection": _projection(parts, class_names, projection_sample, seed),
        "duplicates": figures.duplicate_examples(_duplicate_examples(groups, splits), len(groups)),
    }
    changes = None
    if previous is not None:
        changes = data_changes(previous.version, [previous.splits[s] for s in SPLITS], parts, class_names, seed=seed)
        drift = stats.drift(previous.version, changes.share_change, train.images.mean(axis=0),
                            previous.splits["train"].images.mean(axis=0))
        pngs["drift"] = figures.drift_figure(drift, class_names)
    pngs = {name: figure_png(figure) for name, figure in pngs.items()}

    key_numbers = {
        "dataset version": version,
        "source": manifest.source.spec,
        "rows (train / validation / test)": " / ".join(f"{len(splits[s]):,}" for s in SPLITS),
        "classes": len(class_names),
        "mean intensity (0-255)": round(sum(int(p.images.sum(dtype=np.int64)) for p in parts)
                                        / max(sum(p.images.size for p in parts), 1), 2),
        "mean ink per image (full-white pixels)": round(float(np.concatenate([stats.ink(p.images)
                                                                              for p in parts]).mean()), 1),
        "duplicate groups (within a split / across splits)": f"{len(groups) - len(across)} / {len(across)}",
        "validation": "passed" if manifest.validated else "FAILED",
        "previous version": previous.version if previous else "none",
    }
    if changes is not None:
        key_numbers.update(changes_key_numbers(changes))
        key_numbers["mean |mean-image difference|"] = round(drift.mean_abs_pixel_difference, 3)
    page = render_html(version, key_numbers, pngs, changes)
    return EdaReport(page, pngs, key_numbers, changes)


def changes_key_numbers(changes: DataChanges) -> dict[str, object]:
    """What changed since the previous version, as key numbers."""
    return {
        "images added / removed since the previous version": f"{changes.rows_added:,} / {changes.removed:,}",
        "largest class-share change (pp)": round(float(np.abs(changes.share_change).max()) * 100, 2),
        "added images' class counts vs the previous version (chi-squared p)":
            "-" if changes.chi2_p is None else p_value_text(changes.chi2_p),
        "new vs earlier images (domain classifier ROC AUC)":
            "-" if changes.domain_auc is None else f"{changes.domain_auc:.3f} ({changes.domain_images:,} images each)",
    }


def _projection(parts: list[Digits], class_names, sample: int, seed: int):
    """PCA of a seeded sample of the rows of ``parts`` (taken as one sequence, not concatenated)."""
    from sklearn.decomposition import PCA

    total = sum(len(p) for p in parts)
    rng = np.random.default_rng(seed)
    rows = rng.choice(total, size=min(sample, total), replace=False)
    chosen = rows_of(parts, rows)
    flat = chosen.images.reshape(len(rows), -1).astype(np.float32) / 255.0
    pca = PCA(n_components=2, svd_solver="randomized", random_state=seed)
    points = pca.fit_transform(flat)
    return figures.projection(points, chosen.labels, pca.explained_variance_ratio_, class_names)


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
    "drift": ("What changed since the previous version", "Images added per class and the class shares (matched by "
              "pixels against the previous version of the same problem), how distinguishable the added images are "
              "from the earlier ones, and the mean image's difference."),
}


def key_numbers_table(key_numbers: dict[str, object]) -> Table:
    """The report's key numbers, one row each: in its HTML page and in the markdown artifact."""
    return Table(tuple({"key number": name, "value": value} for name, value in key_numbers.items()))


def render_html(version: str, key_numbers: dict, pngs: dict[str, bytes], changes: DataChanges | None) -> str:
    parts = [f"<section id='key-numbers'><h2>Key numbers</h2>{key_numbers_table(key_numbers).html()}</section>"]
    for name, (title, caption) in TITLES.items():
        if name == "drift" and changes is None:
            parts.append(
                f"<section id='drift'><h2>{html.escape(title)}</h2>"
                "<p class='none'>No previous version of this source: nothing to compare with.</p></section>"
            )
            continue
        table = ""
        if name == "drift":
            table = f"<p>{html.escape(changes.describe())}.</p>{changes_table(changes).html()}"
        parts.append(
            f"<section id='{name}'><h2>{html.escape(title)}</h2><p>{html.escape(caption)}</p>{table}"
            f"<img alt='{html.escape(title)}' src='{png_data_uri(pngs[name])}'></section>"
        )
    return html_page(f"EDA report: dataset {version}", "\n".join(parts))


def report_code_key() -> str:
    """A short hash of the report code and every project module it imports: part of its storage key."""
    from mnist_pipeline.tasks.core.lineage import source_key

    return source_key(f"eda-report v{REPORT_FORMAT_VERSION}", __name__)
