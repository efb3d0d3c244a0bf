import numpy as np
import pytest
import torch
from mnist_pipeline.tasks.core.models.augment import augment
from mnist_pipeline.tasks.core.models.base import validation_steps
from mnist_pipeline.tasks.core.models.catalog import ModelConfigs, family_names
from mnist_pipeline.tasks.core.models.cnn import CnnConfig
from mnist_pipeline.tasks.core.models.configs import Augment
from mnist_pipeline.tasks.core.models.svm import SvmConfig
from mnist_pipeline.tasks.core.recipe import known_recipe

FAMILIES = family_names()


def bar_images(n: int = 64) -> torch.Tensor:
    """Images with one bright pixel column at x=10: shifts and mirrors are easy to see."""
    images = torch.zeros(n, 1, 28, 28)
    images[:, :, 4:24, 10] = 1.0
    return images


def test_no_augmentation_is_the_identity():
    images = bar_images()
    assert augment(images, Augment(flip=False), torch.Generator().manual_seed(0)) is images


def test_shifts_move_whole_images_and_fill_with_black():
    shifted = augment(bar_images(), Augment(shift=2, flip=False), torch.Generator().manual_seed(0))
    columns = shifted.sum(dim=(1, 2)).argmax(dim=1)  # the bar's column after the shift
    assert set(columns.tolist()) <= set(range(8, 13)) and len(set(columns.tolist())) > 1
    assert torch.allclose(shifted.sum(dim=(1, 2, 3)), torch.full((64,), 20.0)) or shifted.sum() < 64 * 20


def test_mirrors_about_half_and_keeps_the_shape():
    flat = bar_images().reshape(64, 784)
    mirrored = augment(flat, Augment(flip=True), torch.Generator().manual_seed(0))
    assert mirrored.shape == (64, 784)
    columns = mirrored.reshape(64, 28, 28).sum(dim=1).argmax(dim=1)
    assert set(columns.tolist()) == {10, 17} and 16 <= int((columns == 17).sum()) <= 48


def test_rotations_turn_the_bar_and_the_same_seed_gives_the_same_batch():
    config = Augment(rotate=15, flip=False)
    first = augment(bar_images(), config, torch.Generator().manual_seed(3))
    assert torch.equal(first, augment(bar_images(), config, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, augment(bar_images(), config, torch.Generator().manual_seed(4)))
    assert not torch.equal(first, bar_images())


def test_validations_are_spread_over_the_steps_and_end_on_the_last():
    assert validation_steps(100, 4) == {25, 50, 75, 100}
    assert validation_steps(10, 20) == set(range(1, 11))
    assert max(validation_steps(9284, 12)) == 9284 and len(validation_steps(9284, 12)) == 12


def test_a_recipe_fills_only_the_choices_a_config_leaves_open():
    items, handwriting = known_recipe("fashion-mnist", "items"), known_recipe("mnist", "handwriting")
    fashion, digits = ({f: ModelConfigs().of(f).for_recipe(r) for f in FAMILIES} for r in (items, handwriting))
    assert fashion["cnn"].augment.flip is True and fashion["cnn"].flip_at_test is True
    assert fashion["cnn"].augment.shift == 0 and digits["cnn"].augment.shift == 2
    assert digits["cnn"].augment.flip is False and digits["cnn"].flip_at_test is False
    assert fashion["svm"].deskew is False and digits["svm"].deskew is None  # chosen on validation for digits
    assert fashion["logreg"].augment.flip is False  # logistic regression never augments
    explicit = CnnConfig(augment=Augment(flip=False)).for_recipe(items)
    assert explicit.augment.flip is False and explicit.flip_at_test is False  # a choice made is kept
    assert SvmConfig(deskew=True).for_recipe(items).deskew is True


@pytest.mark.parametrize("steps", [1, 7])
def test_smoke_configs_are_a_few_dozen_steps(steps):
    assert CnnConfig(steps=steps).smoke().steps == steps and CnnConfig().smoke().steps == 40
    assert np.isclose(CnnConfig().smoke().learning_rate, CnnConfig().learning_rate)
