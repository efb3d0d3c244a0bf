"""The model card: for models trained with step schedules, and for ensembles."""

from mnist_pipeline.tasks.core.cards import model_card
from mnist_pipeline.tasks.core.records import TrainingRecord

RECORD = TrainingRecord(
    model_id="cnn-0123456789abcdef", family="cnn", config={"steps": 5908}, libraries={"torch": "2.13.0"},
    dataset_version="2ddc809d5b57e33f", rows={"train": 54000, "validation": 6000},
    validation_accuracy=0.9413, train_seconds=171.6, threads=2, seed=0,
    code_version="git:abc", model_code="def", trained_at="2026-11-25T09:26:27Z",
)


def test_a_step_scheduled_model_says_which_step_it_kept_and_why_it_stopped():
    card = model_card(RECORD.model_copy(update={"steps": 5064, "best_step": 4220,
                                                "stopped_early": "time budget of 150 s reached"}))
    assert "0.9413 (kept the weights of step 4,220 of 5,064; time budget of 150 s reached)" in card
    assert "54,000 training images" in card


def test_an_ensemble_card_names_its_members_and_weights():
    members = TrainingRecord.model_validate({**RECORD.as_json(), "members": [
        {"model_id": "cnn-1", "family": "cnn", "weight": 0.8367}, {"model_id": "svm-2", "family": "svm", "weight": 0.1633}]})
    card = model_card(members.model_copy(update={"family": "ensemble", "steps": 1, "best_step": 1}))
    assert "a weighted vote of 2 models" in card and "`cnn-1` 0.837, `svm-2` 0.163" in card


def test_the_decision_page_shows_the_evidence_and_says_when_there_is_none():
    from mnist_pipeline.tasks.core.cards import decision_markdown
    from mnist_pipeline.tasks.core.promotion import Decision

    decision = Decision(True, "challenger is significantly more accurate", "cnn-2", "mlp-1", 0.9912, 0.9801,
                        40, 12, 1.2e-5, 0.05, 0.8, "d1", challenger_lineage="mnist (0, ..., 9)",
                        champion_lineage="mnist (0, ..., 9)")
    page = decision_markdown(decision)
    assert page.startswith("# Promotion: cnn-2 promoted to production\n")
    assert "| test accuracy on d1 | 0.9912 | 0.9801 |" in page and "| images only this model got right | 40 | 12 |" in page
    first = decision_markdown(Decision(True, "no production model yet", "cnn-2", None, 0.99, None, None, None, None,
                                       0.05, 0.8, "d1", smoke=False))
    assert "| model | cnn-2 | (none) |" in first and "| 0.9900 | - |" in first and "McNemar exact p-value: -" in first
