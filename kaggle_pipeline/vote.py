"""How the kept runs (and the stacker) vote: the strategies, picked by name, and a scikit-learn-style estimator.

Every strategy combines members' class probabilities shaped ``(members, samples, classes)`` with one weight
per member; they differ in the weights and in whether members vote with their argmax or their probabilities:

    majority   each member votes for its most probable class (with its weight, 1 for a CNN run); most votes
               win, a tie goes to the tied class with the larger summed probability, then to the lower index.
               (hyperas' VotingModel returned the largest label for votes [0, 0, 0, 1]; this returns 0.)
    soft       the weighted mean of the probabilities
    weighted   soft, each member's weight times its accuracy on the selection data
    select     greedy ensemble selection with replacement (Caruana et al. 2004, as AutoGluon's weighted
               ensemble): repeatedly add the member that most improves the soft vote's accuracy on the
               selection data (ties: lower log loss, then lower index); weights are the times chosen
    auto       each strategy above is fitted on one half of the validation predictions and judged on the
               other half; the best judged one is used

Learned weights only ever see the selection half, so the accuracy reported for them is never measured on
the data that chose them.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

STRATEGIES = ("majority", "soft", "weighted", "select")
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
    for weight, choices in zip(weights, probabilities.argmax(axis=2)):
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


def greedy_selection(probabilities: np.ndarray, truth: np.ndarray, rounds: int = SELECTION_ROUNDS) -> np.ndarray:
    """How many times Caruana's greedy selection with replacement picks each member (the weights)."""
    probabilities, _ = _check(probabilities)
    truth = np.asarray(truth)
    rows = np.arange(len(truth))
    counts = np.zeros(len(probabilities))
    total = np.zeros(probabilities.shape[1:])
    for _ in range(rounds):
        candidates = (total[None] + probabilities) / (counts.sum() + 1)
        correct = (candidates.argmax(axis=2) == truth[None]).mean(axis=1)
        log_loss = -np.log(np.clip(candidates[:, rows, truth], 1e-12, None)).mean(axis=1)
        # lexsort sorts by its last key first: accuracy (higher), then log loss (lower), then index (lower).
        best = np.lexsort((np.arange(len(probabilities)), log_loss, -correct))[0]
        counts[best] += 1
        total += probabilities[best]
    return counts


def strategy_weights(strategy: str, probabilities: np.ndarray, truth: np.ndarray, base_weights: np.ndarray) -> np.ndarray:
    """The members' weights for ``strategy``, learned (where it learns) from ``probabilities`` and ``truth``."""
    probabilities, base_weights = _check(probabilities, base_weights)
    if strategy in ("majority", "soft"):
        return base_weights
    if strategy == "weighted":
        member_accuracy = (probabilities.argmax(axis=2) == np.asarray(truth)[None]).mean(axis=1)
        return base_weights * member_accuracy if (base_weights * member_accuracy).sum() > 0 else base_weights
    if strategy == "select":
        counts = greedy_selection(probabilities, truth) * base_weights
        return counts if counts.sum() > 0 else base_weights
    raise ValueError(f"vote strategy {strategy!r}: choose one of {', '.join(VOTES)}")


def selection_split(samples: int, seed: int = 0, fraction: float = SELECTION_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of the validation rows: (rows that fit the weights, rows that judge them)."""
    order = np.random.default_rng(seed).permutation(samples)
    cut = int(round(samples * fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])


class VotingEnsemble(ClassifierMixin, BaseEstimator):
    """Votes over members' class probabilities, a scikit-learn estimator (``get_params``, ``clone``, ``score``).

    ``fit(X, y)`` takes either stacked validation probabilities ``(members, samples, classes)`` or, when
    ``members`` is given (fitted Keras models or scikit-learn classifiers), the images or features they
    predict on. ``predict(X)`` and ``predict_proba(X)`` take the same kind of input for the test rows.

    >>> ensemble = VotingEnsemble(strategy="auto").fit(validation_probabilities, y_validation)
    >>> ensemble.strategy_, ensemble.scores_        # the strategy picked and every strategy's judged accuracy
    >>> labels = ensemble.predict(test_probabilities)

    Parameters: ``strategy`` (one of VOTES), ``weights`` (base weight per member, e.g. the stacker's; default
    1 each), ``classes`` (labels of the probability columns; default 0..classes-1), ``members``,
    ``random_state`` (the auto strategy's validation split).
    """

    def __init__(self, strategy: str = "auto", weights=None, classes=None, members=None, random_state: int = 0):
        self.strategy = strategy
        self.weights = weights
        self.classes = classes
        self.members = members
        self.random_state = random_state

    def fit(self, X, y) -> "VotingEnsemble":
        if self.strategy not in VOTES:
            raise ValueError(f"strategy {self.strategy!r}: choose one of {', '.join(VOTES)}")
        probabilities = self._member_probabilities(X)
        members, samples, classes = probabilities.shape
        self.classes_ = np.arange(classes) if self.classes is None else np.asarray(self.classes)
        if len(self.classes_) != classes:
            raise ValueError(f"{len(self.classes_)} classes given for probabilities with {classes} columns")
        truth = self._class_indices(y, samples)
        base_weights = np.ones(members) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        fit_rows, judge_rows = selection_split(samples, self.random_state)
        self.scores_ = {}
        for strategy in STRATEGIES if self.strategy == "auto" else (self.strategy,):
            weights = strategy_weights(strategy, probabilities[:, fit_rows], truth[fit_rows], base_weights)
            shares = vote_shares(probabilities[:, judge_rows], weights, hard=strategy == "majority")
            self.scores_[strategy] = accuracy(shares.argmax(axis=1), truth[judge_rows])
        # The first best wins a tie, so auto prefers the simpler strategy.
        self.strategy_ = max(self.scores_, key=self.scores_.get)
        self.weights_ = strategy_weights(self.strategy_, probabilities[:, fit_rows], truth[fit_rows], base_weights)
        self.validation_accuracy_ = self.scores_[self.strategy_]
        return self

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        return vote_shares(self._member_probabilities(X), self.weights_, hard=self.strategy_ == "majority")

    def predict(self, X) -> np.ndarray:
        winners = self.predict_proba(X).argmax(axis=1)
        return self.classes_[winners]

    def _member_probabilities(self, X) -> np.ndarray:
        if self.members is None:
            return np.asarray(X, dtype=np.float64)
        outputs = []
        for member in self.members:
            if hasattr(member, "predict_proba"):
                outputs.append(member.predict_proba(X))
            else:  # a Keras model, whose predict gives probabilities
                outputs.append(member.predict(X, verbose=0))
        return np.stack([np.asarray(output, dtype=np.float64) for output in outputs])

    def _class_indices(self, y, samples: int) -> np.ndarray:
        y = np.asarray(y)
        if len(y) != samples:
            raise ValueError(f"{len(y)} labels for {samples} samples")
        index = {label: position for position, label in enumerate(self.classes_.tolist())}
        unknown = sorted({label for label in y.tolist() if label not in index}, key=str)
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not among the classes {self.classes_.tolist()}")
        return np.array([index[label] for label in y.tolist()])

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise ValueError("this VotingEnsemble is not fitted yet; call fit first")
