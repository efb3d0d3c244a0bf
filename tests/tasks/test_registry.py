"""The model card: for models trained with step schedules, ensembles, and records from before them."""

from mnist_pipeline.tasks.registry import model_card

RECORD = {
    "model_id": "cnn-0123456789abcdef", "family": "cnn", "config": {"steps": 5908}, "libraries": {"torch": "2.13.0"},
    "dataset_version": "2ddc809d5b57e33f", "rows": {"train": 54000, "validation": 6000},
    "validation_accuracy": 0.9413, "train_seconds": 171.6, "threads": 2, "seed": 0,
    "code_version": "git:abc", "model_code": "def", "trained_at": "2026-11-25T09:26:27Z",
}


def test_a_step_scheduled_model_says_which_step_it_kept_and_why_it_stopped():
    card = model_card({**RECORD, "steps": 5064, "best_step": 4220, "stopped_early": "time budget of 150 s reached"})
    assert "0.9413 (kept the weights of step 4,220 of 5,064; time budget of 150 s reached)" in card
    assert "54,000 training images" in card


def test_an_ensemble_card_names_its_members_and_weights():
    members = [{"model_id": "cnn-1", "weight": 0.8367}, {"model_id": "svm-2", "weight": 0.1633}]
    card = model_card({**RECORD, "family": "ensemble", "steps": 1, "best_step": 1, "members": members})
    assert "a weighted vote of 2 models" in card and "`cnn-1` 0.837, `svm-2` 0.163" in card


def test_a_record_from_before_step_schedules_still_has_a_card():
    card = model_card({**RECORD, "best_epoch": 7, "epochs_run": 9})
    assert "0.9413 (best epoch 7 of 9)" in card
