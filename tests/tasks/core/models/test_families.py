import numpy as np
import pytest
from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models import catalog as models
from mnist_pipeline.tasks.core.models import svm_cost
from mnist_pipeline.tasks.core.models.base import META_FILE, Budget, TimeBudgetExceeded
from mnist_pipeline.tasks.core.models.cnn import CnnConfig
from mnist_pipeline.tasks.core.models.svm_cost import UnaffordableFit

from .conftest import FAST

FAMILIES = models.family_names()
TORCH_FAMILIES = tuple(family for family in FAMILIES if models.declaration(family).on_device)


@pytest.fixture(scope="module")
def trained(mnist_5k):
    """Each family trained once on 3,000 real digits, with its fit report and progress calls."""
    result = {}
    for family in FAMILIES:
        calls = []
        model = models.build(family, FAST[family])
        fitted = model.fit(mnist_5k["train"], mnist_5k["validation"], seed=0,
                           progress=lambda *call, calls=calls: calls.append(call))
        assert fitted is model  # fit returns the fitted model; what it did is in .report
        report = model.report
        result[family] = (model, report, calls)
    return result


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_learns_real_digits(family, trained, mnist_5k):
    model, report, calls = trained[family]
    test = mnist_5k["test"]
    test_accuracy = float((model.predict(test.images) == test.labels).mean())
    assert test_accuracy > 0.80, f"{family}: {test_accuracy:.3f} (chance is 0.10)"
    assert 0.80 < report.validation_accuracy <= 1.0
    assert report.best_step <= report.steps and report.stopped_early is None
    if family != "svm":
        config = FAST[family]
        assert report.steps == config.steps and len(report.history) == config.validations
        assert max(h["validation_accuracy"] for h in report.history) == pytest.approx(report.validation_accuracy, abs=1e-5)
    # progress: one call per validation, ending at total
    assert calls and calls[-1][0] == calls[-1][1]


