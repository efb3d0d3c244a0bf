"""What an SVM fit will cost, predicted before it starts, and the rows it can afford.

libsvm's fit is one call that cannot be interrupted, and its time grows faster than its rows
(15x the time for 4x the rows on Fashion-MNIST-sized data). So the SVM decides how many rows it
trains on before the call, from a cost model measured on the reference machine (2 cores, one
thread per fit; 200 PCA components, C = 10, a 1 GB kernel cache), kept here with the code and
re-measured by ``benchmarks/svm_cost.py``.

The plan is a pure function of the row counts, the config and a pilot fit's support-vector count
(itself determined by the seed and the data): never of a clock. So the same data and seed train
on the same rows on any machine, and only the seconds differ on a faster or slower one.
"""

import math
from dataclasses import dataclass

from mnist_pipeline.tasks.core.models.base import RowPlan, TrainingError

# Seconds of the SVC fit alone by training rows, on Fashion-MNIST: measured by
# benchmarks/svm_cost.py on 2026-12-03 up to 54,000 rows; the 216,000-row figure is issue 19's
# measurement of the same fit on a 4x Fashion-MNIST-sized set of near-copies (868 s). Interpolated
# log-log between rows, extrapolated past the last with its slope. Measured with the defaults of
# SvmConfig (C = 10, gamma "scale", a 1 GB cache): a config far from them is not modelled, apart
# from what the pilot's support vectors and slowdown show.
FIT_SECONDS = (
    (1_000, 0.03), (2_000, 0.09), (5_000, 0.51), (10_000, 2.1), (20_000, 6.44),
    (30_000, 12.9), (40_000, 21.2), (54_000, 35.2), (216_000, 868.0),
)
# Support vectors of the same fits: the cost of scoring each image.
SUPPORT_VECTORS = (
    (1_000, 729), (2_000, 1_265), (5_000, 2_581), (10_000, 4_328), (20_000, 7_548),
    (30_000, 10_364), (40_000, 13_055), (54_000, 16_690), (216_000, 45_607),
)
COMPONENTS = 200  # the PCA components these figures were measured with
# PCA (randomized, fit and transform) and the float copy it needs, per training row.
PCA_SECONDS_PER_ROW = 6.5e-5
# One image against one support vector (the kernel, one thread), at COMPONENTS components.
SCORE_SECONDS_PER_KERNEL = 135e-9
# Deskewing one image (scipy's affine_transform, one thread).
DESKEW_SECONDS_PER_IMAGE = 65e-6
# The pilot fit that measures how hard the data is (its support vectors against the table's).
PILOT_ROWS = 5_000
# Plans use this share of their allowance. In benchmarks/scale.py's runs the whole fit took 80-92%
# of its prediction; allowing the model a 15% error and a machine up to SLOWDOWN_TOLERANCE slower
# unnoticed: 0.75 x 1.15 x 1.25 = 1.08, inside the 10% past its budget a family may run.
SAFETY = 0.75
# A pilot (or trial) slower than predicted by more than this means a slower machine (or a busier
# one) than the reference: only then does the plan read the clock, scaling every cost by the
# slowdown so that the budget keeps meaning wall time (within it, SAFETY absorbs the difference).
SLOWDOWN_TOLERANCE = 1.25
# Fewer rows than this are not worth an SVM: the plan fails instead.
MIN_ROWS = 1_000


def _interpolate(table: tuple[tuple[int, float], ...], rows: float) -> float:
    """``table`` at ``rows``, log-log between its points, with the nearest segment's slope past its ends."""
    rows = max(rows, 1.0)
    for (x0, y0), (x1, y1) in zip(table, table[1:]):
        if rows <= x1 or (x1, y1) == table[-1]:
            slope = math.log(y1 / y0) / math.log(x1 / x0)
            return y0 * (rows / x0) ** slope
    raise AssertionError("a cost table has at least two points")


