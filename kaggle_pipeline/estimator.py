"""The vote strategies of kaggle_pipeline.vote as scikit-learn estimators: ``VotingEnsemble`` and the ``logistic``
strategy's level-2 ``LogisticStacker``, both samples first.

A module of its own because scikit-learn costs about 1.4 s to import: the command line reads the strategies'
names from kaggle_pipeline.vote (numpy only) for every stage, and only the stages that vote import this.
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

from kaggle_pipeline.metrics import get_metric, kappa_of_decisions
from kaggle_pipeline.vote import STRATEGIES, VOTES, accuracy, selection_split, strategy_weights, vote_shares

# The level-2 stacker's inverse regularisation strengths, tried by cross-validation, and the probability its
# log-probability inputs are floored at (a member's 0 would be -inf; 1e-4 keeps the inputs in [-9.2, 0]).
LOGISTIC_CS = (0.01, 0.1, 1.0, 10.0)
LOGISTIC_FOLDS = 3
LOGISTIC_FLOOR = 1e-4


def best_cutoff(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The cut-off on the second class's probability with the best binary F1 of ``truth`` (class indices 0/1).

    Every distinct probability is tried at once (rows sorted by it, true positives counted cumulatively); the
    cut-off is the midpoint between the best one and the next lower, so a sample between them counts as the
    fitting rows suggest. A tie goes to the cut-off nearest 0.5 (the most probable class); with no positive row
    F1 is 0 whatever the cut-off, and 0.5 is kept.
    """
    scores, truth = np.asarray(probabilities, dtype=np.float64)[:, 1], np.asarray(truth)
    positives = int((truth == 1).sum())
    if positives == 0 or len(truth) == 0:
        return 0.5
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_truth = scores[order], truth[order] == 1
    # The last row of each run of equal scores: calling everything from there up positive.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    true_positives = np.cumsum(sorted_truth)[ends]
    called = ends + 1
    f1 = 2 * true_positives / (called + positives)
    lower = np.r_[sorted_scores[ends[1:]], -np.inf]
    cutoffs = np.where(np.isfinite(lower), (sorted_scores[ends] + lower) / 2, sorted_scores[ends] / 2)
    best = np.flatnonzero(np.isclose(f1, f1.max(), rtol=0, atol=1e-12))
    return float(cutoffs[best[np.argmin(np.abs(cutoffs[best] - 0.5))]])


# The grade cut-offs' search: passes over the cut-offs, and the candidate values tried for each in a pass.
GRADE_PASSES = 4
GRADE_CANDIDATES = 64


