from mnist_pipeline.tasks.core.models.configs import LogRegConfig, MlpConfig
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.training import Subset, model_id, training_record


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
        model_id("mlp", MlpConfig(), "d1", 0, Subset(2000, 500)),
        model_id("logreg", LogRegConfig(), "d1", 0, Subset()),
    }
    assert base not in variants and len(variants) == 5


def test_training_record_carries_lineage():
    from mnist_pipeline.tasks.core.models.base import FitReport

    report = FitReport(0.9, 300, 200, [{"step": 100}], 1.5)
    lineage = Lineage("fashion-mnist", ("T-shirt/top", "Trouser"))
    record = training_record("mlp", MlpConfig(), "d1", lineage, 7, Subset(), {"train": 10, "validation": 5}, report, 1)
    assert record["dataset_version"] == "d1" and record["seed"] == 7
    assert record["source"] == "fashion-mnist" and record["class_names"] == ["T-shirt/top", "Trouser"]
    assert record["smoke"] is False
    smoke = training_record("mlp", MlpConfig(), "d1", lineage, 7, Subset(2000, 500), {"train": 10, "validation": 5}, report, 1)
    assert smoke["smoke"] is True
    assert record["config"]["hidden"] == [256, 256]
    assert record["code_version"] and record["model_code"]
    assert set(record["libraries"]) >= {"torch", "scikit-learn", "numpy"}
