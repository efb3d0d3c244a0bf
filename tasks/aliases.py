"""Moving production by hand: `mnist models promote` and `mnist models rollback`.

What may move is decided by the rules of ``tasks/core/promotion.py``; the registry only records
the move, as a compare-and-set on the alias's revision read here, so a promotion that lands
meanwhile makes the command fail instead of being overwritten. (No Prefect here: these commands
run no flow.)
"""

from mnist_pipeline.storage.registry import Registry, RegistryError
from mnist_pipeline.tasks.core.promotion import manual_promotion_refusal, rollback_refusal


def promote_by_hand(registry: Registry, model_id: str, *, reason: str, force: bool = False) -> str | None:
    """Make ``model_id`` production; returns the model it replaced (None: none). Refused, unless
    ``force``, when :func:`manual_promotion_refusal` says so."""
    current, revision = registry.alias("production")
    if current == model_id:
        return current
    if not force:
        lineage, smoke = registry.lineage(model_id)
        _refuse(manual_promotion_refusal(model_id, lineage, smoke, current,
                                         registry.lineage(current)[0] if current else None))
    if not registry.set_alias("production", model_id, revision, reason=reason, action="manual"):
        raise RegistryError("production changed at the same moment; run the command again")
    return current


def roll_back(registry: Registry, alias: str = "production", *, reason: str, force: bool = False) -> tuple[str, str]:
    """Point ``alias`` back at its previous version; returns (from, to). Refused, unless
    ``force``, when :func:`rollback_refusal` says so."""
    current, revision = registry.alias(alias)
    if current is None:
        raise RegistryError(f"{alias!r} is not set: nothing to roll back")
    target = registry.previous(alias)
    if target is None:
        raise RegistryError(f"{alias!r} has had only one version ({current}): nothing to roll back to")
    if not force:
        _refuse(rollback_refusal(alias, current, registry.lineage(current)[0], target, registry.lineage(target)[0]))
    if not registry.set_alias(alias, target, revision, reason=reason, action="rollback"):
        raise RegistryError(f"{alias!r} changed while rolling back; look at `mnist models history` and retry")
    return current, target


def _refuse(refusal: str | None) -> None:
    if refusal:
        raise RegistryError(refusal)
