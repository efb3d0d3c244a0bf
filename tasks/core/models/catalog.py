"""The model families there are, and everything the pipeline derives from their declarations: the
names ``--models`` accepts, the training order, the configs of a run (:data:`ModelConfigs`), and
how to build, load and identify a model of any family.

Adding a family is one module that declares itself (``FAMILY = FamilyDeclaration(...)``, see
``family.py``) and its name in :data:`FAMILY_MODULES`. A family defined elsewhere (a plugin, a
test) is added with :func:`register`. This module is no part of any model's code identity: a
family added here changes no other family's model id.
"""

import functools
import importlib
import json

from mnist_pipeline.tasks.core.errors import ModelFileError
from mnist_pipeline.tasks.core.models.base import META_FILE, Classifier
from mnist_pipeline.tasks.core.models.configs import FamilyConfig, Settings
from mnist_pipeline.tasks.core.models.ensemble import ENSEMBLE, Ensemble
from mnist_pipeline.tasks.core.models.ensemble import FAMILY as ENSEMBLE_FAMILY
from mnist_pipeline.tasks.core.models.family import FamilyDeclaration

# The families of this package, by module name (``tasks/core/models/<name>.py``).
FAMILY_MODULES = ("logreg", "svm", "mlp", "cnn")

_registered: dict[str, FamilyDeclaration] = {}


@functools.cache
def _package_families() -> dict[str, FamilyDeclaration]:
    declared = (importlib.import_module(f"{__package__}.{module}").FAMILY for module in FAMILY_MODULES)
    return {declaration.name: declaration for declaration in declared}


def declarations() -> dict[str, FamilyDeclaration]:
    """Every family: this package's in :data:`FAMILY_MODULES` order, then those registered (the
    ensemble, which is combined from them, is none)."""
    return {**_package_families(), **_registered}


def family_names() -> tuple[str, ...]:
    """The families' names, as listed to users (``--models``' default and choices)."""
    return tuple(declarations())


def training_order() -> tuple[str, ...]:
    """The families' names in the order they start training (each declaration's ``order``)."""
    found = declarations()
    return tuple(sorted(found, key=lambda name: (found[name].order, name)))


def known(names: list[str]) -> list[str]:
    """``names``, when each is a family's (else a ValueError naming those that are not, and the choices)."""
    unknown = [name for name in names if name not in family_names()]
    if unknown or not names:
        raise ValueError(f"unknown model famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(repr(name) for name in unknown) or 'given'}; choose from {', '.join(family_names())}")
    return names


def register(declaration: FamilyDeclaration) -> FamilyDeclaration:
    """Add a family defined outside this package (its configs take their defaults)."""
    if declaration.name in family_names() or declaration.name == ENSEMBLE:
        raise ValueError(f"a model family named {declaration.name!r} exists already")
    _registered[declaration.name] = declaration
    return declaration


def unregister(name: str) -> None:
    _registered.pop(name, None)


def declaration(family: str) -> FamilyDeclaration:
    """The declaration of a family (or of the ensemble); a name no family has is an error naming them."""
    if family == ENSEMBLE:
        return ENSEMBLE_FAMILY
    known = declarations()
    if family not in known:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(known)}")
    return known[family]


def build(family: str, config: FamilyConfig) -> Classifier:
    return declaration(family).classifier(config)


def load(files: dict[str, bytes]) -> Classifier:
    """A classifier from the files ``Classifier.to_files`` made (no pickle, no code execution); an
    ensemble's members are loaded the same way first."""
    try:
        meta = json.loads(files[META_FILE])
        family = meta["family"]
    except (KeyError, ValueError, TypeError) as error:
        raise ModelFileError(f"{META_FILE} is missing or unreadable ({error}); not a model of this pipeline") from error
    try:
        declared = declaration(family)
    except ValueError as error:
        raise ModelFileError(f"{META_FILE}: {error}") from None
    config = declared.config.model_validate(meta["config"])
    if family == ENSEMBLE:
        members = Ensemble.member_files(files, meta)
        model = Ensemble(config, {i: load(own) for i, (own, _) in members.items()},
                         {i: weight for i, (_, weight) in members.items()})
    else:
        model = declared.classifier.from_weights(config, files, meta)
    model.temperature = float(meta.get("temperature", 1.0))  # fitted on validation (1: none)
    return model


@functools.cache
def code_key(family: str) -> str:
    """A short hash of the code that makes a family's models: its own module and every project
    module it imports, and the training helpers (``training.py`` and what they import), never
    another family's module: editing one family's code changes its models' ids and no other's."""
    from mnist_pipeline.tasks.core.lineage import source_key

    return source_key(f"model code v2: {family}", declaration(family).module, "mnist_pipeline.tasks.core.training",
                      exclude=(__name__,))


class _ModelConfigs(Settings):
    """The config of every family (and the ensemble), as one value in the training settings."""

    def of(self, family: str) -> FamilyConfig:
        """A family's config: the one given, else the family's defaults (a family added with
        :func:`register` has no field here)."""
        given = getattr(self, family, None)
        return given if given is not None else declaration(family).config()


def _model_configs() -> type[_ModelConfigs]:
    from pydantic import create_model

    fields = {name: (family.config, family.config()) for name, family in _package_families().items()}
    return create_model("ModelConfigs", __base__=_ModelConfigs, __doc__=_ModelConfigs.__doc__,
                        __module__=__name__, **fields, **{ENSEMBLE: (ENSEMBLE_FAMILY.config, ENSEMBLE_FAMILY.config())})


ModelConfigs = _model_configs()
