"""What the MLflow mirror should hold, from registry rows and training records (pure)."""

from mnist_pipeline.tasks.core import mirror
from mnist_pipeline.tasks.core.promotion import Lineage
from mnist_pipeline.tasks.core.records import TrainingRecord
from mnist_pipeline.tasks.core.results import AliasChange, Evaluated, FlowRun, RegisteredModel

DIGITS = tuple(str(d) for d in range(10))


def registered(**changes) -> RegisteredModel:
    fields = dict(
        model_id="cnn-0123456789abcdef", family="cnn", dataset_version="1d14db43a008582e", seed=3,
        config={"steps": 30, "channels": [8, 16], "augment": None}, code_version="git:4f2c1d0+dirty",
        libraries={"torch": "2.13.0"}, train_seconds=2.5, validation_accuracy=0.965, artifact_url="/m",
        registered_at="2026-12-04T10:00:05.000+00:00", flow_run="run-1", source="mnist", class_names=DIGITS,
        smoke=False, card="# Model card", metrics={"validation_accuracy": 0.965, "accuracy": 0.97, "macro_f1": 0.969,
                                                   "expected_calibration_error": 0.01, "model_size_bytes": 2048},
        evaluations={"1d14db43a008582e": Evaluated(0.97, "t1"), "2e25ec54b119693f": Evaluated(0.98, "t2")},
        aliases=())
    return RegisteredModel(**{**fields, **changes})


RECORD = TrainingRecord(
    family="cnn", config={}, seed=0, dataset_version="1d14db43a008582e", validation_accuracy=0.965,
    rows={"train": 54000, "validation": 6000}, threads=2, trained_at="2026-12-04T10:00:00Z",
    history=({"step": 15, "passes": 0.5, "train_loss": 0.7, "validation_accuracy": 0.9, "seconds": 1.0},
             {"step": 30, "passes": 1.0, "train_loss": 0.4, "validation_accuracy": 0.965, "seconds": 2.4,
              "note": "text is not a metric", "flag": True}))


def test_a_known_dataset_names_its_registered_model_and_your_own_data_gets_folder_and_hash():
    assert mirror.registered_model_name(Lineage("fashion-mnist", DIGITS)) == "mnist-fashion-mnist"
    own = mirror.registered_model_name(Lineage("idx:/data/My Scans/", DIGITS))
    assert own.startswith("mnist-my-scans-") and len(own) == len("mnist-my-scans-") + 8
    renamed = mirror.registered_model_name(Lineage("idx:/data/My Scans/", tuple("abcdefghij")))
    elsewhere = mirror.registered_model_name(Lineage("idx:/other/My Scans", DIGITS))
    assert len({own, renamed, elsewhere}) == 3  # other class names or another folder: another problem


def test_a_models_run_holds_config_curve_test_scores_and_what_it_is():
    run = mirror.training_run(registered(), RECORD)
    assert run.name == "cnn-1d14db43"
    assert run.params == {"family": "cnn", "seed": "3", "dataset_version": "1d14db43a008582e",
                          "config.augment": "null", "config.channels": "[8, 16]", "config.steps": "30",
                          "rows.train": "54000", "rows.validation": "6000", "threads": "2"}
    metrics = {(m.key, m.step): m.value for m in run.metrics}
    assert metrics[("validation_accuracy", 15)] == 0.9 and metrics[("validation_accuracy", 30)] == 0.965
    assert metrics[("train_loss", 30)] == 0.4 and ("note", 30) not in metrics and ("flag", 30) not in metrics
    assert metrics[("best_validation_accuracy", 0)] == 0.965 and metrics[("test_accuracy", 0)] == 0.97
    assert metrics[("test_ece", 0)] == 0.01 and metrics[("model_size_bytes", 0)] == 2048
    assert run.tags["mnist.model_id"] == "cnn-0123456789abcdef" and run.tags["mnist.kind"] == "training"
    assert run.tags["mlflow.source.git.commit"] == "4f2c1d0" and run.tags["mlflow.note.content"] == "# Model card"
    assert run.tags["mnist.lineage"].startswith("mnist (0, 1, 2") and run.tags["prefect.flow_run_id"] == "run-1"
    assert run.end_ms - run.start_ms == 2500 and run.end_ms == 1796378400000