def support_vectors(rows: int, hardness: float = 1.0) -> float:
    """Support vectors expected from ``rows`` training rows (``hardness`` times the table's)."""
    return _interpolate(SUPPORT_VECTORS, rows) * hardness


def hardness(pilot_rows: int, pilot_support_vectors: int) -> float:
    """How much harder than Fashion-MNIST the data is: the pilot's support vectors against the
    table's for as many rows (kept within 0.5 and 3, where the model was checked)."""
    return min(3.0, max(0.5, pilot_support_vectors / support_vectors(pilot_rows)))


@dataclass(frozen=True)
class FitCost:
    """What one fit and its validation pass are predicted to cost."""

    rows: int
    validation_rows: int
    components: int
    hardness: float = 1.0
    deskewed: bool = False

    def seconds(self) -> float:
        kernel = max(self.components, 10) / COMPONENTS  # a kernel evaluation is a distance in PCA space
        fit = _interpolate(FIT_SECONDS, self.rows) * self.hardness * kernel
        scoring = self.validation_rows * support_vectors(self.rows, self.hardness) * SCORE_SECONDS_PER_KERNEL * kernel
        prepare = (self.rows + self.validation_rows) * (
            PCA_SECONDS_PER_ROW + (DESKEW_SECONDS_PER_IMAGE if self.deskewed else 0.0))
        return fit + scoring + prepare


class UnaffordableFit(TrainingError):
    """Not even the smallest useful fit is predicted to fit its allowance."""


def slowdown(actual_s: float, predicted_s: float) -> float:
    """How much slower than the cost model this machine ran a pilot: 1.0 within the tolerance."""
    ratio = actual_s / predicted_s if predicted_s > 0 else 1.0
    return round(ratio, 2) if ratio > SLOWDOWN_TOLERANCE else 1.0


def plan_rows(offered: int, validation_rows: int, components: int, allowance_s: float, *,
              limit: str = "time budget", hardness: float = 1.0, deskewed: bool = False,
              slower: float = 1.0) -> RowPlan:
    """The most rows (up to ``offered``) whose fit and validation pass are predicted to take at most
    ``SAFETY`` of ``allowance_s`` seconds (what is left of the ``limit`` the reason names), on a
    machine ``slower`` times slower than the reference."""

    def cost(rows: int) -> float:
        return FitCost(rows, validation_rows, components, hardness, deskewed).seconds() * slower

    usable = SAFETY * allowance_s
    whole = cost(offered)
    if math.isinf(allowance_s):
        return RowPlan(offered, offered, round(whole, 2), None, round(hardness, 3), slower,
                       f"all rows: predicted {whole:.3g} s, no time budget or target")
    source = f"the {max(allowance_s, 0):.3g} s left of its {limit}"
    if slower > 1:
        source += f" (its pilot ran {slower:.2f}x slower than the cost model: every cost scaled by that)"
    if whole <= usable:
        return RowPlan(offered, offered, round(whole, 2), round(allowance_s, 2), round(hardness, 3), slower,
                       f"all rows: predicted {whole:.3g} s, within {source}")
    smallest = min(MIN_ROWS, offered)
    if cost(smallest) > usable:
        raise UnaffordableFit(
            f"svm: even {smallest:,} training rows are predicted to take {cost(smallest):.3g} s, past "
            f"{SAFETY:.0%} of {source}; raise the time budget (--time-budget) or validate on fewer rows "
            "(max_validation_rows)")
    low, high = smallest, offered  # cost(low) fits, cost(high) does not
    while high - low > max(1, offered // 1000):
        middle = (low + high) // 2
        low, high = (middle, high) if cost(middle) <= usable else (low, middle)
    return RowPlan(low, offered, round(cost(low), 2), round(allowance_s, 2), round(hardness, 3), slower,
                   f"a seeded, stratified subset predicted at {cost(low):.3g} s: all {offered:,} rows were "
                   f"predicted to take {whole:.3g} s, past {SAFETY:.0%} of {source}")
