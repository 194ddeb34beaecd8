"""Majority vote over the kept runs.

Each run votes for its most probable class. The class with most votes wins; a tie between classes is
broken by the tied classes' probabilities summed over all runs, and a tie in that too by the lower
class index. (hyperas' VotingModel returned the largest label for votes [0, 0, 0, 1]; this returns 0.)
"""

from __future__ import annotations

import numpy as np


def majority_vote(probabilities: np.ndarray) -> np.ndarray:
    """Class indices voted by ``probabilities`` shaped ``(runs, samples, classes)``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 3 or probabilities.shape[0] == 0:
        raise ValueError(f"expected probabilities shaped (runs, samples, classes) with runs >= 1, got {probabilities.shape}")
    runs, samples, classes = probabilities.shape
    votes = np.zeros((samples, classes), dtype=np.int64)
    choices = probabilities.argmax(axis=2)
    for run_choices in choices:
        votes[np.arange(samples), run_choices] += 1
    tied = votes == votes.max(axis=1, keepdims=True)
    tie_break = np.where(tied, probabilities.sum(axis=0), -np.inf)
    return tie_break.argmax(axis=1)


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(truth))) if len(truth) else float("nan")


def voted_accuracy_curve(probabilities: np.ndarray, truth: np.ndarray) -> list[float]:
    """Accuracy of the majority vote of the first k runs, for k = 1 .. runs (the ensemble-size curve)."""
    probabilities = np.asarray(probabilities)
    return [accuracy(majority_vote(probabilities[:count]), truth) for count in range(1, len(probabilities) + 1)]