def test_stages_named_rather_than_counted_are_numbered_in_order():
    history = [{"step": "deskew trial", "rows": 10000, "seconds": 3.0}, {"step": "svc fit", "support_vectors": 900}]
    assert [(m.key, m.step) for m in mirror.curve(history)] == [("rows", 1), ("seconds", 1), ("support_vectors", 2)]


def test_a_long_param_is_cut_and_says_so():
    run = mirror.training_run(registered(config={"members": ["x" * 40] * 30}), RECORD)
    assert len(run.params["config.members"]) == mirror.MAX_PARAM_CHARS and run.params["config.members"].endswith("(cut)")


def test_a_parent_run_is_named_like_its_flow_run_or_by_its_id():
    named = mirror.pipeline_run(FlowRun("8c1d0a2e-aaaa", "train-all-mnist", "http://ui/runs/flow-run/8c1d0a2e-aaaa"))
    assert named.name == "train-all-mnist" and named.tags == {
        "mnist.kind": "pipeline", "prefect.flow_run_id": "8c1d0a2e-aaaa",
        "prefect.flow_run_url": "http://ui/runs/flow-run/8c1d0a2e-aaaa"}
    assert mirror.pipeline_run(FlowRun("8c1d0a2e-aaaa")).name == "flow-run-8c1d0a2e"


def move(alias, to, action, reason, previous=None, revision=1):
    return AliasChange(alias, revision, previous, to, "2026-12-04T10:00:00", "run-1", reason, action)


def test_aliases_carry_the_reason_of_their_last_move_and_a_promotions_evidence():
    decision = {"challenger": "cnn-b", "champion": "mlp-a", "promote": True, "reason": "better", "p_value": 0.003,
                "challenger_only_correct": 40, "champion_only_correct": 12, "challenger_accuracy": 0.99,
                "champion_accuracy": 0.98, "alpha": 0.05}
    targets = mirror.alias_targets(
        {"production": "cnn-b", "candidate": "cnn-b"},
        {"production": move("production", "cnn-b", "promote", "better", "mlp-a", 2),
         "candidate": move("candidate", "cnn-b", "promote", "best model of the latest run")},
        {"production": decision, "candidate": decision})
    production = next(t for t in targets if t.alias == "production")
    assert production.model_id == "cnn-b"
    assert production.tags["mnist.production.reason"] == "better"
    assert production.tags["mnist.production.previous"] == "mlp-a" and production.tags["mnist.production.revision"] == "2"
    assert production.tags["mnist.production.mcnemar.p_value"] == "0.003"
    assert production.tags["mnist.production.mcnemar.challenger_only_correct"] == "40"
    assert production.tags["mnist.production.champion"] == "mlp-a"
    # moved by hand: the reason, and no evidence (the last decision was about something else)
    manual = mirror.alias_targets({"production": "svm-c"},
                                  {"production": move("production", "svm-c", "manual", "promoted by hand", "cnn-b")},
                                  {"production": decision})
    assert manual[0].tags["mnist.production.action"] == "manual"
    assert not any("mcnemar" in key for key in manual[0].tags)
    assert mirror.alias_targets({"production": None, "candidate": None}, {}, {}) == []


