"""The recipe trial: for data of unknown kind, which random changes training should take, decided
on evidence (the decision itself, and why a tie keeps the safe choice: :mod:`recipe`)."""

import hashlib
import json

from mnist_pipeline.tasks.core.dataset import stratified_sample
from mnist_pipeline.tasks.core.digits import Digits
from mnist_pipeline.tasks.core.models.cnn import Cnn, CnnConfig
from mnist_pipeline.tasks.core.models.configs import Augment
from mnist_pipeline.tasks.core.recipe import CANDIDATES, Recipe, TrialSettings, choose, make_recipe
from mnist_pipeline.tasks.core.records import Subset


def trial(train: Digits, validation: Digits, *, seed: int, settings: TrialSettings = TrialSettings(),
          device: str = "cpu") -> Recipe:
    """The recipe the evidence picks (:func:`choose`) after the same short training of a small
    CNN per candidate on (a seeded subset of) ``train``, scored on (a seeded subset of) ``validation``."""
    train = stratified_sample(train, settings.train_rows, seed)
    validation = stratified_sample(validation, settings.validation_rows, seed)
    correct = {}
    for name, (shift, rotate, flip) in CANDIDATES.items():
        config = CnnConfig(channels=(16, 32), dense=64, steps=settings.steps, validations=1, label_smoothing=0.0,
                           augment=Augment(shift=shift, rotate=rotate, flip=flip), flip_at_test=flip)
        model = Cnn(config).fit(train, validation, seed=seed, device=device)
        correct[name] = model.report.validation_probabilities.argmax(1) == validation.labels
    name, comparisons = choose(correct, settings.alpha)
    evidence = {candidate: round(float(right.mean()), 5) for candidate, right in correct.items()}
    return make_recipe(name, f"a trial on {len(validation):,} validation images ({settings.steps} steps on "
                         f"{len(train):,} training images per candidate): {'; '.join(comparisons)}",
                   evidence=evidence, comparisons=tuple(comparisons))



def recipe_key(dataset_version: str, seed: int, subset: Subset, settings: TrialSettings) -> str:
    """What a trial's result depends on besides the data: its settings, seed, rows and the code it
    trains with (this module and what it imports: the CNN and the training loop)."""
    from mnist_pipeline.tasks.core.lineage import source_key

    identity = {"dataset_version": dataset_version, "seed": seed, "subset": [subset.train_rows, subset.validation_rows],
                "trial": settings.model_dump(mode="json"), "code": source_key("recipe trial v1", __name__)}
    return "trial-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