@pytest.mark.parametrize("family", FAMILIES)
def test_probabilities_are_distributions_that_agree_with_predict(family, trained, mnist_5k):
    model = trained[family][0]
    images = mnist_5k["test"].images[:200]
    proba = model.predict_proba(images)
    assert proba.shape == (200, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), model.predict(images))
    # flat (n, 784) input is accepted too
    np.testing.assert_array_equal(model.predict(images.reshape(200, 784)), model.predict(images))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_calibrated_by_a_temperature_fitted_on_validation(family, trained, mnist_5k):
    from mnist_pipeline.tasks.core.calibration import expected_calibration_error

    model, report, _ = trained[family]
    calibration = report.calibration
    assert calibration["temperature"] == pytest.approx(model.temperature, rel=1e-4)
    assert calibration["validation_ece_after"] <= calibration["validation_ece_before"] + 1e-4
    test = mnist_5k["test"]
    after = expected_calibration_error(model.predict_proba(test.images), test.labels)
    before = expected_calibration_error(model.predict_proba(test.images, calibrated=False), test.labels)
    np.testing.assert_array_equal(model.predict_proba(test.images).argmax(1),
                                  model.predict_proba(test.images, calibrated=False).argmax(1))
    assert after < 0.05, f"{family}: test ECE {after:.3f} after calibration ({before:.3f} before)"
    if family in ("mlp", "cnn"):  # trained with label smoothing: under-confident until calibrated
        assert model.temperature < 1 and after < before / 2


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_give_identical_predictions(family, trained, mnist_5k):
    model = trained[family][0]
    files = model.to_files()
    assert not any(name.endswith((".pkl", ".pt", ".pickle")) for name in files)
    loaded = models.load(files)
    assert type(loaded) is type(model) and loaded.config == model.config
    images = mnist_5k["test"].images
    np.testing.assert_array_equal(loaded.predict(images), model.predict(images))
    np.testing.assert_allclose(loaded.predict_proba(images), model.predict_proba(images), atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_truncated_weights_are_a_clear_error(family, trained):
    files = trained[family][0].to_files()
    name = next(n for n in files if n != META_FILE)
    files[name] = files[name][: len(files[name]) // 2]
    with pytest.raises(ModelFileError, match=family):
        models.load(files)


def test_a_skops_file_with_foreign_types_is_refused(trained):
    import skops.io

    files = trained["svm"][0].to_files()
    # A skops file that would rebuild something other than scikit-learn / numpy objects.
    files["model.skops"] = skops.io.dumps({"pca": __import__("collections").OrderedDict(), "svc": None})
    with pytest.raises(ModelFileError):
        models.load(files)


def test_missing_metadata_is_a_clear_error(trained):
    files = trained["mlp"][0].to_files()
    del files[META_FILE]
    with pytest.raises(ModelFileError, match="model.json"):
        models.load(files)


@pytest.mark.parametrize("family", ["logreg", "mlp", "cnn", "svm"])
def test_same_seed_same_model_different_seed_different_model(family, mnist_5k):
    small = {k: d.take(slice(0, 600)) for k, d in mnist_5k.items()}

    def fit(seed):
        model = models.build(family, FAST[family])
        model.fit(small["train"], small["validation"], seed=seed)
        return model.predict_proba(small["test"].images)

    first, again, other = fit(1), fit(1), fit(2)
    np.testing.assert_array_equal(first, again)
    if family != "svm":  # libsvm's solution does not depend on the seed
        assert not np.array_equal(first, other)


def test_the_time_budget_stops_training_and_keeps_the_best_weights(mnist_5k):
    model = models.build("cnn", CnnConfig(steps=5000, validations=10))
    report = model.fit(mnist_5k["train"], mnist_5k["validation"], seed=0, budget=Budget("cnn", 1.0)).report
    assert report.stopped_early.startswith("time budget of 1 s reached after ")
    assert report.steps < 5000 and report.history[-1]["step"] == report.steps
    assert model.predict(mnist_5k["test"].images[:10]).shape == (10,)  # a usable model


def test_an_svm_that_cannot_start_within_its_budget_fails(mnist_5k):
    # Its budget spent before the fit (here: by a clock started long ago): libsvm's fit never starts.
    model = models.build("svm", FAST["svm"])
    with pytest.raises(TimeBudgetExceeded, match="time budget of 100 s exceeded .before the SVM's first fit"):
        model.fit(mnist_5k["train"], mnist_5k["validation"], seed=0, budget=Budget("svm", 100, started=0.0))
    # A budget no fit could keep: refused by the plan, before any work.
    with pytest.raises(UnaffordableFit, match="even 1,000 training rows are predicted"):
        model.fit(mnist_5k["train"], mnist_5k["validation"], seed=0, budget=Budget("svm", 0.001))


def test_an_svm_given_more_rows_than_its_budget_affords_trains_on_the_subset_it_predicted(fashion_10k, monkeypatch):
    from mnist_pipeline.tasks.core.dataset import stratified_sample
    from mnist_pipeline.tasks.core.models.svm import SvmConfig
    from mnist_pipeline.tasks.core.training import fit_family

    monkeypatch.setattr(svm_cost, "SLOWDOWN_TOLERANCE", float("inf"))  # however busy this machine is
    train, validation = fashion_10k["train"], fashion_10k["validation"].take(slice(0, 1000))
    config = SvmConfig(deskew=False)  # 200 components, no deskewing: a pilot fit on 5,000 rows, then the plan
    model, report = fit_family("svm", config, train, validation, seed=0, budget_s=2.5)
    plan = report.row_plan
    pilot = svm_cost.FitCost(svm_cost.PILOT_ROWS, 0, 200, plan.hardness).seconds()
    expected = svm_cost.plan_rows(8000, 1000, 200, 2.5 - pilot, hardness=plan.hardness)
    assert 1000 < expected.rows < 8000 and plan.offered == 8000 and 0.5 <= plan.hardness <= 3
    assert plan.predicted_seconds == expected.predicted_seconds <= svm_cost.SAFETY * (2.5 - pilot)
    assert plan.reason == expected.reason and "2.5 s" not in plan.reason  # what was left after the pilot
    subset = stratified_sample(train, expected.rows, 0)  # the seeded, stratified rows it predicted
    assert report.train_rows == plan.rows == len(subset) == model.svc.shape_fit_[0]
    planned = next(step for step in report.history if step["step"] == "plan")
    assert planned == {"step": "plan", "rows": plan.rows, "offered": 8000, "predicted_seconds": plan.predicted_seconds,
                       "hardness": plan.hardness, "seconds": planned["seconds"]}
    # Same data, seed and budget: the same rows (the plan reads no clock).
    assert fit_family("svm", config, train, validation, seed=0, budget_s=2.5)[1].row_plan == plan
    # Without a budget, its time target (150 s) affords every row.
    assert fit_family("svm", config, train, validation, seed=0)[1].train_rows == 8000


def test_an_svm_on_a_machine_slower_than_its_cost_model_plans_fewer_rows(fashion_10k, monkeypatch):
    from mnist_pipeline.tasks.core.training import fit_family

    train, validation = fashion_10k["train"], fashion_10k["validation"].take(slice(0, 1000))
    monkeypatch.setattr(svm_cost, "SLOWDOWN_TOLERANCE", float("inf"))
    on_time = fit_family("svm", FAST["svm"], train, validation, seed=0, budget_s=3.0)[1].row_plan
    monkeypatch.setattr(svm_cost, "slowdown", lambda actual, predicted: 3.0)  # as if the pilot took 3x its prediction
    slow = fit_family("svm", FAST["svm"], train, validation, seed=0, budget_s=3.0)[1].row_plan
    assert on_time.slowdown == 1.0 and slow.slowdown == 3.0
    assert slow.rows < on_time.rows and "pilot ran 3.00x slower than the cost model" in slow.reason


def test_images_that_are_not_28x28_are_refused(trained):
    with pytest.raises(ValueError, match="not 28x28"):
        trained["logreg"][0].predict(np.zeros((3, 32, 32), np.uint8))



@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_weights_are_stored_by_layer_name_and_other_keys_are_refused(family, trained, mnist_5k):
    from safetensors.torch import load as load_safetensors
    from safetensors.torch import save as save_safetensors

    model = trained[family][0]
    files = model.to_files()
    state = load_safetensors(files["weights.safetensors"])
    assert {"standardize.mean", "standardize.std"} <= set(state)
    assert not [key for key in state if key.split(".")[0].isdigit()]
    # Weights keyed any other way (here: by layer position) are refused with a readable error.
    names = list(model.net._modules)
    positional = {f"{names.index(key.split('.')[0])}.{key.split('.', 1)[1]}": t for key, t in state.items()}
    with pytest.raises(ModelFileError, match="standardization"):
        models.load({**files, "weights.safetensors": save_safetensors(positional)})


@pytest.mark.parametrize("family", FAMILIES)
def test_the_class_count_comes_from_the_labels(family, mnist_5k):
    five = {name: split.take(np.flatnonzero(split.labels < 5)) for name, split in mnist_5k.items()}
    model = models.build(family, FAST[family]).fit(five["train"], five["validation"], seed=0)
    assert model.num_classes == 5 and model.predict_proba(five["test"].images[:7]).shape == (7, 5)
    loaded = models.load(model.to_files())
    assert loaded.num_classes == 5 and loaded.predict_proba(five["test"].images[:0]).shape == (0, 5)


@pytest.mark.parametrize("family", ["logreg", "svm"])
def test_every_family_is_subsampled_in_one_place(family, mnist_5k):
    from mnist_pipeline.tasks.core.training import fit_family

    config = FAST[family].model_copy(update={"max_train_rows": 500})
    model, report = fit_family(family, config, mnist_5k["train"], mnist_5k["validation"], seed=0)
    assert report.train_rows == 500 and model.report is report
    if family == "svm":  # the SVC saw no more than those rows
        assert model.svc.n_support_.sum() <= 500
