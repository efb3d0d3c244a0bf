"""What a dataset version changed against the previous version of the same problem: the night's story.

Images are matched by their pixels, so the images a version *adds* are exactly those the previous
version did not hold, whatever their ids or splits. For them: how many per class, whether their
class shares differ from the previous version's (a chi-squared test of the two sets of counts),
and how distinguishable they are from the earlier images (Evidently's method for embeddings: a
classifier told to separate new from old on PCA-reduced images; a cross-validated ROC AUC of 0.5
means indistinguishable, 1 another kind of data). A promotion gate may hold on that AUC.
"""

from dataclasses import asdict, dataclass

import numpy as np

from mnist_pipeline.tasks.core.dataset import row_hashes
from mnist_pipeline.tasks.core.digits import NUM_CLASSES, Digits, rows_of
from mnist_pipeline.tasks.core.pages import p_value_text

# Fewer added images than this tell nothing about drift (the AUC's noise would dominate).
MIN_DOMAIN_IMAGES = 50
# Images per side the domain classifier sees, and the PCA components it sees them through:
# enough for an AUC within about +-0.02, in a second or two on two cores.
DOMAIN_SAMPLE = 2000
DOMAIN_COMPONENTS = 50
DOMAIN_FOLDS = 5


@dataclass(frozen=True)
class DataChanges:
    """The images a version adds to (and removes from) the previous version of its problem."""

    previous_version: str
    class_names: tuple[str, ...]
    added: tuple[int, ...]  # per class: images this version holds that the previous one did not
    removed: int  # images of the previous version this one lacks
    previous_shares: tuple[float, ...]  # each class's share of all images, before and now
    current_shares: tuple[float, ...]
    # Chi-squared test of the added images' class counts against the previous version's (None:
    # nothing added); a small p-value means the new images have other class shares.
    chi2_p: float | None
    # Cross-validated ROC AUC of a classifier telling added images from earlier ones (None: fewer
    # than MIN_DOMAIN_IMAGES added), and how many images per side it was measured on.
    domain_auc: float | None
    domain_images: int

    @property
    def rows_added(self) -> int:
        return sum(self.added)

    @property
    def share_change(self) -> np.ndarray:
        return np.array(self.current_shares) - np.array(self.previous_shares)

    def describe(self) -> str:
        """One line: what tonight's data added, and how different it is."""
        if not self.rows_added and not self.removed:
            return f"no image added or removed since dataset {self.previous_version}"
        parts = [f"{self.rows_added:,} image(s) added and {self.removed:,} removed since dataset {self.previous_version}"]
        if self.chi2_p is not None:
            parts.append(f"largest class-share change {np.abs(self.share_change).max() * 100:.2f} pp "
                         f"(chi-squared p = {p_value_text(self.chi2_p)})")
        parts.append("too few added images to tell how distinguishable they are" if self.domain_auc is None else
                     f"new vs earlier images: domain classifier ROC AUC {self.domain_auc:.3f} "
                     f"({self.domain_images:,} each)")
        return "; ".join(parts)

    def hold(self, max_auc: float | None) -> str | None:
        """Why a promotion gate at ``max_auc`` holds (None: it does not, or no gate is set)."""
        if max_auc is None or self.domain_auc is None or self.domain_auc <= max_auc:
            return None
        return (f"the {self.rows_added:,} image(s) added since dataset {self.previous_version} are distinguishable "
                f"from the earlier ones (domain classifier ROC AUC {self.domain_auc:.3f} > {max_auc}, the "
                "promotion.hold_on_drift_auc gate): look at them in the EDA report")

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "DataChanges":
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def data_changes(previous_version: str, previous: list[Digits], current: list[Digits], class_names: list[str],
                 seed: int = 0) -> DataChanges:
    """Compare a version's images (``current``: its splits) with the previous version's, by pixels."""
    old_hashes = np.concatenate([row_hashes(d.images) for d in previous])
    new_hashes = np.concatenate([row_hashes(d.images) for d in current])
    added = np.flatnonzero(~np.isin(new_hashes, old_hashes))
    labels = np.concatenate([d.labels for d in current]).astype(np.int64)
    added_counts = np.bincount(labels[added], minlength=NUM_CLASSES)[:NUM_CLASSES]
    before, now = _class_counts(previous), _class_counts(current)
    auc, measured = None, 0
    if len(added) >= MIN_DOMAIN_IMAGES:  # a seeded sample of each side, never a copy of all images
        rng = np.random.default_rng(seed)
        each = min(DOMAIN_SAMPLE, len(old_hashes), len(added))
        old = rows_of(previous, np.sort(rng.choice(len(old_hashes), each, replace=False)))
        new = rows_of(current, np.sort(rng.choice(added, each, replace=False)))
        auc, measured = domain_auc(old.images, new.images, seed), each
    return DataChanges(
        previous_version=previous_version, class_names=tuple(class_names), added=tuple(int(c) for c in added_counts),
        removed=int((~np.isin(old_hashes, new_hashes)).sum()),
        previous_shares=tuple(float(s) for s in before / max(before.sum(), 1)),
        current_shares=tuple(float(s) for s in now / max(now.sum(), 1)),
        chi2_p=_chi2_p(before, added_counts), domain_auc=auc, domain_images=measured,
    )


def domain_auc(old: np.ndarray, new: np.ndarray, seed: int = 0) -> float:
    """How well a logistic regression on PCA-reduced pixels tells ``new`` images from ``old`` ones
    (equally many of each): the ROC AUC of its cross-validated scores."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    x = np.concatenate([old, new]).reshape(len(old) + len(new), -1).astype(np.float32) / 255.0
    y = np.repeat([0, 1], [len(old), len(new)])
    model = make_pipeline(PCA(n_components=min(DOMAIN_COMPONENTS, len(x) - 1), random_state=seed),
                          LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=DOMAIN_FOLDS, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def _chi2_p(before: np.ndarray, added: np.ndarray) -> float | None:
    """p-value of a chi-squared test that the added images' class counts follow the previous shares."""
    if added.sum() == 0 or before.sum() == 0:
        return None
    from scipy.stats import chi2_contingency

    present = (before + added) > 0  # a class absent from both has no expected count to test
    return float(chi2_contingency(np.stack([before[present], added[present]])).pvalue)


def _class_counts(splits: list[Digits]) -> np.ndarray:
    return sum((np.bincount(d.labels.astype(np.int64), minlength=NUM_CLASSES)[:NUM_CLASSES] for d in splits),
               np.zeros(NUM_CLASSES, np.int64))