def best_grade_cutoffs(probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Cut-offs on the expected grade (sum over k of k * p_k) with the best quadratic weighted kappa of ``truth``.

    What APTOS 2019's notebooks did to regression outputs (their "optimized rounder"): a row split between two
    likely grades (1 and 3, each at 0.45) is written as the grade between them, which kappa punishes a quarter as
    much as the wrong one of the two, and the cut-offs move where the classes' sizes say. Coordinate search from rounding (0.5, 1.5, ...): each cut-off
    in turn takes the best of GRADE_CANDIDATES quantiles of the expected grades between its neighbours (so they
    stay in order), moving only for a strictly better kappa, GRADE_PASSES times over.
    """
    probabilities, truth = np.asarray(probabilities, dtype=np.float64), np.asarray(truth, dtype=np.intp)
    classes = probabilities.shape[1]
    expected = probabilities @ np.arange(classes)
    cutoffs = np.arange(classes - 1) + 0.5
    best = _grade_score(truth, np.digitize(expected, cutoffs), classes)
    for _ in range(GRADE_PASSES):
        for index in range(classes - 1):
            low = cutoffs[index - 1] if index else -np.inf
            high = cutoffs[index + 1] if index < classes - 2 else np.inf
            between = expected[(expected > low) & (expected < high)]
            if len(between) == 0:
                continue
            for candidate in np.unique(np.quantile(between, np.linspace(0, 1, GRADE_CANDIDATES))):
                trial = cutoffs.copy()
                trial[index] = candidate
                score = _grade_score(truth, np.digitize(expected, trial), classes)
                if score > best + 1e-12:
                    best, cutoffs = score, trial
    return cutoffs


def _grade_score(truth: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """metrics.kappa_of_decisions, -inf where it is undefined (so that any defined kappa beats it)."""
    kappa = kappa_of_decisions(truth, predicted, classes)
    return kappa if np.isfinite(kappa) else -np.inf


def decide(shares: np.ndarray, cutoffs: np.ndarray | None) -> np.ndarray:
    """Class indices: the most probable class, or with cut-offs the class of the expected class index (binary:
    the second class's probability) between them."""
    if cutoffs is None:
        return shares.argmax(axis=1)
    return np.digitize(shares @ np.arange(shares.shape[1]), cutoffs)


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
    None), ``cutoffs_`` (binary F1 and kappa only, else None: where ``predict`` changes class along the expected
    class index, learned on the same half as the weights), ``scores_`` (each fitted strategy's score by ``metric`` on
    the judging half), ``accuracies_`` (the same strategies' accuracy), ``validation_score_``
    (``scores_[strategy_]``) and ``validation_accuracy_`` (``accuracies_[strategy_]``).

    Binary F1 and quadratic weighted kappa score decisions, not probabilities, and the most probable class is
    rarely the decision that maximises them: F1 gains from calling a rare class at less than 0.5, kappa from
    writing the grade between two likely ones. For these each strategy also learns ``cutoffs_`` on its fitting
    half (``best_cutoff``: one on the second class's probability; ``best_grade_cutoffs``: one between each two
    grades, on the expected grade), and is judged on the other half by the decisions it gives.

    >>> import numpy as np
    >>> from kaggle_pipeline.estimator import VotingEnsemble
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
        scores, accuracies, fitted, cutoffs = {}, {}, {}, {}
        for strategy in STRATEGIES if self.strategy == "auto" else (self.strategy,):
            fitted[strategy] = self._fit_strategy(strategy, probabilities[fit_rows], truth[fit_rows], base_weights,
                                                  judge.name)
            cutoffs[strategy] = self._learn_cutoffs(
                judge, self._shares(strategy, *fitted[strategy], probabilities[fit_rows]), truth[fit_rows])
            shares = self._shares(strategy, *fitted[strategy], probabilities[judge_rows])
            decided = decide(shares, cutoffs[strategy])
            accuracies[strategy] = accuracy(decided, truth[judge_rows])
            if judge.name == "accuracy":
                scores[strategy] = accuracies[strategy]
            else:  # a cut-off's decisions are scored as what is written: one-hot labels
                scores[strategy] = judge(truth[judge_rows], shares if cutoffs[strategy] is None else np.eye(classes)[decided])
        # The first best wins a tie, so auto prefers the simpler strategy.
        self.classes_ = classes_
        self.n_members_ = members
        self.scores_ = scores
        self.accuracies_ = accuracies
        self.strategy_ = judge.best_of(scores)
        self.weights_, self.stacker_ = fitted[self.strategy_]
        self.cutoffs_ = cutoffs[self.strategy_]
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
        """The voted label of each sample (one of ``classes_``): the most probable, or by ``cutoffs_``."""
        winners = decide(self.predict_proba(X), self.cutoffs_)
        return self.classes_[winners]

    @staticmethod
    def _learn_cutoffs(judge, shares: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
        """The cut-offs ``predict`` decides by, for the metrics that score decisions (the class docstring)."""
        if judge.needs_two_classes and shares.shape[1] == 2:
            return np.array([best_cutoff(shares, truth)])
        if judge.needs_grades:
            return best_grade_cutoffs(shares, truth)
        return None

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
