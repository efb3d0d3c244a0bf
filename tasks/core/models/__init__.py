"""Model families behind one interface: build one from its config, or load one from its files."""

import json

from tasks.core.errors import ModelFileError
from tasks.core.models.base import META_FILE, Budget, Classifier, FitReport, TimeBudgetExceeded
from tasks.core.models.configs import ENSEMBLE, FAMILIES, Family, FamilyConfig, ModelConfigs


def family_class(family: str) -> type[Classifier]:
    # Imported here: torch and scikit-learn take seconds to import.
    from tasks.core.models.ensemble import Ensemble
    from tasks.core.models.networks import Cnn, LogReg, Mlp
    from tasks.core.models.svm import Svm

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
    if family not in (*FAMILIES, ENSEMBLE):
        raise ModelFileError(f"{META_FILE} names the model family {family!r}; this pipeline has "
                             f"{', '.join((*FAMILIES, ENSEMBLE))}")
    cls = family_class(family)
    config = type(ModelConfigs().of(family)).model_validate(meta["config"])
    return cls.from_weights(config, files, meta)


def code_key() -> str:
    """A short hash of the model code: part of every trained model's identity (and cache key)."""
    import hashlib
    import pathlib

    digest = hashlib.sha256(b"models v1")
    for path in sorted(pathlib.Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


__all__ = [
    "ENSEMBLE", "FAMILIES", "Budget", "Classifier", "Family", "FamilyConfig", "FitReport", "ModelConfigs",
    "ModelFileError", "TimeBudgetExceeded", "build", "code_key", "family_class", "load",
]
