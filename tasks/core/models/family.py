"""What a model family declares about itself, in its own module: everything the pipeline needs to
know of it. The lists of families (the choices of ``--models``, the training order, which ones
train alone on every core, which compute on the GPU...) are read from these declarations
(:mod:`mnist_pipeline.tasks.core.models.catalog`), never written down a second time."""

from dataclasses import dataclass

from mnist_pipeline.tasks.core.models.base import Classifier
from mnist_pipeline.tasks.core.models.configs import FamilyConfig


@dataclass(frozen=True)
class FamilyDeclaration:
    classifier: type[Classifier]  # its ``family`` attribute is the family's name
    config: type[FamilyConfig]  # its defaults are the family's default config
    # Where it comes in the training order: longest first, so that with fewer workers than
    # families the long ones start at once and the short ones fill in behind them.
    order: int
    # Trains after the others, alone on every core (convolutions speed up with cores; the others
    # gain little from a second thread and run side by side on one core each).
    wide: bool = False
    # Chooses its rows from the time budget before an uninterruptible fit (the SVM): the budget is
    # then part of what determines its model, so it is part of its id.
    budget_planned: bool = False
    # Computes on the run's device (``--device``: torch families); on a Dask cluster, a run that
    # asks for a GPU sends its training to a worker that declares one.
    on_device: bool = False
    # The libraries whose versions determine its models (recorded with each one).
    libraries: tuple[str, ...] = ("numpy",)

    @property
    def name(self) -> str:
        return self.classifier.family

    @property
    def module(self) -> str:
        """The module that declares it: its code, and what it imports, make its models' code key."""
        return self.classifier.__module__
