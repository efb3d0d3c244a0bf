"""Whether the run's best model replaces the production model: a pure, tested decision.

The challenger (the run's best model by validation accuracy) is promoted when
(a) the run is not a smoke run (a subset, a few dozen steps: a set-up check, never a production model),
(b) its test accuracy reaches the floor,
(c) there is no champion, or the champion solves the same problem (same source and class names;
    a newer version of the same source is fine) and the challenger is more accurate on the same
    test split, with McNemar's exact test finding the difference significant at level ``alpha``,
(d) and no gate holds it (the data drifted further than a configured threshold).
The comparison counts only the test images that neither model trained or was validated on
(:class:`Unseen`): a champion of an earlier dataset version may have trained on images that are
in this version's test split, and would be judged on its homework. When too few images are left
(or nobody can tell which images a model saw), nothing is compared and the champion stays.
A tie, a better score that chance explains, or a champion of another problem keeps the champion.
"""

from dataclasses import dataclass, replace

import numpy as np
from mnist_pipeline.tasks.core.pages import names_text, p_value_text


@dataclass(frozen=True)
class Lineage:
    """The problem a model solves: the source of its dataset and the names of its classes."""

    source: str
    class_names: tuple[str, ...]

    def same_problem(self, other: "Lineage") -> bool:
        return self.source == other.source and tuple(self.class_names) == tuple(other.class_names)

    def __str__(self) -> str:
        return f"{self.source} ({names_text(self.class_names)})"


@dataclass(frozen=True)
class Contender:
    model_id: str
    lineage: Lineage | None  # None: not recorded (its dataset is gone)
    dataset_version: str | None = None  # the test split it was scored on; None: not scored
    sample_ids: np.ndarray | None = None
    correct: np.ndarray | None = None  # per test image, aligned with sample_ids

    @property
    def accuracy(self) -> float | None:
        if self.correct is None:
            return None
        return float(self.correct.mean()) if len(self.correct) else 0.0


@dataclass(frozen=True)
class PromotionRules:
    """The promotion settings of a run (see ``flows/config.py:PromotionSettings``)."""

    floor: float  # the challenger's test accuracy must reach it
    alpha: float  # McNemar's significance level
    min_unseen_images: int = 1  # test images neither model has seen, at least, to compare them at all
    hold_on_drift_auc: float | None = None  # hold while the new images are this distinguishable (None: never)


@dataclass(frozen=True)
class Unseen:
    """The test images that neither model trained or was validated on (by their pixels), out of
    the ``total`` of the test split; or why that cannot be told (``missing``: nothing is compared)."""

    sample_ids: np.ndarray
    total: int
    missing: str | None = None

    @classmethod
    def of(cls, test_ids: np.ndarray, test_hashes: np.ndarray, seen_hashes: list[np.ndarray]) -> "Unseen":
        """From a hash of each test image's pixels and those of every image either model has seen."""
        seen = np.concatenate(seen_hashes) if seen_hashes else np.empty(0, np.uint64)
        return cls(np.sort(test_ids[~np.isin(test_hashes, seen)]), len(test_ids))

    @classmethod
    def unknown(cls, total: int, why: str) -> "Unseen":
        return cls(np.empty(0, np.int64), total, why)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger: str
    champion: str | None
    challenger_accuracy: float
    champion_accuracy: float | None
    # Test images only the challenger got right (b) and only the champion got right (c).
    challenger_only_correct: int | None
    champion_only_correct: int | None
    p_value: float | None
    alpha: float
    floor: float
    dataset_version: str
    smoke: bool = False
    challenger_lineage: str | None = None
    champion_lineage: str | None = None
    # The test images the comparison counted (seen by neither model) and those it left out; and
    # both models' accuracy on the counted ones. None: no comparison was made.
    compared_images: int | None = None
    excluded_images: int | None = None
    challenger_accuracy_compared: float | None = None
    champion_accuracy_compared: float | None = None

    @property
    def verdict(self) -> str:
        return "promoted to production" if self.promote else "not promoted"


