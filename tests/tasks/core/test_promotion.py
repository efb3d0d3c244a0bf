import numpy as np
import pytest

from mnist_pipeline.tasks.core.promotion import (
    Contender, Lineage, PromotionRules, Unseen, decide, mcnemar_exact, needs_comparison,
)

IDS = np.arange(1000)
DIGITS = Lineage("mnist", tuple(str(d) for d in range(10)))
FASHION = Lineage("fashion-mnist", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))


def contender(name, correct_count, *, version="d1", extra_right=None, lineage=DIGITS):
    """A model right on ``correct_count`` of 1,000 images (the last ones unless told otherwise)."""
    correct = np.zeros(1000, bool)
    correct[1000 - correct_count:] = True
    if extra_right is not None:
        correct[extra_right] = True
    return Contender(name, lineage, version, IDS, correct)


def test_mcnemar_exact_matches_the_binomial_tail():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(15, 5) == pytest.approx(0.04138946533203125)


def test_no_champion_promotes_above_the_floor():
    decision = decide(contender("new", 950), None, PromotionRules(0.9, 0.05))
    assert decision.promote and decision.reason == "no production model yet"
    assert decision.champion is None and decision.challenger_accuracy == 0.95


def test_below_the_floor_is_never_promoted():
    decision = decide(contender("new", 850), None, PromotionRules(0.9, 0.05))
    assert not decision.promote and "below the floor" in decision.reason


def test_significantly_better_is_promoted_with_its_evidence():
    champion = contender("old", 900)
    challenger = contender("new", 900, extra_right=np.arange(0, 30))  # 30 more right, none worse
    decision = decide(challenger, champion, PromotionRules(0.5, 0.05))
    assert decision.promote
    assert (decision.challenger_only_correct, decision.champion_only_correct) == (30, 0)
    assert decision.p_value == pytest.approx(2 * 0.5**30)
    assert decision.champion_accuracy == 0.9 and decision.challenger_accuracy == 0.93


def test_better_but_not_significant_keeps_the_champion():
    champion = Contender("old", DIGITS, "d1", IDS, np.r_[np.zeros(8, bool), np.ones(992, bool)])
    # right on 6 of the champion's 8 misses, wrong on 3 it got right: 6 vs 3 discordant
    correct = champion.correct.copy()
    correct[:6] = True
    correct[100:103] = False
    decision = decide(Contender("new", DIGITS, "d1", IDS, correct), champion, PromotionRules(0.5, 0.05))
    assert not decision.promote and "not significantly" in decision.reason
    assert (decision.challenger_only_correct, decision.champion_only_correct) == (6, 3)
    assert decision.p_value == pytest.approx(mcnemar_exact(6, 3)) and decision.p_value > 0.05


def test_worse_and_tied_keep_the_champion():
    champion = contender("old", 950)
    worse = decide(contender("new", 940), champion, PromotionRules(0.5, 0.05))
    assert not worse.promote and "less accurate" in worse.reason
    tie = decide(Contender("new", DIGITS, "d1", IDS, champion.correct.copy()), champion, PromotionRules(0.5, 0.05))
    assert not tie.promote and "ties" in tie.reason and tie.p_value == 1.0


def test_the_champion_itself_is_not_promoted_again():
    same = contender("m", 950)
    decision = decide(same, same, PromotionRules(0.5, 0.05))
    assert not decision.promote and "already is the production model" in decision.reason


def test_champion_scored_on_another_dataset_version_must_be_re_evaluated():
    with pytest.raises(ValueError, match="evaluate both on the same test split"):
        decide(contender("new", 990, version="d2"), contender("old", 900, version="d1"), PromotionRules(0.5, 0.05))


def test_a_smoke_run_never_promotes_even_without_a_champion():
    decision = decide(contender("smoke", 990), None, PromotionRules(0.5, 0.05), smoke=True)
    assert not decision.promote and decision.smoke and "smoke run" in decision.reason
    better = decide(contender("smoke", 990), contender("old", 500), PromotionRules(0.5, 0.05), smoke=True)
    assert not better.promote and "never replaces production" in better.reason


