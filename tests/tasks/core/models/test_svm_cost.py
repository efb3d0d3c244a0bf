import pytest

from mnist_pipeline.tasks.core.models import svm_cost
from mnist_pipeline.tasks.core.models.svm_cost import FitCost, UnaffordableFit, plan_rows


def test_the_cost_model_reproduces_its_measurements_and_grows_with_everything_it_counts():
    for rows, seconds in svm_cost.FIT_SECONDS:
        fit_only = FitCost(rows, 0, svm_cost.COMPONENTS).seconds() - rows * svm_cost.PCA_SECONDS_PER_ROW
        assert fit_only == pytest.approx(seconds)
    for rows, vectors in svm_cost.SUPPORT_VECTORS:
        assert svm_cost.support_vectors(rows) == pytest.approx(vectors)
    base = FitCost(54_000, 6_000, 200).seconds()
    assert 40 < base < 70  # 35 s of fit, a validation pass against ~16,700 support vectors, the PCA
    assert FitCost(216_000, 6_000, 200).seconds() > 868  # past the last measurement, still growing
    assert FitCost(108_000, 6_000, 200).seconds() > 3 * base  # faster than the rows: why the SVM plans
    for more in (FitCost(54_000, 12_000, 200), FitCost(54_000, 6_000, 400), FitCost(54_000, 6_000, 200, 1.5),
                 FitCost(54_000, 6_000, 200, deskewed=True)):
        assert more.seconds() > base


def test_hardness_compares_a_pilots_support_vectors_with_the_table_and_is_bounded():
    assert svm_cost.hardness(5_000, 2_581) == pytest.approx(1.0)
    assert svm_cost.hardness(5_000, 3_871) == pytest.approx(1.5, rel=1e-3)
    assert svm_cost.hardness(5_000, 5) == 0.5 and svm_cost.hardness(5_000, 5_000_000) == 3.0


def test_a_plan_keeps_every_row_it_can_afford():
    plan = plan_rows(54_000, 6_000, 200, allowance_s=150, limit="time target")
    assert (plan.rows, plan.offered) == (54_000, 54_000)
    assert plan.predicted_seconds == pytest.approx(FitCost(54_000, 6_000, 200).seconds(), abs=0.05)
    assert plan.reason.startswith("all rows: predicted") and "150 s left of its time target" in plan.reason


def test_a_plan_takes_the_most_rows_whose_predicted_cost_fits_the_allowance():
    plan = plan_rows(240_000, 10_000, 200, allowance_s=120)
    usable = svm_cost.SAFETY * 120
    assert 20_000 < plan.rows < 240_000
    assert FitCost(plan.rows, 10_000, 200).seconds() <= usable
    assert FitCost(plan.rows + 240, 10_000, 200).seconds() > usable  # within 0.1% of the most it affords
    assert plan.predicted_seconds <= usable and plan.allowance_seconds == 120
    assert "subset" in plan.reason and "240,000 rows" in plan.reason and "120 s left of its time budget" in plan.reason
    # Harder data (more support vectors in the pilot) affords fewer rows; the same inputs, the same plan.
    assert plan_rows(240_000, 10_000, 200, 120, hardness=2.0).rows < plan.rows
    assert plan_rows(240_000, 10_000, 200, 120) == plan


def test_an_allowance_too_small_for_any_useful_fit_is_a_clear_error():
    with pytest.raises(UnaffordableFit, match=r"even 1,000 training rows are predicted .* past 75% of the 0.05 s "
                                              r"left of its time budget; raise the time budget"):
        plan_rows(60_000, 6_000, 200, allowance_s=0.05)
