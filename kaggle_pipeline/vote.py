"""How the kept runs (and the stacker) vote: the strategies, picked by name, and a scikit-learn estimator.

Two layers, two axis orders:

- ``VotingEnsemble``, the estimator, follows scikit-learn: samples first. ``X`` is the members' stored
  class probabilities shaped ``(samples, members, classes)`` (``submit.stored_predictions`` returns them
  so), or, with ``members=[...]``, whatever those fitted models predict on. ``train_test_split``,
  ``cross_val_score`` and the rest slice its rows.
- The functions below (``majority_vote``, ``soft_vote``, ``vote_shares``, ``strategy_weights``,
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
    logistic   a level-2 stacker (``LogisticStacker``): a multinomial logistic regression on every member's
               log-probabilities (members x classes inputs), its regularisation chosen by 3-fold
               cross-validated log loss within the selection data; with k-fold members (kaggle_pipeline.submit)
               those are out-of-fold predictions of every labelled image, so it learns from all of them. It
               learns its own use of each member: the base weights do not apply and are reported as they are
    auto       each strategy above is fitted on one half of the validation predictions and judged on the
               other half by the metric (kaggle_pipeline.metrics, default accuracy); the best judged one is used

Learned weights only ever see the selection half, so the accuracy reported for them is never measured on
the data that chose them.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from kaggle_pipeline.metrics import get_metric

STRATEGIES = ("majority", "soft", "weighted", "select", "logistic")
VOTES = (*STRATEGIES, "auto")
SELECTION_ROUNDS = 50
SELECTION_FRACTION = 0.5
# The level-2 stacker's inverse regularisation strengths, tried by cross-validation, and the probability its
# log-probability inputs are floored at (a member's 0 would be -inf; 1e-4 keeps the inputs in [-9.2, 0]).
LOGISTIC_CS = (0.01, 0.1, 1.0, 10.0)
LOGISTIC_FOLDS = 3
LOGISTIC_FLOOR = 1e-4


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
    """Each member's weight for ``weighted``: its score by ``metric`` where greater is better (NaN: 0), and
    exp(-logloss) for logloss (the geometric mean of the probability it gives the truth)."""
    judge = get_metric(metric)
    if judge.name == "accuracy":
        return (probabilities.argmax(axis=2) == np.asarray(truth)[None]).mean(axis=1)
    scores = np.array([judge(truth, member) for member in probabilities])
    scores = np.where(np.isfinite(scores), scores, judge.worst)
    return scores if judge.greater_is_better else np.exp(-scores)


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


class LogisticStacker(ClassifierMixin, BaseEstimator):
    """The ``logistic`` strategy's level-2 model: multinomial logistic regression on the members' log-probabilities.

    ``X`` is shaped ``(samples, members, classes)`` as ``VotingEnsemble``'s; ``y`` holds class indices
    ``0 .. classes-1``. ``Cs`` are tried by ``cv``-fold stratified cross-validation (log loss) when every class
    in ``y`` has at least ``cv`` rows, else the middle one is used. Classes missing from ``y`` get probability 0;
    ``y`` of one class makes every prediction that class. Learned: ``n_members_``, ``n_classes_``, ``model_``
    (the fitted scikit-learn model, None for one class), ``classes_seen_``, ``C_`` (the strength used).
    """

    def __init__(self, Cs=LOGISTIC_CS, cv: int = LOGISTIC_FOLDS, random_state: int = 0):
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y) -> "LogisticStacker":
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.intp)
        if X.ndim != 3 or len(X) != len(y) or len(y) == 0:
            raise ValueError(f"expected X shaped (samples, members, classes) and one label per sample, "
                             f"got X {X.shape} and {len(y)} labels")
        _, self.n_members_, self.n_classes_ = X.shape
        self.classes_seen_, counts = np.unique(y, return_counts=True)
        self.C_ = None
        self.model_ = None
        if len(self.classes_seen_) > 1:
            features = self._features(X)
            middle = sorted(self.Cs)[len(self.Cs) // 2]
            self.C_ = self._cross_validated_C(features, y) if counts.min() >= self.cv else float(middle)
            self.model_ = self._logistic(self.C_, features, y)
        return self

    @staticmethod
    def _logistic(C: float, features: np.ndarray, y: np.ndarray) -> LogisticRegression:
        # lbfgs stopped at max_iter still gives a usable model, and the held-out judging half scores it as it is:
        # its warning would only be noise in submit's output (seen on 6,000 out-of-fold rows, 2 rounds).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return LogisticRegression(C=C, max_iter=2000).fit(features, y)

    def _cross_validated_C(self, features: np.ndarray, y: np.ndarray) -> float:
        """The strength in ``Cs`` with the lowest mean held-out log loss over ``cv`` stratified folds (the
        smaller on a tie). Written out rather than LogisticRegressionCV, whose attributes change in sklearn 1.10."""
        folds = list(StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state).split(features, y))
        losses = []
        for C in sorted(self.Cs):
            loss = 0.0
            for fit_rows, held_rows in folds:
                model = self._logistic(C, features[fit_rows], y[fit_rows])
                held = np.zeros((len(held_rows), self.n_classes_))
                held[:, model.classes_] = model.predict_proba(features[held_rows])
                loss -= np.log(np.clip(held[np.arange(len(held_rows)), y[held_rows]], 1e-15, None)).mean()
            losses.append(loss / len(folds))
        return float(sorted(self.Cs)[int(np.argmin(losses))])

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[1:] != (self.n_members_, self.n_classes_):
            raise ValueError(f"X has shape {X.shape}; fitted with {self.n_members_} members and {self.n_classes_} classes")
        probabilities = np.zeros((len(X), self.n_classes_))
        if self.model_ is None:
            probabilities[:, self.classes_seen_[0]] = 1.0
        else:
            probabilities[:, self.model_.classes_] = self.model_.predict_proba(self._features(X))
        return probabilities

    @staticmethod
    def _features(X: np.ndarray) -> np.ndarray:
        return np.log(np.clip(X, LOGISTIC_FLOOR, 1.0)).reshape(len(X), -1)


def selection_split(samples: int, seed: int = 0, fraction: float = SELECTION_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of the validation rows: (rows that fit the weights, rows that judge them)."""
    order = np.random.default_rng(seed).permutation(samples)
    cut = int(round(samples * fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])


