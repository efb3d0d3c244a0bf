"""The errors users act on: a failed training's outcome travels with its error."""

import pytest

from mnist_pipeline.tasks.core.errors import SourceError, TrainingFailed


def test_a_runs_outcome_is_its_result_or_what_its_training_failure_carries():
    assert TrainingFailed.outcome_of("made") == "made"
    assert TrainingFailed.outcome_of(TrainingFailed("training failed for svm (x)", "survivors")) == "survivors"
    with pytest.raises(SourceError, match="truncated"):  # a stage before training failed: its own error
        TrainingFailed.outcome_of(SourceError("truncated"))
    # read back from Prefect's API only its type and message are left: the error, not a None outcome
    with pytest.raises(TrainingFailed, match="training failed for svm"):
        TrainingFailed.outcome_of(TrainingFailed("training failed for svm (x)"))
