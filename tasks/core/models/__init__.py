"""Model families behind one interface: build one from its config, or load one from its files."""

import functools
import json

from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models.base import META_FILE, Budget, Classifier, FitReport, TimeBudgetExceeded
from mnist_pipeline.tasks.core.models.configs import ENSEMBLE, FAMILIES, Family, FamilyConfig, ModelConfigs


def family_class(family: str) -> type[Classifier]:
    # Imported here: torch and scikit-learn take seconds to import.
    from mnist_pipeline.tasks.core.models.ensemble import Ensemble
    from mnist_pipeline.tasks.core.models.networks import Cnn, LogReg, Mlp
    from mnist_pipeline.tasks.core.models.svm import Svm

    classes = {"logreg": LogReg, "svm": Svm, "mlp": Mlp, "cnn": Cnn, ENSEMBLE: Ensemble}
    if family not in classes:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(classes)}")
    return classes[family]


def build(family: Family, config: FamilyConfig) -> Classifier:
    return family_class(family)(config)


def load(files: dict[str, bytes]) -> Classifier:
    """A classifier from the files ``Classifier.to_files`` made (no pickle, no code execution)."""
    try:
        meta = json.loads(files[META_FILE])
        family = meta["family"]
    except (KeyError, ValueError, TypeError) as error:
        raise ModelFileError(f"{META_FILE} is missing or unreadable ({error}); not a model of this pipeline") from error
    try:
        cls = family_class(family)
    except ValueError as error:
        raise ModelFileError(f"{META_FILE}: {error}") from None
    config = type(ModelConfigs().of(family)).model_validate(meta["config"])
    model = cls.from_weights(config, files, meta)
    model.temperature = float(meta.get("temperature", 1.0))  # fitted on validation (1: none)
    return model


@functools.cache
def code_key() -> str:
    """A short hash of the model code: part of every trained model's identity (its storage key).

    It covers every module of this package (families are found by name, not imported by name),
    the training helpers, and every project module those import (subsampling, digits, errors...).
    """
    import pkgutil

    from mnist_pipeline.tasks.core.lineage import source_key

    modules = sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__))
    return source_key("models v1", __name__, "mnist_pipeline.tasks.core.training", *modules)


__all__ = [
    "ENSEMBLE", "FAMILIES", "Budget", "Classifier", "Family", "FamilyConfig", "FitReport", "ModelConfigs",
    "ModelFileError", "TimeBudgetExceeded", "build", "code_key", "family_class", "load",
]
