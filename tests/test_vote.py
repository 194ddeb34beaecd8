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