def mcnemar_exact(challenger_only: int, champion_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against a fair coin."""
    from scipy.stats import binomtest

    discordant = challenger_only + champion_only
    if discordant == 0:
        return 1.0
    return float(binomtest(challenger_only, discordant, 0.5).pvalue)


def needs_comparison(challenger: Contender, champion_id: str | None, champion_lineage: Lineage | None,
                     smoke: bool) -> bool:
    """Whether the champion must be scored on the challenger's test split before deciding:
    only a different model of the same problem, in a run that may promote at all."""
    return (not smoke and champion_id is not None and champion_id != challenger.model_id
            and champion_lineage is not None and challenger.lineage is not None
            and champion_lineage.same_problem(challenger.lineage))


def decide(challenger: Contender, champion: Contender | None, rules: PromotionRules, *, smoke: bool = False,
           unseen: Unseen | None = None, hold: str | None = None) -> Decision:
    """The decision (see the module docstring). ``unseen``: the test images neither model has seen
    (None: all of them); fewer than ``rules.min_unseen_images`` of them and nothing is compared.
    ``hold``: why a gate holds any promotion (None: none does)."""
    decision = _decide(challenger, champion, rules, smoke, unseen)
    if decision.promote and hold:
        return replace(decision, promote=False, reason=f"held: {hold}; otherwise the challenger would have been "
                       f"promoted ({decision.reason}); {_by_hand(challenger)}")
    return decision


def _by_hand(challenger: Contender) -> str:
    return f"`mnist models promote {challenger.model_id}` promotes it by hand"


def _decide(challenger: Contender, champion: Contender | None, rules: PromotionRules, smoke: bool,
            unseen: Unseen | None) -> Decision:
    assert challenger.accuracy is not None and challenger.dataset_version is not None
    floor, alpha, min_images = rules.floor, rules.alpha, rules.min_unseen_images
    common = dict(
        challenger=challenger.model_id, champion=champion.model_id if champion else None,
        challenger_accuracy=challenger.accuracy, champion_accuracy=champion.accuracy if champion else None,
        alpha=alpha, floor=floor, dataset_version=challenger.dataset_version, smoke=smoke,
        challenger_lineage=_text(challenger.lineage), champion_lineage=_text(champion.lineage) if champion else None,
    )
    unscored = dict(challenger_only_correct=None, champion_only_correct=None, p_value=None)
    if smoke:
        return Decision(False, "smoke run: a model trained briefly on a subset checks a set-up and "
                        "never replaces production (it is the candidate)", **unscored, **common)
    if challenger.accuracy < floor:
        return Decision(False, f"test accuracy {challenger.accuracy:.4f} is below the floor {floor:.4f}",
                        **unscored, **common)
    if champion is None:
        return Decision(True, "no production model yet", **unscored, **common)
    if champion.model_id == challenger.model_id:
        return Decision(False, "the challenger already is the production model", challenger_only_correct=0,
                        champion_only_correct=0, p_value=1.0, **common)
    if champion.lineage is None or challenger.lineage is None or not champion.lineage.same_problem(challenger.lineage):
        return Decision(False, f"production solves another problem ({_text(champion.lineage) or 'unrecorded source'}; "
                        f"this run: {_text(challenger.lineage)}): models of different sources are never compared, "
                        "so production stays; `mnist models promote ID --force` switches it by hand", **unscored, **common)
    if champion.correct is None or champion.dataset_version != challenger.dataset_version or not np.array_equal(
        champion.sample_ids, challenger.sample_ids
    ):
        raise ValueError(
            f"champion {champion.model_id} was scored on dataset {champion.dataset_version}, the "
            f"challenger on {challenger.dataset_version}: evaluate both on the same test split first"
        )
    counted = np.ones(len(challenger.sample_ids), bool) if unseen is None else \
        np.isin(challenger.sample_ids, unseen.sample_ids)
    by_hand = f"production stays; {_by_hand(challenger)}"
    if unseen is not None and unseen.missing:
        return Decision(False, f"cannot tell which test images the models have seen ({unseen.missing}), so they "
                        f"are not compared: {by_hand}", **unscored, **common)
    excluded = dict(compared_images=int(counted.sum()), excluded_images=int((~counted).sum()))
    if counted.sum() < min_images:
        return Decision(False, f"only {counted.sum():,} of the {len(counted):,} test images were seen by neither "
                        f"model in training or validation (at least {min_images:,} are needed to compare them): "
                        f"{by_hand}", **unscored, **common, **excluded)
    both = dict(**excluded, challenger_accuracy_compared=float(challenger.correct[counted].mean()),
                champion_accuracy_compared=float(champion.correct[counted].mean()))
    b = int((challenger.correct & ~champion.correct & counted).sum())
    c = int((~challenger.correct & champion.correct & counted).sum())
    p = mcnemar_exact(b, c)
    evidence = dict(challenger_only_correct=b, champion_only_correct=c, p_value=p, **both)
    on = "" if not excluded["excluded_images"] else f" on the {excluded['compared_images']:,} test images neither saw"
    if b <= c:
        verdict = "ties with" if b == c else "is less accurate than"
        return Decision(False, f"challenger {verdict} the champion{on} ({b} vs {c} discordant images)", **evidence, **common)
    if p >= alpha:
        return Decision(False, f"challenger is more accurate{on} but not significantly (McNemar p = {p_value_text(p)} "
                        f">= {alpha})", **evidence, **common)
    return Decision(True, f"challenger is significantly more accurate{on} (McNemar p = {p_value_text(p)} < {alpha})",
                    **evidence, **common)


def manual_promotion_refusal(model_id: str, lineage: Lineage, smoke: bool, production_id: str | None,
                             production_lineage: Lineage | None) -> str | None:
    """Why ``model_id`` may not be made production by hand without --force (None: it may): a smoke
    model never belongs there, and a model of another problem than production's is not a successor."""
    if smoke:
        return (f"{model_id} is a smoke model (a subset, a few dozen steps): it does not belong "
                "in production; pass --force if you really mean it")
    if production_id is None:
        return None
    return _other_problem("promote", "production", production_id, production_lineage, model_id, lineage)


def rollback_refusal(alias: str, current_id: str, current: Lineage, target_id: str, target: Lineage) -> str | None:
    """Why ``alias`` may not roll back from ``current_id`` to ``target_id`` without --force (None: it may)."""
    return _other_problem("roll back", alias, current_id, current, target_id, target)


def _other_problem(verb: str, alias: str, current_id: str, current: Lineage, target_id: str,
                   target: Lineage) -> str | None:
    if current.same_problem(target):
        return None
    return (f"refusing to {verb}: {alias} is {current_id} ({current}), {target_id} solves another problem "
            f"({target}); pass --force to switch {alias} to it anyway")


def _text(lineage: Lineage | None) -> str | None:
    return None if lineage is None else str(lineage)
