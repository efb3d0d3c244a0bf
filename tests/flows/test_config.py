import pytest
from mnist_pipeline.flows.config import IngestConfig, IngestSettings, TrainAllConfig
from pydantic import ValidationError


def test_unknown_keys_are_rejected():
    with pytest.raises(ValidationError, match="validation_fractoin"):
        IngestSettings.model_validate({"validation_fractoin": 0.2})
    with pytest.raises(ValidationError, match="extra"):
        TrainAllConfig.model_validate({"ingest": {"seed": 1}, "epochs": 3})


def test_sources_are_checked_and_normalised(tmp_path):
    assert IngestConfig(source=f"idx:{tmp_path}").source == f"idx:{tmp_path}"
    with pytest.raises(ValidationError, match="unknown source 'emnist'"):
        IngestConfig(source="emnist")


def test_fractions_are_bounded():
    with pytest.raises(ValidationError):
        IngestSettings(validation_fraction=0.0)
    with pytest.raises(ValidationError):
        IngestSettings(test_fraction=0.9)


def test_train_all_hands_its_ingest_settings_down():
    config = TrainAllConfig(home="/h", source="mnist-sample", force=True, ingest={"seed": 3})
    ingest = config.ingest_config(config.source, config.store())
    assert (ingest.home, ingest.source, ingest.force, ingest.settings.seed) == ("/h", "mnist-sample", True, 3)


def test_no_source_means_the_prefect_variable_and_a_bad_source_is_refused():
    assert TrainAllConfig().source is None  # resolved when the run starts (see tasks.ingest.resolve_source)
    with pytest.raises(ValidationError, match="unknown source 'emnist'"):
        TrainAllConfig(source="emnist")


def test_a_run_resolves_its_storage_root_and_registry_once_where_it_starts(monkeypatch, tmp_path):
    """What the tasks receive is explicit: a Dask worker with another environment (or none) must
    not reinterpret it (on a cluster every training looked in the worker's default root)."""
    import pickle

    from mnist_pipeline.flows.config import EvaluateConfig, TrainConfig
    from mnist_pipeline.storage.store import Store

    monkeypatch.setenv("MNIST_HOME", "s3://team-bucket/root")
    monkeypatch.setenv("MNIST_REGISTRY_URL", "postgresql+psycopg://db/registry")
    config = TrainAllConfig(source="mnist-sample")
    store = config.store()
    assert store == Store("s3://team-bucket/root", "postgresql+psycopg://db/registry")
    train = config.train_config("v1", store)  # what the train flow, and so every training job, gets
    monkeypatch.delenv("MNIST_HOME")
    monkeypatch.delenv("MNIST_REGISTRY_URL")
    assert train.store() == store  # explicit: the environment no longer matters
    monkeypatch.chdir(tmp_path)
    assert TrainConfig(home="relative/root").store().home == str(tmp_path / "relative" / "root")
    assert EvaluateConfig(home="/h", registry_url="sqlite:////r.db").store().registry_url == "sqlite:////r.db"
    assert EvaluateConfig(home="/h").store().registry_url is None  # SQLite in the root
    assert pickle.loads(pickle.dumps(store)) == store  # what a Dask worker receives


def test_every_run_validates_on_at_most_its_validation_rows():
    from mnist_pipeline.flows.config import TrainSettings
    from mnist_pipeline.tasks.core.training import Subset

    assert TrainSettings().subset() == Subset(validation_rows=10_000)  # all of an MNIST-sized split's 6,000
    assert TrainSettings(max_validation_rows=None).subset() == Subset()
    assert TrainSettings(smoke=True).subset() == Subset(train_rows=2000, validation_rows=500)
    assert TrainSettings(smoke=True, max_validation_rows=300).subset() == Subset(train_rows=2000, validation_rows=300)


def test_the_device_is_one_of_four_and_auto_unless_said():
    from mnist_pipeline.flows.config import TrainSettings

    assert TrainSettings().device == "auto" and TrainSettings(device="mps").device == "mps"
    with pytest.raises(ValidationError, match="device"):
        TrainSettings(device="gpu")
