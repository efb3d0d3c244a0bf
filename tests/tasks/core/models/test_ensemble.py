import numpy as np
import pytest
from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models import catalog as models
from mnist_pipeline.tasks.core.models.ensemble import Ensemble, EnsembleConfig
from mnist_pipeline.tasks.core.models.svm import deskew

from .conftest import FAST


@pytest.fixture(scope="module")
def members(mnist_5k):
    trained = {}
    for family in ("logreg", "svm", "mlp"):
        model = models.build(family, FAST[family])
        model.fit(mnist_5k["train"], mnist_5k["validation"], seed=0)
        trained[f"{family}-0"] = model
    return trained


def accuracy(model, split) -> float:
    return float((model.predict(split.images) == split.labels).mean())


def test_the_weighted_vote_is_fitted_on_validation_and_scored_honestly(members, mnist_5k):
    ensemble = Ensemble(EnsembleConfig(), members)
    report = ensemble.fit(None, mnist_5k["validation"], seed=0).report
    weights = report.history[0]["weights"]
    assert set(weights) == set(members) and sum(weights.values()) == pytest.approx(1, abs=1e-3)
    assert all(w >= 0 for w in weights.values())
    # cross-fitted: each validation fold scored with weights fitted on the other
    fitted_on_all = accuracy(ensemble, mnist_5k["validation"])
    assert report.validation_accuracy <= fitted_on_all + 0.01
    best_member = max(accuracy(m, mnist_5k["test"]) for m in members.values())
    assert accuracy(ensemble, mnist_5k["test"]) >= best_member - 0.01
    proba = ensemble.predict_proba(mnist_5k["test"].images[:50])
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)


def test_an_ensemble_is_stored_with_its_members_and_loads_without_pickle(members, mnist_5k):
    ensemble = Ensemble(EnsembleConfig(), members)
    ensemble.fit(None, mnist_5k["validation"], seed=0)
    files = ensemble.to_files()
    assert {name.split("/")[1] for name in files if name.startswith("members/")} == set(members)
    assert not any(name.endswith((".pkl", ".pt", ".pickle")) for name in files)
    loaded = models.load(files)
    images = mnist_5k["test"].images
    np.testing.assert_allclose(loaded.predict_proba(images), ensemble.predict_proba(images), atol=1e-6)
    missing = {name: data for name, data in files.items() if not name.startswith("members/mlp-0/")}
    with pytest.raises(ModelFileError, match="member mlp-0 has no files"):
        models.load(missing)


def test_an_ensemble_needs_two_members(members, mnist_5k):
    with pytest.raises(ValueError, match="two members"):
        Ensemble(EnsembleConfig(), {"mlp-0": members["mlp-0"]}).fit(None, mnist_5k["validation"], seed=0)


def test_deskewing_straightens_a_slanted_stroke():
    image = np.zeros((28, 28), np.uint8)
    for row in range(4, 24):  # a stroke leaning right as it goes down
        image[row, 8 + (row - 4) // 2 : 11 + (row - 4) // 2] = 255
    straight = deskew(image[None])[0]
    columns = [np.flatnonzero(straight[row] > 100).mean() for row in range(6, 22) if straight[row].max() > 100]
    assert np.ptp(columns) <= 2.0 < np.ptp([np.flatnonzero(image[r]).mean() for r in range(6, 22)])
    assert deskew(np.zeros((1, 28, 28), np.uint8)).max() == 0  # a blank image stays blank


def test_the_svm_chooses_deskewing_on_validation_for_digits(mnist_5k):
    svm = models.build("svm", FAST["svm"].model_copy(update={"deskew": None}))
    report = svm.fit(mnist_5k["train"], mnist_5k["validation"], seed=0).report
    trial = report.history[0]
    assert trial["step"] == "deskew trial" and svm.deskewed == (trial["deskewed"] > trial["without"])
    loaded = models.load(svm.to_files())
    assert loaded.deskewed == svm.deskewed
    np.testing.assert_array_equal(loaded.predict(mnist_5k["test"].images), svm.predict(mnist_5k["test"].images))


def one_hot_votes(labels: np.ndarray, right: np.ndarray, sure: float) -> np.ndarray:
    """Probabilities that put ``sure`` on the true label where ``right``, else on the next label."""
    chosen = np.where(right, labels, (labels + 1) % 10)
    proba = np.full((len(labels), 10), (1 - sure) / 9, np.float32)
    proba[np.arange(len(labels)), chosen] = sure
    return proba


def validation_of(labels: np.ndarray):
    from mnist_pipeline.tasks.core.digits import Digits

    return Digits(np.zeros((len(labels), 28, 28), np.uint8), labels.astype(np.uint8), np.arange(len(labels)))


def test_an_ensemble_that_does_not_beat_its_best_member_is_left_out_with_the_reason():
    labels = np.arange(2000) % 10
    rng = np.random.default_rng(0)
    strong = one_hot_votes(labels, rng.random(2000) < 0.97, 0.9)
    weak = one_hot_votes(labels, rng.random(2000) < 0.60, 0.9)
    ensemble = Ensemble(EnsembleConfig(), validation_probabilities={"cnn-1": strong, "logreg-1": weak})
    ensemble.fit(None, validation_of(labels), seed=0)
    kept, reason = ensemble.verdict()
    assert not kept
    assert "does not beat its best member cnn-1" in reason and f"({(strong.argmax(1) == labels).mean():.4f})" in reason


def test_an_ensemble_of_complementary_members_earns_its_place():
    labels = np.arange(2000) % 10
    # Each member is right and sure on its own 70%, unsure elsewhere: together they are right almost always.
    first, second = np.arange(2000) < 1400, np.arange(2000) >= 600
    a = np.where(first[:, None], one_hot_votes(labels, first, 0.9), one_hot_votes(labels, first, 0.3))
    b = np.where(second[:, None], one_hot_votes(labels, second, 0.9), one_hot_votes(labels, second, 0.3))
    ensemble = Ensemble(EnsembleConfig(), validation_probabilities={"mlp-1": a, "svm-1": b})
    report = ensemble.fit(None, validation_of(labels), seed=0).report
    kept, reason = ensemble.verdict()
    assert kept and report.validation_accuracy > 0.99 and "beats its best member" in reason
    assert report.calibration["validation_ece_after"] <= report.calibration["validation_ece_before"] + 1e-4


def test_the_ensemble_scores_stored_member_probabilities_as_it_scores_images(members, mnist_5k):
    ensemble = Ensemble(EnsembleConfig(), members)
    ensemble.fit(None, mnist_5k["validation"], seed=0)
    images = mnist_5k["test"].images[:300]
    stored = {i: m.predict_proba(images) for i, m in members.items()}
    np.testing.assert_allclose(ensemble.probabilities(ensemble.combine(stored)), ensemble.predict_proba(images), atol=1e-6)
    with pytest.raises(ValueError, match="were not given"):
        ensemble.combine({i: p for i, p in stored.items() if i != "mlp-0"} if ensemble.weights_["mlp-0"] > 0 else {})
