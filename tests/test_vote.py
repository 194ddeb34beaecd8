"""Majority vote: most votes win; ties go to the tied class with the larger summed probability."""

import numpy as np
import pytest

from kaggle_pipeline.vote import majority_vote, voted_accuracy_curve


def one_hot_votes(votes, classes, confidence=0.9):
    """Runs that each put ``confidence`` on their vote and spread the rest evenly."""
    probabilities = np.full((len(votes), 1, classes), (1 - confidence) / (classes - 1))
    for run, vote in enumerate(votes):
        probabilities[run, 0, vote] = confidence
    return probabilities


def test_majority_beats_the_largest_label():
    # hyperas' VotingModel answered 1 here.
    assert majority_vote(one_hot_votes([0, 0, 0, 1], classes=2)).tolist() == [0]


def test_plain_majority_over_several_samples():
    probabilities = np.stack([
        np.eye(3)[[2, 1, 0]],
        np.eye(3)[[2, 0, 0]],
        np.eye(3)[[1, 0, 2]],
    ])
    assert majority_vote(probabilities).tolist() == [2, 0, 0]


def test_tie_is_broken_by_summed_probabilities_of_the_tied_classes():
    probabilities = np.array([
        [[0.55, 0.45, 0.0]],   # votes 0
        [[0.51, 0.0, 0.49]],   # votes 0
        [[0.0, 0.9, 0.1]],     # votes 1
        [[0.3, 0.7, 0.0]],     # votes 1
    ])
    # Votes tie 2-2 between classes 0 and 1; class 1 has 2.05 summed against 1.36.
    assert majority_vote(probabilities).tolist() == [1]


def test_untied_minority_with_high_probability_does_not_win():
    probabilities = np.array([[[0.34, 0.33, 0.33]], [[0.34, 0.33, 0.33]], [[0.0, 1.0, 0.0]]])
    assert majority_vote(probabilities).tolist() == [0]


def test_exact_tie_goes_to_the_lower_class_index():
    probabilities = np.array([[[0.0, 0.5, 0.5]], [[0.0, 0.5, 0.5]]])
    assert majority_vote(probabilities).tolist() == [1]


def test_a_single_run_votes_its_argmax():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(5), size=(1, 50))
    assert majority_vote(probabilities).tolist() == probabilities[0].argmax(axis=1).tolist()


def test_shape_is_checked():
    with pytest.raises(ValueError, match="runs, samples, classes"):
        majority_vote(np.zeros((4, 3)))


def test_voted_accuracy_curve_votes_the_first_k_runs():
    truth = np.array([0, 1, 2])
    first = np.eye(3)[[0, 1, 1]]  # right, right, wrong
    second = np.eye(3)[[2, 2, 2]]  # wrong, wrong, right
    third = np.eye(3)[[0, 1, 2]] * 0.6 + 0.1  # all right, less sure
    curve = voted_accuracy_curve(np.stack([first, second, third]), truth)
    # 2 runs: every sample is a 1-1 tie with equal summed probabilities, so the lower class index wins:
    # 0 (right), 1 (right), 1 (wrong). 3 runs: the third run breaks each tie its way.
    assert curve == pytest.approx([2 / 3, 2 / 3, 1.0])


# --- strategies -------------------------------------------------------------------------------------------

from sklearn.base import clone  # noqa: E402

from kaggle_pipeline.vote import (  # noqa: E402
    VotingEnsemble, greedy_selection, selection_split, soft_vote, strategy_weights, vote_shares,
)


def test_soft_and_hard_votes_disagree_where_one_member_is_sure():
    probabilities = np.array([[[0.4, 0.6]], [[0.4, 0.6]], [[1.0, 0.0]]])
    assert majority_vote(probabilities).tolist() == [1]  # two votes against one
    assert soft_vote(probabilities).tolist() == [0]  # mean 0.6 against 0.4


def test_a_member_weight_counts_as_that_many_votes():
    probabilities = one_hot_votes([0, 0, 1], classes=2)
    assert majority_vote(probabilities, weights=[1, 1, 1]).tolist() == [0]
    assert majority_vote(probabilities, weights=[1, 1, 3]).tolist() == [1]  # e.g. a stacker with weight 3
    # 2 against 2: the tie goes to the class with the larger summed probability (0.9 + 0.9 + 0.1 vs 1.1).
    assert majority_vote(probabilities, weights=[1, 1, 2]).tolist() == [0]


def test_weighted_vote_weights_by_accuracy_on_the_selection_data():
    truth = np.array([0, 1, 0, 1])
    good = np.eye(2)[[0, 1, 0, 1]] * 0.8 + 0.1      # 4 of 4 right
    poor = np.eye(2)[[1, 1, 0, 0]] * 0.8 + 0.1      # 2 of 4 right
    weights = strategy_weights("weighted", np.stack([good, poor]), truth, np.ones(2))
    np.testing.assert_allclose(weights, [1.0, 0.5])
    np.testing.assert_allclose(strategy_weights("weighted", np.stack([good, poor]), truth, np.array([1.0, 2.0])), [1.0, 1.0])


