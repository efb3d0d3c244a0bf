"""Moving production by hand: the rules of promotion.py, recorded by the registry (on SQLite and
PostgreSQL, as every test with the `registry` fixture)."""

import pytest

from mnist_pipeline.storage.registry import RegistryError
from mnist_pipeline.tasks.aliases import promote_by_hand, roll_back
from mnist_pipeline.tasks.core.promotion import Lineage
from tests.conftest import DIGITS, record


def test_rollback_steps_back_through_promotions(registry):
    with pytest.raises(RegistryError, match="nothing to roll back"):
        roll_back(registry, reason="x")
    registry.set_alias("production", "mlp-a1", 0, reason="1")
    registry.set_alias("production", "cnn-b2", 1, reason="2")
    registry.set_alias("production", "svm-c3", 2, reason="3")
    assert roll_back(registry, reason="bad svm") == ("svm-c3", "cnn-b2")
    assert roll_back(registry, reason="bad cnn") == ("cnn-b2", "mlp-a1")
    assert registry.alias("production")[0] == "mlp-a1"
    with pytest.raises(RegistryError, match="only one version"):
        roll_back(registry, reason="x")
    assert [h.action for h in registry.history("production")][-2:] == ["rollback", "rollback"]


FASHION = Lineage("fashion-mnist", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))


def test_manual_promotion_refuses_smoke_models_and_other_problems_unless_forced(registry):
    registry.register(record("cnn-smoke", "cnn", smoke=True), "/models/cnn-smoke", "#", DIGITS)
    registry.register(record("cnn-fashion", "cnn", dataset="f1"), "/models/cnn-fashion", "#", FASHION)
    assert promote_by_hand(registry, "mlp-a1", reason="first") is None
    with pytest.raises(RegistryError, match="cnn-smoke is a smoke model"):
        promote_by_hand(registry, "cnn-smoke", reason="x")
    with pytest.raises(RegistryError, match=r"solves another problem \(fashion-mnist"):
        promote_by_hand(registry, "cnn-fashion", reason="x")
    assert registry.alias("production")[0] == "mlp-a1"
    assert promote_by_hand(registry, "cnn-b2", reason="same problem") == "mlp-a1"
    assert promote_by_hand(registry, "cnn-fashion", reason="switching problems", force=True) == "cnn-b2"
    assert promote_by_hand(registry, "cnn-fashion", reason="again") == "cnn-fashion"  # already production: no row
    assert [h.action for h in registry.history("production")] == ["manual", "manual", "manual"]


def test_rollback_across_sources_needs_force(registry):
    registry.register(record("cnn-fashion", "cnn", dataset="f1"), "/models/cnn-fashion", "#", FASHION)
    registry.set_alias("production", "mlp-a1", 0, reason="1")
    registry.set_alias("production", "cnn-fashion", 1, reason="2")
    with pytest.raises(RegistryError, match="refusing to roll back"):
        roll_back(registry, reason="x")
    assert registry.alias("production") == ("cnn-fashion", 2)
    assert roll_back(registry, reason="back to digits", force=True) == ("cnn-fashion", "mlp-a1")
