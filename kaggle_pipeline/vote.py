"""How the kept runs (and the stacker) vote: the strategies, picked by name.

Two layers, two axis orders, two modules:

- ``VotingEnsemble`` (kaggle_pipeline.estimator, which imports scikit-learn), the estimator, follows
  scikit-learn: samples first. ``X`` is the members' stored class probabilities shaped
  ``(samples, members, classes)`` (``submit.stored_predictions`` returns them so), or, with
  ``members=[...]``, whatever those fitted models predict on. ``train_test_split``, ``cross_val_score`` and
  the rest slice its rows.
- The functions here (``majority_vote``, ``soft_vote``, ``vote_shares``, ``strategy_weights``,
  ``greedy_selection``, ``voted_accuracy_curve``) take runs first, ``(members, samples, classes)``, as the
  bench scripts stack runs; ``VotingEnsemble`` calls them on ``X.transpose(1, 0, 2)``.

Every strategy combines members' class probabilities with one weight per member; they differ in the
weights and in whether members vote with their argmax or their probabilities:

    majority   each member votes for its most probable class (with its weight, 1 for a CNN run); most votes
               win, a tie goes to the tied class with the larger summed probability, then to the lower index.
               (hyperas' VotingModel returned the largest label for votes [0, 0, 0, 1]; this returns 0.)
    soft       the weighted mean of the probabilities
    weighted   soft, each member's weight times its score on the selection data (the metric's score where
               greater is better; for logloss exp(-logloss), the geometric mean probability of the truth)
    select     greedy ensemble selection with replacement (Caruana et al. 2004, as AutoGluon's weighted
               ensemble): repeatedly add the member that most improves the soft vote's score on the
               selection data (accuracy: ties go to the lower log loss; then the lower index); weights are the
               times chosen
    logistic   a level-2 stacker (``estimator.LogisticStacker``): a multinomial logistic regression on every
               member's log-probabilities (members x classes inputs), its regularisation chosen by 3-fold
               cross-validated log loss within the selection data; with k-fold members (kaggle_pipeline.submit)
               those are out-of-fold predictions of every labelled image, so it learns from all of them. It
               learns its own use of each member: the base weights do not apply and are reported as they are
    auto       each strategy above is fitted on one half of the validation predictions and judged on the
               other half by the metric (kaggle_pipeline.metrics, default accuracy); the best judged one is used

Learned weights only ever see the selection half, so the accuracy reported for them is never measured on
the data that chose them.
"""

from __future__ import annotations

import numpy as np

from kaggle_pipeline.metrics import get_metric

STRATEGIES = ("majority", "soft", "weighted", "select", "logistic")
VOTES = (*STRATEGIES, "auto")
SELECTION_ROUNDS = 50
SELECTION_FRACTION = 0.5


