"""The recipe trial chooses on validation: real digits are not mirrored, real clothes not shifted."""

import pytest

from mnist_pipeline.tasks.core.recipe import CANDIDATES, TrialSettings, known_recipe, trial

# A fraction of the default trial: enough to separate a harmful recipe from a harmless one.
SHORT = TrialSettings(steps=100, train_rows=3000, validation_rows=1000)


def test_handwritten_digits_are_never_mirrored(mnist_5k):
    recipe = trial(mnist_5k["train"], mnist_5k["validation"], seed=0, settings=SHORT)
    assert set(recipe.evidence) == set(CANDIDATES)
    assert recipe.evidence[recipe.name] == max(recipe.evidence.values())
    assert recipe.name != "mirror" and recipe.evidence["mirror"] < recipe.evidence["plain"]
    assert not recipe.flip and recipe.deskew is None and "trial on 1,000 validation images" in recipe.chosen_by


def test_clothes_are_not_shifted(fashion_10k):
    recipe = trial(fashion_10k["train"], fashion_10k["validation"], seed=0, settings=SHORT)
    assert recipe.name != "shift-rotate" and recipe.evidence["shift-rotate"] < max(recipe.evidence.values())


def test_known_datasets_keep_their_recorded_recipe():
    items = known_recipe("fashion-mnist", "items")
    assert (items.name, items.flip, items.shift, items.deskew, items.evidence) == ("mirror", True, 0, False, {})
    handwriting = known_recipe("kmnist", "handwriting")
    assert (handwriting.name, handwriting.flip, handwriting.shift, handwriting.rotate) == ("shift-rotate", False, 2, 10)
    assert "recorded default for kmnist" in handwriting.describe()
    with pytest.raises(KeyError):
        known_recipe("x", "landscapes")
