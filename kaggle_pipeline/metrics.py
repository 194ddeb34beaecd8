"""The metrics a store can be judged by, registered by name (METRIC=, ``--metric``).

Each metric is a function of the true class indices ``(samples,)`` and class probabilities
``(samples, classes)`` returning one score, with ``greater_is_better`` and the rules built on it:

    accuracy   share of rows whose most probable class is the true one
    logloss    mean -ln(probability of the true class), of the probabilities as a submission writes them:
               clipped to [CLIP, 1 - CLIP] and each row renormalised (``clip_probabilities``). Lower is better.
    auc        ROC AUC: binary, of the positive class (the second class, ``Competition.classes[1]``);
               multiclass, the macro mean of one-vs-rest. NaN where the rows hold a single class.
    f1_macro   F1 of the most probable class, unweighted mean over the classes (absent classes count 0)
    f1_micro   F1 pooled over the classes (Plant Seedlings): with one label per image it is the accuracy
    f1         binary F1 of the positive class (the second class, as for auc) predicted as the most probable:
               what Kaggle's "F1" scores for two classes; it needs exactly two (``check_classes``)
    map@3, map@5  mean average precision of the k most probable classes (Humpback Whale Identification's
               MAP@5): a row scores 1/rank of its true class among them, 0 when it is not among them
    qwk        quadratic weighted kappa of the most probable class (APTOS 2019's grades): disagreements cost
               the square of their distance in grades, so it needs classes that are consecutive integers
               (``check_classes``), whose index distance is their grade distance

``loss(score)`` is what hyperopt minimises (``1 - score`` for a metric in [0, 1] where greater is better, so
accuracy's loss is the ``1 - accuracy`` the search always minimised; the score itself for logloss).
``passes(score, threshold)``: a threshold is a minimum where greater is better, a maximum for logloss.

A store is judged by one metric, recorded in its store.json (``metric``; a store without one is an
accuracy store, as every store made before metrics existed). Keras still trains on cross-entropy and its
per-epoch ``val_accuracy`` still drives EarlyStopping (plateau runs) and the early-abort rule; the store's metric is
computed from each run's validation probabilities when the run ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from kaggle_pipeline.errors import ParameterError, PipelineError

# Probabilities written to a submission (and scored by logloss) are kept this far from 0 and 1. A confident
# wrong answer then costs at most -ln(0.001) = 6.9 instead of the 34.5 of Kaggle's own 1e-15 clip, while a
# confident right one gives up -ln(1 - (classes - 1) * 0.001): 0.009 with 10 classes (docs: README, METRIC=).
CLIP = 1e-3


def clip_probabilities(probabilities: np.ndarray, eps: float = CLIP) -> np.ndarray:
    """Rows clipped to [eps, 1 - eps] and renormalised to sum to 1 (non-finite cells become eps first)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    probabilities = np.where(np.isfinite(probabilities), probabilities, eps)
    clipped = np.clip(probabilities, eps, 1 - eps)
    return clipped / clipped.sum(axis=1, keepdims=True)


def accuracy(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    y_true = np.asarray(y_true)
    if not len(y_true):
        return math.nan
    return float(np.mean(np.asarray(probabilities).argmax(axis=1) == y_true))


def logloss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    y_true = np.asarray(y_true)
    if not len(y_true):
        return math.nan
    clipped = clip_probabilities(probabilities)
    return float(-np.mean(np.log(clipped[np.arange(len(y_true)), y_true])))


def auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities, dtype=np.float64)
    classes = probabilities.shape[1]
    if len(np.unique(y_true)) < 2:
        return math.nan
    try:
        if classes == 2:
            return float(roc_auc_score(y_true, probabilities[:, 1]))
        if len(np.unique(y_true)) < classes:
            return math.nan  # one-vs-rest needs every class among the rows
        rows = clip_probabilities(probabilities, 1e-12)
        return float(roc_auc_score(y_true, rows, multi_class="ovr", average="macro", labels=np.arange(classes)))
    except ValueError:
        return math.nan


