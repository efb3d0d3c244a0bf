import multiprocessing

import pytest

from storage.registry import Registry, RegistryError
from storage.root import StorageRoot


def record(model_id: str, family: str = "mlp", dataset: str = "d1") -> dict:
    return {"model_id": model_id, "family": family, "dataset_version": dataset, "seed": 0,
            "config": {"epochs": 1}, "code_version": "git:abc", "libraries": {"torch": "2"},
            "train_seconds": 1.5, "validation_accuracy": 0.9}


@pytest.fixture
def registry(home):
    registry = Registry.open(StorageRoot(home))
    for name in ("mlp-a1", "cnn-b2", "svm-c3"):
        registry.register(record(name, name.split("-")[0]), f"/models/{name}", f"# {name}")
    yield registry
    registry.close()


def test_versions_are_immutable_and_carry_their_lineage(registry):
    assert not registry.register({**record("mlp-a1"), "validation_accuracy": 0.1}, "/elsewhere", "# other")
    model = registry.get("mlp-a1")
    assert model["validation_accuracy"] == 0.9 and model["artifact_url"] == "/models/mlp-a1"
    assert model["config"] == {"epochs": 1} and model["code_version"] == "git:abc"
    assert model["card"] == "# mlp-a1" and model["aliases"] == []
    registry.add_evaluation("mlp-a1", "d1", {"accuracy": 0.91, "macro_f1": 0.9, "most_confident_errors": []})
    listed = {m["model_id"]: m for m in registry.list_versions()}
    assert listed["mlp-a1"]["metrics"]["accuracy"] == 0.91
    assert "most_confident_errors" not in listed["mlp-a1"]["metrics"]


def test_references_resolve_by_prefix_and_alias(registry):
    assert registry.resolve("cnn") == "cnn-b2"
    with pytest.raises(RegistryError, match="no model has the alias 'production'"):
        registry.resolve("production")
    with pytest.raises(RegistryError, match="matches no registered model"):
        registry.resolve("xyz")
    registry.set_alias("production", "cnn-b2", 0, reason="first")
    assert registry.resolve("production") == "cnn-b2"


def test_compare_and_set_refuses_a_stale_revision(registry):
    assert registry.set_alias("production", "mlp-a1", 0, reason="first")
    assert not registry.set_alias("production", "cnn-b2", 0, reason="stale")  # someone else moved it
    assert registry.alias("production") == ("mlp-a1", 1)
    assert registry.set_alias("production", "cnn-b2", 1, reason="better", flow_run="run-2")
    history = registry.history("production")
    assert [(h["from_model"], h["to_model"], h["revision"]) for h in history] == [(None, "mlp-a1", 1), ("mlp-a1", "cnn-b2", 2)]
    assert history[1]["flow_run"] == "run-2" and history[1]["reason"] == "better" and history[1]["changed_at"]
    with pytest.raises(RegistryError, match="not registered"):
        registry.set_alias("production", "nope-0", 2, reason="x")


def test_rollback_steps_back_through_promotions(registry):
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback(reason="x")
    registry.set_alias("production", "mlp-a1", 0, reason="1")
    registry.set_alias("production", "cnn-b2", 1, reason="2")
    registry.set_alias("production", "svm-c3", 2, reason="3")
    assert registry.rollback(reason="bad svm") == ("svm-c3", "cnn-b2")
    assert registry.rollback(reason="bad cnn") == ("cnn-b2", "mlp-a1")
    assert registry.alias("production")[0] == "mlp-a1"
    with pytest.raises(RegistryError, match="only one version"):
        registry.rollback(reason="x")
    assert [h["action"] for h in registry.history("production")][-2:] == ["rollback", "rollback"]


def _promote_from_observed_revision(home, model_id, start, results):
    registry = Registry.open(StorageRoot(home))
    _, revision = registry.alias("production")
    start.wait()  # everyone read the same revision; now all try at once
    results.put((model_id, registry.set_alias("production", model_id, revision, reason=f"by {model_id}")))
    registry.close()


def test_concurrent_promotions_have_exactly_one_winner_and_no_lost_update(home, registry):
    contenders = [f"mlp-p{i}" for i in range(6)]
    for name in contenders:
        registry.register(record(name), f"/models/{name}", "#")
    context = multiprocessing.get_context("spawn")
    for round_number in range(3):
        start, results = context.Barrier(len(contenders)), context.Queue()
        processes = [context.Process(target=_promote_from_observed_revision, args=(home, name, start, results))
                     for name in contenders]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        winners = [name for name, won in outcomes if won]
        assert len(winners) == 1, outcomes
        assert registry.alias("production") == (winners[0], round_number + 1)
    history = registry.history("production")
    assert [h["revision"] for h in history] == [1, 2, 3]
    # each change starts from the previous one's result: no update was lost
    assert all(later["from_model"] == earlier["to_model"] for earlier, later in zip(history, history[1:]))