def _check(probabilities: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 3 or probabilities.shape[0] == 0:
        raise ValueError(f"expected probabilities shaped (runs, samples, classes) with runs >= 1, got {probabilities.shape}")
    weights = np.ones(len(probabilities)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(probabilities),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"expected {len(probabilities)} non-negative weights, not all zero; got {weights.tolist()}")
    return probabilities, weights


def majority_vote(probabilities: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Class indices voted by ``probabilities`` shaped ``(runs, samples, classes)``."""
    return vote_shares(probabilities, weights, hard=True).argmax(axis=1)


def soft_vote(probabilities: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    return vote_shares(probabilities, weights, hard=False).argmax(axis=1)


def vote_shares(probabilities: np.ndarray, weights: np.ndarray | None = None, hard: bool = False) -> np.ndarray:
    """Per-sample class scores that sum to 1: the weighted mean of the probabilities, or (``hard``) the
    weighted vote shares, nudged by the summed probabilities so that argmax breaks ties as documented."""
    probabilities, weights = _check(probabilities, weights)
    weights = weights / weights.sum()
    if not hard:
        return np.tensordot(weights, probabilities, axes=1)
    runs, samples, classes = probabilities.shape
    votes = np.zeros((samples, classes))
    for weight, choices in zip(weights, probabilities.argmax(axis=2), strict=True):
        votes[np.arange(samples), choices] += weight
    # Rounded so that equal vote totals reached in a different order still compare equal.
    votes = np.round(votes, 9)
    tied = votes == votes.max(axis=1, keepdims=True)
    summed = probabilities.sum(axis=0)
    tie_break = np.where(tied, summed, -np.inf)
    winner = tie_break.argmax(axis=1)
    # The winner of a tie gets an edge smaller than any vote, so the shares still say how the vote went.
    shares = votes.copy()
    shares[np.arange(samples), winner] += 1e-6
    return shares / shares.sum(axis=1, keepdims=True)


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(truth))) if len(truth) else float("nan")


def voted_accuracy_curve(probabilities: np.ndarray, truth: np.ndarray) -> list[float]:
    """Accuracy of the majority vote of the first k runs, for k = 1 .. runs (the ensemble-size curve)."""
    probabilities = np.asarray(probabilities)
    return [accuracy(majority_vote(probabilities[:count]), truth) for count in range(1, len(probabilities) + 1)]


def greedy_selection(probabilities: np.ndarray, truth: np.ndarray, rounds: int = SELECTION_ROUNDS,
                     metric: str = "accuracy") -> np.ndarray:
    """How many times Caruana's greedy selection with replacement picks each member (the weights), each round
    adding the member whose addition scores best by ``metric`` (kaggle_pipeline.metrics)."""
    probabilities, _ = _check(probabilities)
    truth = np.asarray(truth)
    rows = np.arange(len(truth))
    counts = np.zeros(len(probabilities))
    total = np.zeros(probabilities.shape[1:])
    judge = get_metric(metric)
    for _ in range(rounds):
        candidates = (total[None] + probabilities) / (counts.sum() + 1)
        if judge.name == "accuracy":
            correct = (candidates.argmax(axis=2) == truth[None]).mean(axis=1)
            log_loss = -np.log(np.clip(candidates[:, rows, truth], 1e-12, None)).mean(axis=1)
            # lexsort sorts by its last key first: accuracy (higher), then log loss (lower), then index (lower).
            best = np.lexsort((np.arange(len(probabilities)), log_loss, -correct))[0]
        else:  # the metric's loss, lower index on a tie
            best = int(np.argmin([judge.loss(judge(truth, candidate)) for candidate in candidates]))
        counts[best] += 1
        total += probabilities[best]
    return counts


def member_scores(probabilities: np.ndarray, truth: np.ndarray, metric: str = "accuracy") -> np.ndarray:
    """Each member's weight for ``weighted``: its score by ``metric`` above the metric's lowest where greater is
    better (NaN: the lowest; a kappa of -1..1 weighs 0..2), and exp(-logloss) for logloss (the geometric mean
    of the probability it gives the truth)."""
    judge = get_metric(metric)
    if judge.name == "accuracy":
        return (probabilities.argmax(axis=2) == np.asarray(truth)[None]).mean(axis=1)
    scores = np.array([judge(truth, member) for member in probabilities])
    scores = np.where(np.isfinite(scores), scores, judge.worst)
    return scores - judge.lowest if judge.greater_is_better else np.exp(-scores)


def strategy_weights(strategy: str, probabilities: np.ndarray, truth: np.ndarray, base_weights: np.ndarray,
                     metric: str = "accuracy") -> np.ndarray:
    """The members' weights for ``strategy``, learned (where it learns) from ``probabilities`` and ``truth``."""
    probabilities, base_weights = _check(probabilities, base_weights)
    if strategy in ("majority", "soft", "logistic"):  # logistic learns its own use of each member
        return base_weights
    if strategy == "weighted":
        member_score = member_scores(probabilities, truth, metric)
        return base_weights * member_score if (base_weights * member_score).sum() > 0 else base_weights
    if strategy == "select":
        counts = greedy_selection(probabilities, truth, metric=metric) * base_weights
        return counts if counts.sum() > 0 else base_weights
    raise ValueError(f"vote strategy {strategy!r}: choose one of {', '.join(VOTES)}")


def selection_split(samples: int, seed: int = 0, fraction: float = SELECTION_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of the validation rows: (rows that fit the weights, rows that judge them)."""
    order = np.random.default_rng(seed).permutation(samples)
    cut = int(round(samples * fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])