def _f1(y_true: np.ndarray, probabilities: np.ndarray, average: str) -> float:
    from sklearn.metrics import f1_score

    y_true = np.asarray(y_true)
    if not len(y_true):
        return math.nan
    probabilities = np.asarray(probabilities)
    return float(f1_score(y_true, probabilities.argmax(axis=1), labels=np.arange(probabilities.shape[1]),
                          average=average, zero_division=0))


def f1_macro(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    return _f1(y_true, probabilities, "macro")


def f1_micro(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    return _f1(y_true, probabilities, "micro")


def f1_binary(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """F1 of class 1 (the positive class); NaN unless there are two classes."""
    if np.asarray(probabilities).shape[1] != 2:
        return math.nan
    return _f1(y_true, probabilities, "binary")


def ranked_classes(probabilities: np.ndarray, guesses: int) -> np.ndarray:
    """Each row's ``guesses`` most probable class indices, best first (a tie goes to the lower index)."""
    return np.argsort(-np.asarray(probabilities, dtype=np.float64), axis=1, kind="stable")[:, :guesses]


def mean_average_precision(y_true: np.ndarray, probabilities: np.ndarray, guesses: int) -> float:
    y_true = np.asarray(y_true)
    if not len(y_true):
        return math.nan
    hits = ranked_classes(probabilities, guesses) == y_true[:, np.newaxis]
    return float((hits / np.arange(1, hits.shape[1] + 1)).sum(axis=1).mean())


def quadratic_weighted_kappa(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Cohen's kappa with quadratic weights over the class indices, as Kaggle computes it for grades 0..N-1:
    1 is perfect agreement, 0 what chance gives, negative worse than chance. NaN where it is undefined (every
    row and every prediction the same single class)."""
    probabilities = np.asarray(probabilities)
    return kappa_of_decisions(y_true, probabilities.argmax(axis=1), probabilities.shape[1])


def kappa_of_decisions(y_true: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """Quadratic weighted kappa of predicted class indices, from their confusion matrix (scikit-learn's
    ``cohen_kappa_score(weights="quadratic")``, without its per-call cost: the grade cut-off search,
    estimator.best_grade_cutoffs, scores thousands of candidates). NaN where it is undefined."""
    y_true, predicted = np.asarray(y_true, dtype=np.intp), np.asarray(predicted, dtype=np.intp)
    if not len(y_true):
        return math.nan
    observed = np.bincount(y_true * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    weights = np.subtract.outer(np.arange(classes), np.arange(classes)) ** 2
    chance = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / len(y_true)
    disagreement = (weights * chance).sum()
    return float(1.0 - (weights * observed).sum() / disagreement) if disagreement > 0 else math.nan


@dataclass(frozen=True)
class Metric:
    name: str
    function: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    description: str
    # The default threshold: the best search trial's score, this much worse (logloss: also 10% of it).
    margin: float = 0.01
    # Where the score is only defined for classes that are grades (qwk): consecutive integers in numeric order.
    needs_grades: bool = False
    # Where the score is only defined for two classes, one of them positive (binary f1).
    needs_two_classes: bool = False
    # The lowest score it gives (kappa can be below 0: worse than chance).
    lowest: float = 0.0

    def __call__(self, y_true, probabilities) -> float:
        """The score; a non-finite probability (a diverged run) scores as badly as the metric allows."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.size and not np.isfinite(probabilities).all() and self.name != "logloss":
            return self.lowest
        return self.function(y_true, probabilities)

    @property
    def worst(self) -> float:
        """The worst score the metric gives (logloss: every row at the clip), for a run with no usable score."""
        return self.lowest if self.greater_is_better else round(-math.log(CLIP), 6)

    def loss(self, score: float | None) -> float:
        """What a search minimises: ``1 - score`` (greater is better), the score itself otherwise; a missing or
        NaN score counts as the worst (finite, so it can be stored as JSON)."""
        if score is None or not math.isfinite(score):
            score = self.worst
        return 1.0 - score if self.greater_is_better else score

    def passes(self, score: float | None, threshold: float) -> bool:
        """Whether ``score`` reaches ``threshold`` (a minimum, or for logloss a maximum)."""
        if score is None or not math.isfinite(score):
            return False
        return score >= threshold if self.greater_is_better else score <= threshold

    def default_threshold(self, best: float) -> float:
        """The threshold a run must reach by default: the best search trial's score, a margin worse."""
        if self.greater_is_better:
            return round(max(self.lowest, best - self.margin), 6)
        return round(best + max(self.margin, 0.1 * best), 6)

    def best_of(self, scores: dict) -> str:
        """The key of the best score (the first on a tie; NaN counts as the worst)."""
        return min(scores, key=lambda key: self.loss(scores[key]))

    def score_or_worst(self, y_true, probabilities) -> float:
        """The score, or the worst one where it is undefined (NaN): always a finite number to record."""
        score = self(y_true, probabilities)
        return score if math.isfinite(score) else self.worst

    def check_classes(self, classes: list[str], source) -> None:
        """PipelineError naming ``source`` where the metric cannot score these classes (qwk: not grades; binary
        f1: not two classes)."""
        shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
        if self.needs_two_classes and len(classes) != 2:
            raise PipelineError(f"{source}: metric {self.name} is the F1 of the positive class of two classes; the "
                                f"training labels hold {len(classes)} ({shown}): use f1_macro or f1_micro")
        if not self.needs_grades:
            return
        try:
            grades = [int(label) for label in classes]
        except ValueError:
            grades = None
        if grades is None or grades != list(range(grades[0], grades[0] + len(grades))):
            raise PipelineError(f"{source}: metric {self.name} needs classes that are consecutive integers (grades such "
                                f"as 0-4, each with training images); the training labels hold {shown}")

    def reachable(self, threshold: float) -> bool:
        """Whether a score can reach ``threshold``: from the lowest score to 1, or for logloss 0 or more."""
        return self.lowest <= threshold <= 1 if self.greater_is_better else threshold >= 0

    @property
    def score_range(self) -> str:
        if not self.greater_is_better:
            return "0 or more"
        return f"between {self.lowest:g} and 1"

    def check_threshold(self, threshold: float | None) -> None:
        """ParameterError unless ``threshold`` is one the metric can reach (``reachable``)."""
        if threshold is not None and not self.reachable(threshold):
            raise ParameterError("threshold", threshold, f"a validation {self.name}, {self.score_range}")

    @property
    def comparison(self) -> str:
        return ">=" if self.greater_is_better else "<="


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    METRICS[metric.name] = metric
    return metric


register_metric(Metric("accuracy", accuracy, True, "share of rows whose most probable class is right"))
register_metric(Metric("logloss", logloss, False, f"mean -ln p(true class), probabilities clipped at {CLIP:g}",
                       margin=0.02))
register_metric(Metric("auc", auc, True, "ROC AUC (binary: positive class; multiclass: macro one-vs-rest)"))
register_metric(Metric("f1_macro", f1_macro, True, "F1 of the most probable class, mean over classes"))
register_metric(Metric("f1_micro", f1_micro, True, "F1 pooled over classes (one label per image: the accuracy)"))
register_metric(Metric("f1", f1_binary, True, "F1 of the positive class (two classes)", needs_two_classes=True))
for _guesses in (3, 5):
    register_metric(Metric(f"map@{_guesses}", lambda y_true, probabilities, k=_guesses: mean_average_precision(
        y_true, probabilities, k), True, f"mean average precision of the {_guesses} most probable classes"))
register_metric(Metric("qwk", quadratic_weighted_kappa, True, "quadratic weighted kappa of grades 0..N-1",
                       needs_grades=True, lowest=-1.0))

DEFAULT_METRIC = "accuracy"


def get_metric(name: str | None) -> Metric:
    """The registered metric ``name`` (None: accuracy); ValueError naming the choices otherwise."""
    name = DEFAULT_METRIC if name is None else name
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}: choose one of {', '.join(METRICS)}")
    return METRICS[name]


def auto_metric(competition) -> str:
    """logloss where the sample submission asks for probabilities (a column per class, or a binary label
    column with fractional placeholders such as 0.5); map@k where it asks for k ranked guesses (k = 3 or 5);
    accuracy otherwise."""
    if competition.submission_format == "ranked_labels":
        ranked = f"map@{competition.ranked_guesses}"
        return ranked if ranked in METRICS else "accuracy"
    return "logloss" if competition.submission_format != "label" else "accuracy"
