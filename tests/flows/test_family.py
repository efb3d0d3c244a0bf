"""A model family is one unit: a nearest-centroid classifier declared in this module (one class
for its config, one for the classifier, one declaration) goes through `mnist train-all --models`
like any family: trained, stored, evaluated, registered and promoted."""

import io
import time

import numpy as np
import pytest
from mnist_pipeline.storage import models as model_store
from mnist_pipeline.storage.registry import Registry
from mnist_pipeline.storage.root import StorageRoot
from mnist_pipeline.tasks.core.calibration import calibrate
from mnist_pipeline.tasks.core.models import catalog
from mnist_pipeline.tasks.core.models.base import (
    Classifier,
    FitReport,
    accuracy,
    class_count,
    flat_pixels,
)
from mnist_pipeline.tasks.core.models.configs import FamilyConfig
from mnist_pipeline.tasks.core.models.family import FamilyDeclaration

from tests import cli

pytestmark = pytest.mark.usefixtures("prefect_harness")


class CentroidConfig(FamilyConfig):
    pass  # no setting: the class means are the model


class NearestCentroid(Classifier):
    family = "centroid"

    def fit(self, train, validation, *, seed, progress=None, budget=None, device="cpu"):
        started, pixels = time.perf_counter(), flat_pixels(train.images)
        self.num_classes = class_count(train, validation)
        self.centroids_ = np.stack([pixels[train.labels == c].mean(0) for c in range(self.num_classes)])
        scores = self.log_scores(validation.images)
        self.temperature, calibration = calibrate(scores, validation.labels)
        right = accuracy(validation.labels, scores.argmax(1))
        self.report = FitReport(right, 1, 1, [{"step": 1, "validation_accuracy": right}], time.perf_counter() - started,
                                validation_probabilities=self.probabilities(scores), calibration=calibration)
        return self

    def log_scores(self, images):  # minus the squared distance to each class mean
        x = flat_pixels(images)
        return 2 * x @ self.centroids_.T - (self.centroids_ ** 2).sum(1) - (x ** 2).sum(1, keepdims=True)

    def weights(self):
        buffer = io.BytesIO()
        np.save(buffer, self.centroids_, allow_pickle=False)
        return {"centroids.npy": buffer.getvalue()}

    @classmethod
    def from_weights(cls, config, files, meta):
        model = cls(config)
        model.centroids_ = np.load(io.BytesIO(files["centroids.npy"]), allow_pickle=False)
        model.num_classes = len(model.centroids_)
        return model


CENTROID = FamilyDeclaration(NearestCentroid, CentroidConfig, order=5)


@pytest.fixture
def centroid_family():
    catalog.register(CENTROID)
    catalog.code_key.cache_clear()
    yield CENTROID
    catalog.unregister(CENTROID.name)


def test_a_family_declared_in_one_module_trains_evaluates_registers_and_is_promoted(centroid_family, tmp_path):
    home = str(tmp_path / "home")
    done = cli.mnist("train-all", "--source", "mnist-sample", "--home", home, "--models", "centroid,logreg",
                     "--no-ensemble", "--no-progress", "--min-test-accuracy", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    root = StorageRoot(home)
    records = {record.family: record for record in model_store.list_trained(root)}
    assert set(records) == {"centroid", "logreg"}
    centroid = records["centroid"]
    assert centroid.model_id.startswith("centroid-") and 0.7 < centroid.validation_accuracy < 0.9
    assert centroid.libraries == {"numpy": np.__version__} and centroid.device == "cpu"
    # Its own code is its identity: this module, and the shared training helpers.
    assert centroid.model_code == catalog.code_key("centroid") != records["logreg"].model_code
    registry = Registry.open(root)
    registered = {model.family: model for model in registry.list_versions()}
    assert set(registered) == {"centroid", "logreg"}
    assert 0.7 < registered["centroid"].test_accuracy < 0.9  # evaluated on the test split, loaded from its files
    assert registry.alias("candidate")[0] == max(records.values(), key=lambda r: r.validation_accuracy).model_id
    assert "centroid" in done.stdout  # the leaderboard names it


def test_a_family_is_listed_once_and_its_name_is_the_choice_of_models(centroid_family):
    from mnist_pipeline.flows.config import TrainSettings

    assert catalog.family_names() == ("logreg", "svm", "mlp", "cnn", "centroid")
    assert catalog.training_order() == ("cnn", "svm", "mlp", "logreg", "centroid")
    assert TrainSettings(models=["centroid"]).ordered_models() == ["centroid"]
    assert TrainSettings().families.of("centroid") == CentroidConfig()
    with pytest.raises(ValueError, match="exists already"):
        catalog.register(CENTROID)
    catalog.unregister("centroid")
    with pytest.raises(ValueError, match="unknown model family 'centroid'; choose from logreg, svm, mlp, cnn"):
        TrainSettings(models=["centroid"])