def test_a_champion_of_another_source_is_never_compared_or_replaced():
    unscored_champion = Contender("fashion-cnn", FASHION)  # not evaluated on the digits' split
    decision = decide(contender("digits-svm", 990), unscored_champion, PromotionRules(0.5, 0.05))
    assert not decision.promote and "another problem" in decision.reason
    assert decision.champion_lineage.startswith("fashion-mnist (") and decision.challenger_lineage.startswith("mnist (")
    assert decision.p_value is None and decision.champion_accuracy is None
    renamed = Lineage("mnist", ("zero", *DIGITS.class_names[1:]))  # same source, other class names
    assert not decide(contender("a", 990), Contender("b", renamed), PromotionRules(0.5, 0.05)).promote
    unknown = decide(contender("a", 990), Contender("b", None), PromotionRules(0.5, 0.05))
    assert not unknown.promote and "unrecorded source" in unknown.reason


def test_a_newer_version_of_the_same_source_is_compared():
    champion = contender("old", 900, version="d2")  # re-scored on the new version's split
    challenger = contender("new", 900, version="d2", extra_right=np.arange(0, 30))
    assert decide(challenger, champion, PromotionRules(0.5, 0.05)).promote


def test_only_a_different_model_of_the_same_problem_is_scored_for_comparison():
    challenger = contender("new", 950)
    assert needs_comparison(challenger, "old", DIGITS, smoke=False)
    assert not needs_comparison(challenger, "old", DIGITS, smoke=True)
    assert not needs_comparison(challenger, "old", FASHION, smoke=False)
    assert not needs_comparison(challenger, "old", None, smoke=False)
    assert not needs_comparison(challenger, "new", DIGITS, smoke=False)
    assert not needs_comparison(challenger, None, None, smoke=False)


def test_the_comparison_counts_only_test_images_neither_model_trained_or_validated_on():
    # The champion trained on 300 of these test images (an earlier version's training split): right
    # on all of them, its homework. On the 700 it never saw, the challenger is clearly better.
    champion_correct = np.zeros(1000, bool)
    champion_correct[:860] = True  # all 300 it saw, and 560 of the 700 unseen (80%)
    challenger_correct = np.zeros(1000, bool)
    challenger_correct[60:916] = True  # 240 of the champion's 300, and 616 of the unseen (88%)
    champion = Contender("old", DIGITS, "d2", IDS, champion_correct)
    challenger = Contender("new", DIGITS, "d2", IDS, challenger_correct)
    # Scored on every image, the champion's homework hides the difference:
    assert not decide(challenger, champion, PromotionRules(0.5, 0.05)).promote
    unseen = Unseen.of(IDS, IDS.astype(np.uint64), [np.arange(300, dtype=np.uint64)])
    decision = decide(challenger, champion, PromotionRules(0.5, 0.05, 100), unseen=unseen)
    assert decision.promote and "on the 700 test images neither saw" in decision.reason
    assert (decision.compared_images, decision.excluded_images) == (700, 300)
    assert decision.challenger_accuracy_compared == pytest.approx(0.88)
    assert decision.champion_accuracy_compared == pytest.approx(0.8)
    assert decision.challenger_accuracy == pytest.approx(0.856)  # the floor still reads the whole test split
    assert (decision.challenger_only_correct, decision.champion_only_correct) == (56, 0)


def test_too_few_unseen_images_or_unknown_homework_compare_nothing_and_keep_the_champion():
    champion, challenger = contender("old", 800), contender("new", 950)
    few = Unseen.of(IDS, IDS.astype(np.uint64), [np.arange(950, dtype=np.uint64)])
    decision = decide(challenger, champion, PromotionRules(0.5, 0.05, 100), unseen=few)
    assert not decision.promote and "only 50 of the 1,000 test images were seen by neither model" in decision.reason
    assert (decision.compared_images, decision.excluded_images, decision.p_value) == (50, 950, None)
    unknown = Unseen.unknown(1000, "dataset d0 that old trained on is no longer in storage")
    decision = decide(challenger, champion, PromotionRules(0.5, 0.05), unseen=unknown)
    assert not decision.promote and "cannot tell which test images the models have seen" in decision.reason
    assert "mnist models promote new" in decision.reason and decision.compared_images is None


def test_a_gate_holds_a_promotion_the_evidence_would_make_and_says_why():
    champion, challenger = contender("old", 800), contender("new", 950)
    held = decide(challenger, champion, PromotionRules(0.5, 0.05), hold="the new images drifted (AUC 0.91 > 0.8)")
    assert not held.promote and held.reason.startswith("held: the new images drifted")
    assert "significantly more accurate" in held.reason and held.p_value < 0.05
    # a gate never turns a refusal into anything else
    worse = decide(contender("new", 700), champion, PromotionRules(0.5, 0.05), hold="drifted")
    assert not worse.promote and "less accurate" in worse.reason