class VotingEnsemble(ClassifierMixin, BaseEstimator):
    """Votes over members' class probabilities; a scikit-learn classifier.

    Input, samples first as everywhere in scikit-learn:

    - ``members=None`` (the default): ``X`` holds the members' stored class probabilities, an array-like
      shaped ``(samples, members, classes)``, float, finite. One member's ``(samples, classes)`` array is
      refused (pass ``X[:, None, :]``); so is any other number of dimensions. ``predict`` needs the same
      number of members and classes as ``fit`` saw.
    - ``members=[model, ...]``, fitted Keras models or fitted scikit-learn classifiers: ``X`` is what they
      predict on (images, features; any shape they accept). Each member's ``predict_proba(X)`` (a Keras
      model's ``predict(X, verbose=0)``) must give ``(samples, classes)``; they are stacked on axis 1 into
      the array above. ``fit`` never refits the members. ``clone`` (hence ``cross_val_score``) clones
      scikit-learn members, which unfits them: wrap each in ``sklearn.frozen.FrozenEstimator`` first.

    ``y`` holds one label per sample: a class index (``classes=None``) or one of ``classes``.

    Parameters: ``strategy`` (one of VOTES, default ``"auto"``), ``weights`` (base weight per member, e.g.
    the stacker's; default 1 each), ``classes`` (the labels of the probability columns; default
    ``0 .. classes-1``), ``members`` (above), ``random_state`` (the seed of the split of the fitting rows
    into the half that learns weights and the half that judges the strategies), ``metric`` (a name of
    kaggle_pipeline.metrics, default ``"accuracy"``: what judges the strategies, ``auto``'s pick and the
    weights ``weighted`` and ``select`` learn).

    Learned attributes: ``classes_``, ``n_members_``, ``strategy_`` (the strategy used; auto's pick),
    ``weights_`` (the members' learned weights), ``stacker_`` (``logistic``'s fitted ``LogisticStacker``, else
    None), ``scores_`` (each fitted strategy's score by ``metric`` on
    the judging half), ``accuracies_`` (the same strategies' accuracy), ``validation_score_``
    (``scores_[strategy_]``) and ``validation_accuracy_`` (``accuracies_[strategy_]``).

    >>> import numpy as np
    >>> from kaggle_pipeline.vote import VotingEnsemble
    >>> rng = np.random.default_rng(0)
    >>> y_validation = rng.integers(0, 3, size=100)
    >>> def noisy_member(labels, right_share):   # a member right on about ``right_share`` of the rows
    ...     probabilities = rng.dirichlet(np.ones(3), size=len(labels))
    ...     right = rng.random(len(labels)) < right_share
    ...     probabilities[right, labels[right]] += 1.0
    ...     return probabilities / probabilities.sum(axis=1, keepdims=True)
    >>> X_validation = np.stack([noisy_member(y_validation, share) for share in (0.6, 0.7, 0.8)], axis=1)
    >>> X_validation.shape                        # (samples, members, classes)
    (100, 3, 3)
    >>> labels = np.array(["cat", "dog", "frog"])[y_validation]
    >>> ensemble = VotingEnsemble(strategy="auto", classes=["cat", "dog", "frog"]).fit(X_validation, labels)
    >>> ensemble.strategy_, ensemble.scores_["soft"]   # auto's pick (a tie goes to the simpler), a judged accuracy
    ('majority', 0.86)
    >>> X_test = X_validation[:4]
    >>> ensemble.predict(X_test).tolist(), ensemble.predict_proba(X_test).shape
    (['frog', 'dog', 'dog', 'cat'], (4, 3))

    scikit-learn's tools slice the samples axis:

    >>> from sklearn.model_selection import cross_val_score
    >>> cross_val_score(VotingEnsemble(strategy="soft"), X_validation, y_validation, cv=5).round(2).tolist()
    [0.9, 0.9, 0.95, 0.85, 0.9]
    """

    def __init__(self, strategy: str = "auto", weights=None, classes=None, members=None, random_state: int = 0,
                 metric: str = "accuracy"):
        self.strategy = strategy
        self.weights = weights
        self.classes = classes
        self.members = members
        self.random_state = random_state
        self.metric = metric

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.members is None:  # stored probabilities: 3-D, (samples, members, classes)
            tags.input_tags.two_d_array = False
            tags.input_tags.three_d_array = True
        return tags

    def fit(self, X, y) -> "VotingEnsemble":
        """Learn the members' weights (and, for ``auto``, the strategy) from ``X`` and labels ``y``; returns self."""
        if self.strategy not in VOTES:
            raise ValueError(f"strategy {self.strategy!r}: choose one of {', '.join(VOTES)}")
        if y is None:
            raise ValueError("VotingEnsemble requires y to be passed, but the target y is None")
        judge = get_metric(self.metric)
        y = column_or_1d(np.asarray(y), warn=True)
        check_classification_targets(y)  # a continuous target is "Unknown label type"
        probabilities = self._member_probabilities(X)
        samples, members, classes = probabilities.shape
        classes_ = np.arange(classes) if self.classes is None else np.asarray(self.classes)
        if len(classes_) != classes:
            raise ValueError(f"{len(classes_)} classes given for probabilities with {classes} columns")
        truth = self._class_indices(y, samples, classes_)
        base_weights = np.ones(members) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        fit_rows, judge_rows = selection_split(samples, self.random_state)
        scores, accuracies, fitted = {}, {}, {}
        for strategy in STRATEGIES if self.strategy == "auto" else (self.strategy,):
            fitted[strategy] = self._fit_strategy(strategy, probabilities[fit_rows], truth[fit_rows], base_weights,
                                                  judge.name)
            shares = self._shares(strategy, *fitted[strategy], probabilities[judge_rows])
            accuracies[strategy] = accuracy(shares.argmax(axis=1), truth[judge_rows])
            scores[strategy] = accuracies[strategy] if judge.name == "accuracy" else judge(truth[judge_rows], shares)
        # The first best wins a tie, so auto prefers the simpler strategy.
        self.classes_ = classes_
        self.n_members_ = members
        self.scores_ = scores
        self.accuracies_ = accuracies
        self.strategy_ = judge.best_of(scores)
        self.weights_, self.stacker_ = fitted[self.strategy_]
        self.validation_score_ = scores[self.strategy_]
        self.validation_accuracy_ = accuracies[self.strategy_]
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Per-sample class scores summing to 1, shaped ``(samples, classes)``: the weighted mean probability
        (soft strategies) or the weighted vote shares (``majority``; the tie-break winner gets a 1e-6 edge)."""
        check_is_fitted(self)
        probabilities = self._member_probabilities(X)
        if probabilities.shape[1:] != (self.n_members_, len(self.classes_)):
            raise ValueError(f"X has {probabilities.shape[1]} members and {probabilities.shape[2]} classes; "
                             f"fitted with {self.n_members_} and {len(self.classes_)}")
        return self._shares(self.strategy_, self.weights_, self.stacker_, probabilities)

    def predict(self, X) -> np.ndarray:
        """The voted label of each sample (one of ``classes_``)."""
        winners = self.predict_proba(X).argmax(axis=1)
        return self.classes_[winners]

    def _fit_strategy(self, strategy: str, probabilities: np.ndarray, truth: np.ndarray, base_weights: np.ndarray,
                      metric: str) -> tuple[np.ndarray, LogisticStacker | None]:
        """(weights, level-2 stacker or None) for ``strategy``, learned from samples-first ``probabilities``."""
        runs_first = np.ascontiguousarray(probabilities.transpose(1, 0, 2))
        weights = strategy_weights(strategy, runs_first, truth, base_weights, metric)
        if strategy != "logistic":
            return weights, None
        return weights, LogisticStacker(random_state=self.random_state).fit(probabilities, truth)

    @staticmethod
    def _shares(strategy: str, weights: np.ndarray, stacker: LogisticStacker | None, probabilities: np.ndarray) -> np.ndarray:
        if stacker is not None:
            return stacker.predict_proba(probabilities)
        runs_first = np.ascontiguousarray(probabilities.transpose(1, 0, 2))
        return vote_shares(runs_first, weights, hard=strategy == "majority")

    def _member_probabilities(self, X) -> np.ndarray:
        """``(samples, members, classes)`` float64 probabilities: ``X`` itself, or the members' predictions on it."""
        if self.members is None:
            X = check_array(X, dtype=np.float64, allow_nd=True, ensure_2d=False, ensure_min_samples=1,
                            input_name="X")
            if X.ndim != 3 or X.shape[1] == 0 or X.shape[2] == 0:
                raise ValueError(f"expected X shaped (samples, members, classes) with at least one member and "
                                 f"class, got shape {X.shape}; one member's (samples, classes) is X[:, None, :]")
            return X
        if len(self.members) == 0:
            raise ValueError("members=[]: give at least one fitted model")
        outputs = []
        for member in self.members:
            if hasattr(member, "predict_proba"):
                outputs.append(member.predict_proba(X))
            else:  # a Keras model, whose predict gives probabilities
                outputs.append(member.predict(X, verbose=0))
        outputs = [np.asarray(output, dtype=np.float64) for output in outputs]
        shapes = {output.shape for output in outputs}
        if len(shapes) != 1 or len(outputs[0].shape) != 2:
            raise ValueError(f"members' probabilities must all be (samples, classes) and alike, got {sorted(shapes)}")
        return np.stack(outputs, axis=1)

    @staticmethod
    def _class_indices(y, samples: int, classes: np.ndarray) -> np.ndarray:
        if len(y) != samples:
            raise ValueError(f"{len(y)} labels for {samples} samples")
        index = {label: position for position, label in enumerate(classes.tolist())}
        unknown = sorted({label for label in y.tolist() if label not in index}, key=str)
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not among the classes {classes.tolist()}")
        return np.array([index[label] for label in y.tolist()], dtype=np.intp)
