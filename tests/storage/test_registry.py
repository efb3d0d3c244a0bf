import multiprocessing

import pytest
from mnist_pipeline.storage.registry import Registry, RegistryError
from mnist_pipeline.storage.root import StorageRoot

from tests.conftest import DIGITS, record


def recorded_decisions(registry: Registry) -> list[dict]:
    """The promotion decisions the registry keeps (an audit table nothing in the pipeline reads)."""
    import sqlalchemy as sa
    from mnist_pipeline.storage.registry import decisions

    with registry.engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(decisions).order_by(decisions.c.id)).mappings()]


def test_versions_are_immutable_and_carry_their_lineage(registry):
    assert not registry.register(record("mlp-a1").model_copy(update={"validation_accuracy": 0.1}), "/elsewhere",
                                 "# other", DIGITS)
    model = registry.get("mlp-a1")
    assert model.validation_accuracy == 0.9 and model.artifact_url == "/models/mlp-a1"
    assert model.config == {"epochs": 1} and model.code_version == "git:abc"
    assert model.card == "# mlp-a1" and model.aliases == ()
    assert (model.source, model.class_names, model.smoke) == (DIGITS.source, DIGITS.class_names, False)
    registry.add_evaluation("mlp-a1", "d1", {"accuracy": 0.91, "macro_f1": 0.9, "most_confident_errors": []})
    listed = {m.model_id: m for m in registry.list_versions()}
    assert listed["mlp-a1"].test_accuracy == 0.91
    assert "most_confident_errors" not in listed["mlp-a1"].metrics


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
    assert [(h.from_model, h.to_model, h.revision) for h in history] == [(None, "mlp-a1", 1), ("mlp-a1", "cnn-b2", 2)]
    assert history[1].flow_run == "run-2" and history[1].reason == "better" and history[1].changed_at
    with pytest.raises(RegistryError, match="not registered"):
        registry.set_alias("production", "nope-0", 2, reason="x")


def test_a_promotion_moves_production_and_candidate_and_keeps_the_decision_together(registry):
    promoted = {"challenger": "cnn-b2", "champion": None, "promote": True, "reason": "no production model yet"}
    assert registry.record_promotion(promoted, production_revision=0, flow_run="run-1")
    assert registry.alias("production")[0] == registry.alias("candidate")[0] == "cnn-b2"
    kept = {"challenger": "svm-c3", "champion": "cnn-b2", "promote": False, "reason": "not significantly better"}
    assert registry.record_promotion(kept, production_revision=1)
    assert registry.alias("production")[0] == "cnn-b2" and registry.alias("candidate")[0] == "svm-c3"
    assert [(d["challenger"], d["promoted"]) for d in recorded_decisions(registry)] == [("cnn-b2", True), ("svm-c3", False)]


def test_a_promotion_decided_on_a_stale_production_records_nothing(registry):
    registry.set_alias("production", "mlp-a1", 0, reason="another run got there first")
    stale = {"challenger": "cnn-b2", "champion": None, "promote": True, "reason": "no production model yet"}
    assert not registry.record_promotion(stale, production_revision=0)
    assert registry.alias("production")[0] == "mlp-a1" and registry.alias("candidate") == (None, 0)
    assert recorded_decisions(registry) == []


def _promote_from_observed_revision(home, url, model_id, start, results):
    registry = Registry.open(StorageRoot(home), url)
    _, revision = registry.alias("production")
    start.wait()  # everyone read the same revision; now all try at once
    results.put((model_id, registry.set_alias("production", model_id, revision, reason=f"by {model_id}")))
    registry.close()


def test_concurrent_promotions_have_exactly_one_winner_and_no_lost_update(home, registry_url, registry):
    contenders = [f"mlp-p{i}" for i in range(6)]
    for name in contenders:
        registry.register(record(name), f"/models/{name}", "#", DIGITS)
    context = multiprocessing.get_context("spawn")
    for round_number in range(3):
        # The model already in production would "win" by staying (a move to where the alias
        # points changes nothing, so another writer may still move it after): not a contender.
        racing = [name for name in contenders if name != registry.alias("production")[0]]
        start, results = context.Barrier(len(racing)), context.Queue()
        processes = [context.Process(target=_promote_from_observed_revision, args=(home, registry_url, name, start, results))
                     for name in racing]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        winners = [name for name, won in outcomes if won]
        assert len(winners) == 1, outcomes
        assert registry.alias("production") == (winners[0], round_number + 1)
    history = registry.history("production")
    assert [h.revision for h in history] == [1, 2, 3]
    # each change starts from the previous one's result: no update was lost
    assert all(later.from_model == earlier.to_model for earlier, later in zip(history, history[1:]))


def test_references_are_plain_case_sensitive_text_never_sql_patterns(registry):
    for pattern in ("c%", "%", "_lp-a1", "c_n-b2", "CNN", "Cnn-b2", "MLP-A1"):
        with pytest.raises(RegistryError, match="matches no registered model"):
            registry.resolve(pattern)
    for empty in ("", " cnn", "cnn "):
        with pytest.raises(RegistryError, match="empty or padded"):
            registry.resolve(empty)
    registry.register(record("mlp-a10"), "/models/mlp-a10", "#", DIGITS)
    assert registry.resolve("mlp-a1") == "mlp-a1"  # an exact id wins over being a prefix of another
    assert registry.resolve("mlp-a10") == "mlp-a10"
    with pytest.raises(RegistryError, match="ambiguous"):
        registry.resolve("mlp-a")


def test_moving_an_alias_to_where_it_already_points_records_nothing(registry):
    assert registry.set_alias("candidate", "mlp-a1", 0, reason="first")
    assert registry.set_alias("candidate", "mlp-a1", 1, reason="same again")
    assert registry.alias("candidate") == ("mlp-a1", 1)
    assert len(registry.history("candidate")) == 1
    assert not registry.set_alias("candidate", "mlp-a1", 0, reason="stale")  # a stale revision still loses


def test_a_command_that_only_reads_never_creates_a_registry_or_a_root(tmp_path):
    missing = tmp_path / "typo"
    with pytest.raises(RegistryError, match=f"no model registry in the storage root {missing}"):
        Registry.open(StorageRoot(missing), create=False)
    assert not missing.exists()