def test_greedy_selection_picks_the_right_member_and_complements():
    truth = np.array([0, 1, 2, 0])
    perfect = np.eye(3)[truth] * 0.7 + 0.1
    wrong = np.eye(3)[[1, 2, 0, 1]] * 0.7 + 0.1
    assert greedy_selection(np.stack([wrong, perfect]), truth, rounds=10).tolist() == [0, 10]
    # Neither member is right alone on every row; their soft vote is. Selection finds the pair.
    left = np.array([[0.8, 0.2, 0.0], [0.45, 0.55, 0.0], [0.0, 0.4, 0.6], [0.3, 0.6, 0.1]])   # wrong on row 4
    right = np.array([[0.4, 0.6, 0.0], [0.2, 0.8, 0.0], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0]])   # wrong on row 1
    truth = np.array([0, 1, 2, 0])
    counts = greedy_selection(np.stack([left, right]), truth, rounds=2)
    assert counts.tolist() == [1, 1]
    assert soft_vote(np.stack([left, right]), counts).tolist() == truth.tolist()


def test_majority_shares_sum_to_one_and_keep_the_tie_break():
    probabilities = np.array([[[0.0, 0.5, 0.5]], [[0.0, 0.5, 0.5]]])
    shares = vote_shares(probabilities, hard=True)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares.argmax(axis=1).tolist() == [1]


def random_members(members=4, samples=200, classes=3, seed=0):
    generator = np.random.default_rng(seed)
    truth = generator.integers(0, classes, samples)
    probabilities = generator.dirichlet(np.ones(classes), size=(members, samples))
    for member in range(members):  # members right on a member-dependent share of the rows
        right = generator.random(samples) < 0.5 + 0.1 * member
        probabilities[member, right, truth[right]] += 1.0
    return probabilities / probabilities.sum(axis=2, keepdims=True), truth


def test_learned_weights_never_see_the_half_they_are_judged_on():
    probabilities, truth = random_members()
    fit_rows, judge_rows = selection_split(len(truth), seed=0)
    assert set(fit_rows).isdisjoint(judge_rows) and len(fit_rows) + len(judge_rows) == len(truth)
    for strategy in ("weighted", "select"):
        ensemble = VotingEnsemble(strategy=strategy).fit(probabilities, truth)
        scrambled, scrambled_truth = probabilities.copy(), truth.copy()
        scrambled[:, judge_rows] = np.random.default_rng(1).dirichlet(np.ones(3), size=(4, len(judge_rows)))
        scrambled_truth[judge_rows] = (truth[judge_rows] + 1) % 3
        other = VotingEnsemble(strategy=strategy).fit(scrambled, scrambled_truth)
        np.testing.assert_array_equal(ensemble.weights_, other.weights_)  # the judged half changed nothing learned
        assert other.validation_accuracy_ != ensemble.validation_accuracy_  # but it is what the score measures


def test_auto_picks_the_best_judged_strategy_and_predicts_with_it():
    probabilities, truth = random_members(seed=3)
    ensemble = VotingEnsemble(strategy="auto").fit(probabilities, truth)
    assert set(ensemble.scores_) == {"majority", "soft", "weighted", "select"}
    assert ensemble.scores_[ensemble.strategy_] == max(ensemble.scores_.values())
    fixed = VotingEnsemble(strategy=ensemble.strategy_).fit(probabilities, truth)
    np.testing.assert_array_equal(ensemble.predict(probabilities), fixed.predict(probabilities))


def test_voting_ensemble_follows_the_estimator_contract():
    probabilities, truth = random_members(seed=4)
    ensemble = VotingEnsemble(strategy="soft", classes=["cat", "dog", "frog"])
    assert ensemble.get_params()["strategy"] == "soft" and not hasattr(ensemble, "weights_")
    with pytest.raises(ValueError, match="not fitted"):
        ensemble.predict(probabilities)
    labels = np.array(["cat", "dog", "frog"])[truth]
    assert ensemble.fit(probabilities, labels) is ensemble
    assert ensemble.classes_.tolist() == ["cat", "dog", "frog"]
    assert ensemble.predict(probabilities).tolist() == np.array(["cat", "dog", "frog"])[soft_vote(probabilities)].tolist()
    assert ensemble.predict_proba(probabilities).shape == (200, 3)
    assert 0.0 <= ensemble.score(probabilities, labels) <= 1.0
    assert clone(ensemble).get_params() == ensemble.get_params()
    with pytest.raises(ValueError, match="not among the classes"):
        VotingEnsemble(strategy="soft", classes=["cat", "dog", "frog"]).fit(probabilities, np.full(200, "emu"))
    with pytest.raises(ValueError, match="strategy 'median'"):
        VotingEnsemble(strategy="median").fit(probabilities, truth)


def test_voting_ensemble_over_fitted_models():
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    generator = np.random.default_rng(0)
    features = generator.normal(size=(300, 4))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    members = [LogisticRegression().fit(features[:150], labels[:150]),
               DecisionTreeClassifier(max_depth=2, random_state=0).fit(features[:150], labels[:150])]
    ensemble = VotingEnsemble(strategy="soft", members=members).fit(features[150:], labels[150:])
    expected = (members[0].predict_proba(features) + members[1].predict_proba(features)).argmax(axis=1)
    assert ensemble.predict(features).tolist() == expected.tolist()
