from mnist_pipeline.tasks.core.models.logreg import LogRegConfig
from mnist_pipeline.tasks.core.models.mlp import MlpConfig
from mnist_pipeline.tasks.core.models.svm import SvmConfig
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.records import Calibration, Subset
from mnist_pipeline.tasks.core.training import model_id, training_record


def test_model_id_changes_with_everything_that_changes_the_model():
    base = model_id("mlp", MlpConfig(), "d1", 0, Subset())
    assert model_id("mlp", MlpConfig(), "d1", 0, Subset(), ["b", "a"]) == model_id("mlp", MlpConfig(), "d1", 0, Subset(), ["a", "b"])
    assert model_id("mlp", MlpConfig(), "d1", 0, Subset(), ["a"]) != base
    assert base.startswith("mlp-") and len(base) == 4 + 16
    assert model_id("mlp", MlpConfig(), "d1", 0, Subset()) == base
    variants = {
        model_id("mlp", MlpConfig(steps=3), "d1", 0, Subset()),
        model_id("mlp", MlpConfig(), "d2", 0, Subset()),
        model_id("mlp", MlpConfig(), "d1", 1, Subset()),
        model_id("mlp", MlpConfig(), "d1", 0, Subset(train_rows=2000, validation_rows=500)),
        model_id("logreg", LogRegConfig(), "d1", 0, Subset()),
    }
    assert base not in variants and len(variants) == 5
    # The SVM plans its rows from its time budget: the budget is part of its id, of no other family's.
    svm = {model_id("svm", SvmConfig(), "d1", 0, Subset(), budget_s=budget) for budget in (None, 120, 900)}
    assert len(svm) == 3
    assert model_id("mlp", MlpConfig(), "d1", 0, Subset(), budget_s=120) == base


def test_training_record_carries_lineage():
    from mnist_pipeline.tasks.core.models.base import FitReport

    report = FitReport(0.9, 300, 200, [{"step": 100}], 1.5)
    lineage = Lineage("fashion-mnist", ("T-shirt/top", "Trouser"))
    record = training_record("mlp", MlpConfig(), "d1", lineage, 7, Subset(), {"train": 10, "validation": 5}, report, 1)
    assert record.dataset_version == "d1" and record.seed == 7
    assert record.source == "fashion-mnist" and record.class_names == ("T-shirt/top", "Trouser")
    assert record.smoke is False and record.seen.dataset_version == "d1" and record.seen.splits == ("train", "validation")
    smoke = training_record("mlp", MlpConfig(), "d1", lineage, 7, Subset(train_rows=2000, validation_rows=500),
                            {"train": 10, "validation": 5}, report, 1)
    assert smoke.smoke is True
    # Validating on at most 10,000 rows is every run's rule, not a smoke run's.
    capped = training_record("mlp", MlpConfig(), "d1", lineage, 7, Subset(validation_rows=10_000),
                             {"train": 10, "validation": 5}, report, 1)
    assert capped.smoke is False and capped.subset == Subset(train_rows=None, validation_rows=10_000)
    assert record.row_plan is None
    assert record.config["hidden"] == [256, 256]
    assert record.code_version and record.model_code
    assert set(record.libraries) == {"torch", "safetensors", "numpy"}  # the MLP's own libraries


def test_a_record_of_an_earlier_release_reads_with_what_it_did_not_record():
    from mnist_pipeline.tasks.core.records import TrainingRecord

    earlier = {"model_id": "cnn-1", "family": "cnn", "config": {}, "seed": 0, "dataset_version": "d0",
               "subset": {"train_rows": 2000, "validation_rows": 500}, "validation_accuracy": 0.9,
               "calibration": {"temperature": 0.8, "validation_ece_before": 0.05, "validation_ece_after": 0.01},
               "libraries": {"torch": "2"}, "a_key_of_a_later_release": 1}
    record = TrainingRecord.model_validate(earlier)
    assert record.smoke and record.seen.dataset_version == "d0" and record.device == "cpu"
    assert record.calibration == Calibration(temperature=0.8, validation_ece_before=0.05, validation_ece_after=0.01)
    # and what this release writes keeps every key the earlier release read
    assert {"model_id", "family", "config", "seed", "dataset_version", "smoke", "subset", "rows", "validation_accuracy",
            "train_seconds", "threads", "trained_at", "model_code", "code_version", "libraries"} <= set(record.as_json())


def test_an_svms_row_plan_is_in_its_training_record_and_model_card():
    from mnist_pipeline.tasks.core.cards import model_card
    from mnist_pipeline.tasks.core.models.base import FitReport
    from mnist_pipeline.tasks.core.models.svm import SvmConfig
    from mnist_pipeline.tasks.core.models.svm_cost import plan_rows

    plan = plan_rows(216_000, 10_000, 200, allowance_s=120)
    report = FitReport(0.9, 1, 1, [], 90.0, train_rows=plan.rows, row_plan=plan)
    record = training_record("svm", SvmConfig(), "d1", Lineage("idx", ()), 0, Subset(validation_rows=10_000),
                             {"train": plan.rows, "validation": 10_000}, report, 1)
    assert record.rows["train"] == plan.rows < 216_000
    assert record.as_json()["row_plan"] == {"rows": plan.rows, "offered": 216_000, "predicted_seconds": plan.predicted_seconds,
                                            "allowance_seconds": 120, "hardness": 1.0, "slowdown": 1.0, "reason": plan.reason}
    card = model_card(record.model_copy(update={"model_id": "svm-0", "libraries": {}}))
    assert f"**Rows used**: {plan.rows:,} of 216,000 training images; a seeded, stratified subset" in card
