"""Whether the run's best model replaces the production model: a pure, tested decision.

The challenger (the run's best model by validation accuracy) is promoted when
(a) its test accuracy reaches the floor, and
(b) there is no champion, or the challenger is more accurate on the same test split and
    McNemar's exact test says the difference is significant at level ``alpha``.
A tie, or a better score that chance explains, keeps the champion.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest


@dataclass(frozen=True)
class Contender:
    model_id: str
    dataset_version: str  # the test split it was scored on
    sample_ids: np.ndarray
    correct: np.ndarray  # per test image, aligned with sample_ids

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else 0.0


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

    def as_dict(self) -> dict:
        return asdict(self)


def mcnemar_exact(challenger_only: int, champion_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against a fair coin."""
    discordant = challenger_only + champion_only
    if discordant == 0:
        return 1.0
    return float(binomtest(challenger_only, discordant, 0.5).pvalue)


def decide(challenger: Contender, champion: Contender | None, *, floor: float, alpha: float) -> Decision:
    common = dict(
        challenger=challenger.model_id, champion=champion.model_id if champion else None,
        challenger_accuracy=challenger.accuracy, champion_accuracy=champion.accuracy if champion else None,
        alpha=alpha, floor=floor, dataset_version=challenger.dataset_version,
    )
    if challenger.accuracy < floor:
        return Decision(False, f"test accuracy {challenger.accuracy:.4f} is below the floor {floor:.4f}",
                        challenger_only_correct=None, champion_only_correct=None, p_value=None, **common)
    if champion is None:
        return Decision(True, "no production model yet", challenger_only_correct=None,
                        champion_only_correct=None, p_value=None, **common)
    if champion.model_id == challenger.model_id:
        return Decision(False, "the challenger already is the production model", challenger_only_correct=0,
                        champion_only_correct=0, p_value=1.0, **common)
    if champion.dataset_version != challenger.dataset_version or not np.array_equal(
        champion.sample_ids, challenger.sample_ids
    ):
        raise ValueError(
            f"champion {champion.model_id} was scored on dataset {champion.dataset_version}, the "
            f"challenger on {challenger.dataset_version}: evaluate both on the same test split first"
        )
    b = int((challenger.correct & ~champion.correct).sum())
    c = int((~challenger.correct & champion.correct).sum())
    p = mcnemar_exact(b, c)
    evidence = dict(challenger_only_correct=b, champion_only_correct=c, p_value=p)
    if b <= c:
        verdict = "ties with" if b == c else "is less accurate than"
        return Decision(False, f"challenger {verdict} the champion ({b} vs {c} discordant images)", **evidence, **common)
    if p >= alpha:
        return Decision(False, f"challenger is more accurate but not significantly (McNemar p = {p:.4g} >= {alpha})",
                        **evidence, **common)
    return Decision(True, f"challenger is significantly more accurate (McNemar p = {p:.4g} < {alpha})",
                    **evidence, **common)