def test_a_rollback_or_a_move_the_alias_no_longer_shows_carries_no_evidence():
    decision = {"challenger": "cnn-b", "promote": True, "p_value": 0.01, "reason": "better"}
    rolled = mirror.alias_targets({"production": "cnn-b"},
                                  {"production": move("production", "cnn-b", "rollback", "bad svm", "svm-c", 3)},
                                  {"production": decision})
    assert rolled[0].tags["mnist.production.action"] == "rollback"
    assert not any("mcnemar" in key for key in rolled[0].tags)
    # the last move recorded went elsewhere (a race): no reason is claimed for this one
    stale = mirror.alias_targets({"production": "cnn-b"}, {"production": move("production", "svm-c", "manual", "x")},
                                 {"production": None})
    assert stale[0].tags == {}
    # the candidate of a run that promoted nothing still shows that run's evidence
    kept = {"challenger": "mlp-d", "promote": False, "p_value": 0.4, "reason": "chance explains it"}
    candidate = mirror.alias_targets({"candidate": "mlp-d"},
                                     {"candidate": move("candidate", "mlp-d", "promote", "best model of the latest run")},
                                     {"candidate": kept})
    assert candidate[0].tags["mnist.candidate.mcnemar.p_value"] == "0.4"
    assert candidate[0].tags["mnist.candidate.promote"] == "False"


def held(version: str, **tags) -> mirror.HeldVersion:
    return mirror.HeldVersion(version, {"mnist.model_id": "x", **tags})


def test_alias_edits_move_an_alias_across_registered_models_and_clear_stale_tags():
    models = {"mnist-mnist": {"cnn-a": held("1", **{"mnist.production.reason": "old"}), "cnn-b": held("2")},
              "mnist-fashion-mnist": {"cnn-f": held("1")}}
    present = {"mnist-mnist": {"production": "1", "candidate": "2"}}
    targets = [mirror.AliasTarget("production", "cnn-f", {"mnist.production.reason": "switching problems"}),
               mirror.AliasTarget("candidate", "cnn-b", {})]
    edits = mirror.alias_edits(models, present, targets)
    assert set(edits) == {
        mirror.Edit("set_alias", "mnist-fashion-mnist", "production", "1"),
        mirror.Edit("delete_alias", "mnist-mnist", "production"),
        mirror.Edit("set_tag", "mnist-fashion-mnist", "mnist.production.reason", "1", "switching problems"),
        mirror.Edit("delete_tag", "mnist-mnist", "mnist.production.reason", "1"),
    }  # the candidate is where it should be: nothing to do
    assert mirror.alias_places(models, targets) == ("candidate: mnist-mnist v2", "production: mnist-fashion-mnist v1")
    # once made, nothing more to do
    done = {"mnist-mnist": {"cnn-a": held("1"), "cnn-b": held("2")},
            "mnist-fashion-mnist": {"cnn-f": held("1", **{"mnist.production.reason": "switching problems"})}}
    assert mirror.alias_edits(done, {"mnist-mnist": {"candidate": "2"}, "mnist-fashion-mnist": {"production": "1"}},
                              targets) == []


def test_an_alias_whose_model_is_not_mirrored_is_left_where_it_is():
    models = {"mnist-mnist": {"cnn-a": held("1", **{"mnist.production.reason": "kept"})}}
    targets = [mirror.AliasTarget("production", "cnn-gone", {"mnist.production.reason": "new"})]
    assert mirror.alias_edits(models, {"mnist-mnist": {"production": "1"}}, targets) == []
    # and an alias of ours that is unset is taken away, with its tags
    assert mirror.alias_edits(models, {"mnist-mnist": {"production": "1"}}, []) == [
        mirror.Edit("delete_alias", "mnist-mnist", "production"),
        mirror.Edit("delete_tag", "mnist-mnist", "mnist.production.reason", "1")]


def test_a_run_gets_the_scores_it_lacks_or_holds_another_value_of():
    scores = mirror.evaluation_metrics(registered())
    assert [m.key for m in scores] == ["test_accuracy", "test_macro_f1", "test_ece", "model_size_bytes",
                                       "test_accuracy.on.2e25ec54b119693f"]
    held_scores = {"test_accuracy": 0.97, "test_macro_f1": 0.9, "test_ece": 0.01, "model_size_bytes": 2048.0}
    assert [(m.key, m.value) for m in mirror.changed(scores, held_scores)] == [
        ("test_macro_f1", 0.969), ("test_accuracy.on.2e25ec54b119693f", 0.98)]
