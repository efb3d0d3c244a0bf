"""What every family's config is made of: the base class, the torch families' shared settings, and
the random changes a training batch takes. Each family declares its own config in its own module
(``logreg.py``, ``svm.py``, ``mlp.py``, ``cnn.py``), next to its classifier; the defaults are the
measured choices (on Fashion-MNIST's validation split, never its test split, within the time
budgets of the README: two CPU cores training four families at once).

A constraint is said once, in the type of a field (:data:`Steps`, :data:`Share`...), so a family
that changes a default restates the value, never the rule.
"""

from typing import Annotated

from mnist_pipeline.tasks.core.recipe import Recipe
from pydantic import BaseModel, ConfigDict, Field

# Optimizer steps (batches), whatever the size of the train split: a 5,000-image split gets as
# many updates as a 60,000-image one, not a few seconds' worth. The time budget caps them.
Count = Annotated[int, Field(ge=1)]
Steps = Count
# A share of something that cannot be all of it: dropout, label smoothing.
Share = Annotated[float, Field(ge=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class Settings(BaseModel):
    """A frozen config that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilyConfig(Settings):
    # Train on at most this many (seeded, class-stratified) rows of the train split; None means
    # all. Applied in one place for every family (training.fit_family); an ensemble ignores it.
    max_train_rows: int | None = Field(default=None, ge=10)

    def smoke(self) -> "FamilyConfig":
        """The cheapest version of this config (a few dozen steps), for checking a set-up."""
        return self

    def for_recipe(self, recipe: Recipe) -> "FamilyConfig":
        """This config with the choices left to the dataset (``None`` fields) made by its
        recipe (:mod:`mnist_pipeline.tasks.core.recipe`)."""
        return self

    def leaves_recipe_open(self) -> bool:
        """Whether the dataset's recipe decides something of this config (a ``None`` field that
        :meth:`for_recipe` fills), so the recipe is recorded with the model."""
        return self.leaves_augment_open()

    def leaves_augment_open(self) -> bool:
        """Whether the recipe chooses this config's random changes (what needs a trial on data
        of unknown kind)."""
        return False


class Augment(Settings):
    """Random changes to each training batch, drawn from the training seed (on the CPU).

    ``None`` leaves the choice to the dataset's recipe. Digits move and lean in handwriting, and
    are never mirrored (a mirrored 2 is no digit); Fashion-MNIST's items are centred and upright,
    and a mirrored shoe is a shoe. Measured on Fashion-MNIST's validation split with the CNN: shifts
    of 2 px lowered it (92.75% against 93.2% without), mirroring did not (93.2%), and mirrored
    training let mirrored scoring (``flip_at_test``) add about 0.5 pp.
    """

    # Integer shifts of up to this many pixels each way (pad, then crop back to 28x28).
    # None: the recipe's (2 for handwriting, 0 for items).
    shift: int | None = Field(default=None, ge=0, le=6)
    # Rotations of up to this many degrees either way. None: the recipe's (10 for handwriting).
    rotate: float | None = Field(default=None, ge=0, le=45)
    # Mirror half of each batch left-right. None: the recipe's (on for items only).
    flip: bool | None = None

    def for_recipe(self, recipe: Recipe) -> "Augment":
        chosen = {"shift": recipe.shift, "rotate": recipe.rotate, "flip": recipe.flip}
        return self.model_copy(update={k: v for k, v in chosen.items() if getattr(self, k) is None})

    @property
    def open(self) -> bool:
        return None in (self.shift, self.rotate, self.flip)

    @property
    def active(self) -> bool:
        return bool(self.shift or self.rotate or self.flip)


class TorchConfig(FamilyConfig):
    """What the torch families share: a one-cycle schedule over a number of steps, validation
    passes spread over them, random changes to the batches, mirrored scoring."""

    steps: Steps  # each family says how many
    batch_size: int = Field(default=128, ge=1)
    # Peak of the one-cycle schedule over `steps` (warm-up, then cosine decay to ~0).
    learning_rate: Positive = 2e-3
    weight_decay: NonNegative = 1e-4
    # Validation passes spread evenly over the steps; the weights of the best one are kept.
    validations: Steps = 12
    # Target smoothing of the cross-entropy (0: none).
    label_smoothing: Share = 0.0
    # The random changes to each batch: the dataset's recipe chooses them unless a family fixes
    # them (`Augment(shift=0, rotate=0, flip=False)`: none).
    augment: Augment = Augment()
    # Also score each image's mirror image and average the two. None: where training mirrored.
    flip_at_test: bool | None = None

    def smoke(self) -> "TorchConfig":
        return self.model_copy(update={"steps": min(self.steps, 40), "validations": 2})

    def for_recipe(self, recipe: Recipe) -> "TorchConfig":
        augment = self.augment.for_recipe(recipe)
        flip_at_test = augment.flip if self.flip_at_test is None else self.flip_at_test
        return self.model_copy(update={"augment": augment, "flip_at_test": flip_at_test})

    def leaves_augment_open(self) -> bool:
        return self.augment.open


class PerPixelConfig(TorchConfig):
    """A torch family that standardizes each pixel with its own mean and deviation."""

    # Added to each pixel's standard deviation before standardizing, so almost-constant border
    # pixels are not blown up into noise.
    std_floor: Positive = 0.1
