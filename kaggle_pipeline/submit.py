"""Vote over the kept runs (and the stacker) and write a submission CSV exactly in the sample submission's form.

The vote strategy is one of kaggle_pipeline.vote's, or ``auto``: the best by the metric (the store's, or
``--metric``) on the half of the validation split that no strategy was fitted on. Every strategy's score is
printed (and the local score where an answer key exists) so the user sees what the choice was between.

Four formats, as the sample submission asks (``Competition.submission_format_for``):

    label                id + label column: each row's voted class (METRIC=f1 and qwk: by the cut-offs the vote
                         learned, ``VotingEnsemble.cutoffs_``)
    binary_probability   id + label column, two classes, with fractional placeholders (0.5) or METRIC=auc or
                         logloss: the probability of the positive class (the second class: '1' of 0/1, 'dog' of
                         cat/dog)
    class_probabilities  id + one column per class (State Farm: img,c0,...,c9): each class's probability
    ranked_labels        id + label column whose placeholders are k space-separated labels (Humpback Whale
                         Identification, MAP@5): each row's k most probable classes, best first

With k-fold members (``ensemble --folds K``, kaggle_pipeline.ensemble) the voters are rounds: round r is the r-th
kept run of each fold, so its K runs hold out each fold once. Its validation predictions are its runs' held-out
(out-of-fold) predictions put together, one row per labelled image, each from the one run that did not train on
it; its test predictions are its runs' mean. Every strategy (weights, greedy selection, auto) is then fitted on
one half of these out-of-fold rows and judged on the other half, as above on the fixed split's validation
images; runs of an unfinished round are left out (a line says so), and so is the stacker, whose predictions are
of the fixed split's validation images only. Stores without folds vote exactly as before.

Probabilities are the vote's (soft strategies: the weighted mean of the members' probabilities; majority: the
vote shares), clipped to [CLIP, 1 - CLIP] and renormalised (kaggle_pipeline.metrics.clip_probabilities),
written with 6 decimals.

The CSV text is rendered, parsed back as Kaggle would read it, and checked against the rules Kaggle
applies before anything is written: the same header as the sample (names and order), one id column, the
same ids (same set, same count, no duplicates), and every label one of the competition's classes, or every
probability a finite number in [0, 1] with each row of class probabilities summing to 1. A submission that
fails is never written. Files appear atomically: ``submission-<timestamp>.csv``, then ``latest.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data import Competition, answer_key_labels, read_answer_key, read_sample_submission
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.estimator import VotingEnsemble, decide
from kaggle_pipeline.metrics import METRICS, clip_probabilities, get_metric, ranked_classes
from kaggle_pipeline.store import Run, SubmissionStore, SubmissionSummary, kept_runs, library_versions
from kaggle_pipeline.vote import STRATEGIES, VOTES, accuracy
from kaggle_pipeline.workspace import Workspace, check_outside_data

logger = logging.getLogger(__name__)


FORMATS = ("label", "binary_probability", "class_probabilities", "ranked_labels")
# How far a row of class probabilities may sum from 1 (6 decimals per cell leave at most 5e-7 each).
SUM_TOLERANCE = 1e-3


def validate_submission(table: pd.DataFrame, sample: pd.DataFrame, classes: list[str], where: str,
                        submission_format: str | None = None) -> None:
    """Raise ``PipelineError`` naming the first Kaggle rule ``table`` breaks.

    The headers are compared as written (``attrs["header"]``, set by ``read_submission_table`` and
    ``parse_submission``), not as pandas renamed them: an empty name and pandas' ``Unnamed: 1`` are not equal.
    ``submission_format`` is one of FORMATS; None: class probabilities where the sample has a column per
    class, labels otherwise.
    """
    if submission_format is None:
        submission_format = "class_probabilities" if sample.shape[1] > 2 else "label"
    header, sample_header = raw_columns(table), raw_columns(sample)
    if header != sample_header:
        raise PipelineError(f"{where}: header {header} differs from the sample submission's {sample_header}")
    if list(table.columns) != list(sample.columns):
        raise PipelineError(f"{where}: header {list(table.columns)} differs from the sample submission's {list(sample.columns)}")
    id_column = sample.columns[0]
    if list(table.columns).count(id_column) != 1:
        raise PipelineError(f"{where}: needs exactly one id column {id_column!r}")
    if len(table) != len(sample):
        raise PipelineError(f"{where}: {len(table)} rows, the sample submission has {len(sample)}")
    ids = table[id_column]
    if ids.duplicated().any():
        raise PipelineError(f"{where}: duplicate id {ids[ids.duplicated()].iloc[0]!r}")
    missing = set(sample[id_column]) - set(ids)
    if missing:
        raise PipelineError(f"{where}: id {sorted(missing)[0]!r} from the sample submission is missing ({len(missing)} ids)")
    unexpected = set(ids) - set(sample[id_column])
    if unexpected:
        raise PipelineError(f"{where}: id {sorted(unexpected)[0]!r} is not in the sample submission")
    if submission_format == "label":
        label_column = sample.columns[1]
        allowed = set(classes)
        bad = table[label_column][~table[label_column].isin(allowed)]
        if len(bad):
            raise PipelineError(f"{where}: label {bad.iloc[0]!r} is not one of the {len(classes)} classes")
        return
    if submission_format == "ranked_labels":
        _check_ranked(table, sample, classes, where)
        return
    if submission_format not in FORMATS:
        raise ValueError(f"submission format {submission_format!r}: one of {', '.join(FORMATS)}")
    columns = list(sample.columns[1:])
    values = np.column_stack([_probability_column(table, column, where) for column in columns])
    if submission_format == "class_probabilities":
        sums = values.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1) > SUM_TOLERANCE)
        if len(off):
            row = int(off[0])
            raise PipelineError(f"{where}: row {row + 2} (id {table[id_column].iloc[row]!r}): the class probabilities "
                                f"sum to {sums[row]:.6g}, not 1 ({len(off)} such rows)")


def _check_ranked(table: pd.DataFrame, sample: pd.DataFrame, classes: list[str], where: str) -> None:
    """Each row's label cell: as many space-separated guesses as the sample's (or every class, where there are
    fewer), each one of the classes, none twice."""
    column = sample.columns[1]
    wanted = min(len(sample[column].iloc[0].split()), len(classes))
    allowed = set(classes)
    for row, cell in enumerate(table[column]):
        guesses = cell.split()
        unknown = [guess for guess in guesses if guess not in allowed]
        if len(guesses) != wanted:
            problem = f"{len(guesses)} guesses, the sample's rows have {wanted}"
        elif unknown:
            problem = f"{unknown[0]!r} is not one of the {len(classes)} classes"
        elif len(set(guesses)) != len(guesses):
            problem = "a class guessed twice"
        else:
            continue
        raise PipelineError(f"{where}: column {column!r}, row {row + 2} (id {table[sample.columns[0]].iloc[row]!r}): "
                            f"{problem}")


def _probability_column(table: pd.DataFrame, column: str, where: str) -> np.ndarray:
    """A column of probabilities as numbers: every cell a finite number in [0, 1], else one line naming it."""
    cells = table[column].astype(str)
    numbers = pd.to_numeric(cells.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    for problem, bad in (("is not a number", np.isnan(numbers)), ("is not finite", np.isinf(numbers)),
                         ("is outside [0, 1]", (numbers < 0) | (numbers > 1))):
        rows = np.flatnonzero(bad)
        if len(rows):
            row = int(rows[0])
            raise PipelineError(f"{where}: column {column!r}, row {row + 2}: {cells.iloc[row]!r} {problem} "
                                f"(a probability is a number from 0 to 1; {len(rows)} such cells)")
    return numbers


def raw_columns(table: pd.DataFrame) -> list[str]:
    """The table's header as written in its file, or its column names when it was not read from one."""
    columns = [str(column) for column in table.columns]
    # attrs travel with copies and renames: the header as read holds only while the columns are those read.
    if table.attrs.get("columns") == columns and "header" in table.attrs:
        return list(table.attrs["header"])
    return columns


def parse_submission(text: str) -> pd.DataFrame:
    """A rendered submission read back as Kaggle would: text cells, and its header as written."""
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    table.attrs["header"] = next(csv.reader(io.StringIO(text, newline="")), [])
    table.attrs["columns"] = [str(column) for column in table.columns]
    return table


def render_submission(competition: Competition, predicted: np.ndarray, submission_format: str = "label") -> str:
    """The submission's CSV text: ``predicted`` holds class indices (``label``) or class probabilities shaped
    ``(test images, classes)`` in ``competition.classes`` order (the probability formats), clipped and
    renormalised here (metrics.clip_probabilities) and written with 6 decimals."""
    if submission_format == "label":
        table = pd.DataFrame({
            competition.id_column: competition.test_ids,
            competition.label_column: [competition.classes[index] for index in predicted],
        })
        return table.to_csv(index=False, lineterminator="\n")
    if submission_format == "ranked_labels":
        ranked = ranked_classes(predicted, competition.ranked_guesses)
        table = pd.DataFrame({
            competition.id_column: competition.test_ids,
            competition.label_column: [" ".join(competition.classes[index] for index in row) for row in ranked],
        })
        return table.to_csv(index=False, lineterminator="\n")
    probabilities = clip_probabilities(predicted)
    if submission_format == "binary_probability":
        columns = {competition.label_column: probabilities[:, 1]}  # the positive class: classes[1]
    elif submission_format == "class_probabilities":
        position = {name: index for index, name in enumerate(competition.classes)}
        columns = {name: probabilities[:, position[name]] for name in competition.submission_columns}
    else:
        raise ValueError(f"submission format {submission_format!r}: one of {', '.join(FORMATS)}")
    table = pd.DataFrame({competition.id_column: competition.test_ids, **columns})
    return table.to_csv(index=False, lineterminator="\n", float_format="%.6f")


def local_score(solution_path: Path, submission: pd.DataFrame, id_column: str, label_column: str) -> float:
    """Accuracy against an answer key — for local feedback only, never for selection."""
    truth = read_answer_key(solution_path, id_column, label_column)
    predicted = dict(zip(submission[id_column], submission[label_column], strict=True))
    if set(truth) != set(predicted):
        raise PipelineError(f"{solution_path}: its ids do not match the submission's ids")
    return float(np.mean([predicted[key] == label for key, label in truth.items()]))


@dataclass
class Members:
    """The voters' stored predictions, stacked samples first ``(rows, members, classes)`` as VotingEnsemble
    takes them, with their base weights (one per member, in the order of ``names``)."""

    names: list[str]
    validation: np.ndarray
    test: np.ndarray
    weights: np.ndarray
    records: list[dict]
    threshold: float
    stacker: dict | None
    # The labelled images the validation rows are (indices into competition.x_train) and their labels: the fixed
    # split's validation images, or with folds every labelled image (out-of-fold rows).
    rows: np.ndarray | None = None
    y: np.ndarray | None = None
    out_of_fold: bool = False
    # With folds, the rows each fold holds out: a run is scored on its own fold, as the threshold kept it.
    fold_rows: list[np.ndarray] | None = None

    @property
    def runs(self) -> int:
        """How many members are runs (or rounds of runs); the stacker, if any, is last."""
        return self.validation.shape[1] - (self.stacker is not None)


def stored_predictions(workspace: Workspace, threshold: float | None = None, stack_weight: float = 1.0) -> Members:
    """The kept runs' predictions (at ``threshold``, default the ensemble's) and the stacker's, if stored.

    For notebooks: ``VotingEnsemble(weights=members.weights).fit(members.validation, workspace.y_validation)``.
    """
    if stack_weight < 0:
        raise ParameterError("stack_weight", stack_weight, "must be 0 or more")
    store, competition = workspace.store, workspace.competition
    if threshold is None:
        settings = store.ensemble_settings()
        if settings is None:
            raise PipelineError(f"{store.ensemble_path}: not found; run 'make ensemble' first")
        threshold = settings.threshold
    # Only read: a damaged run is skipped here and moved aside (and retrained) by the next 'make ensemble'.
    metric = get_metric(workspace.metric)
    every_run = store.run_records(repair=False)
    records = kept_runs(every_run, threshold, metric.name)
    if not records:
        scores = {record["run"]: Run(record).score(metric.name) for record in every_run if record.get("status") == "done"}
        scores = {run: score for run, score in scores.items() if score is not None and math.isfinite(score)}
        remedy = "run 'make ensemble' first" if not scores else (
            f"run 'make ensemble' for more runs, or submit with a {'lower' if metric.greater_is_better else 'higher'} "
            f"THRESHOLD (the best of {len(scores)} finished run(s) scored {scores[metric.best_of(scores)]:.4f})")
        raise PipelineError(f"{store.runs_dir}: no run reaches validation {metric.name} {metric.comparison} "
                            f"{threshold:.4f}; {remedy}")

    folds = store.read_folds(len(competition.y_train))
    if folds is not None:
        return _round_members(workspace, folds, records, threshold, stack_weight)
    members = [(f"run {record['run']}", store.run_dir(record), store.load_predictions(record), 1.0) for record in records]
    stack = _stack_member(workspace, stack_weight)
    if stack is not None:
        members.append(stack)
    expected = {"validation": len(workspace.validation_index), "test": len(competition.x_test)}
    for _, where, arrays, _ in members:
        for key, rows in expected.items():
            if arrays[key].shape != (rows, competition.num_classes):
                raise PipelineError(f"{where}: {key} predictions have shape {arrays[key].shape}, "
                                    f"expected {(rows, competition.num_classes)}")
    stacker = None
    if stack is not None:
        stacker = {"name": stack[0], "weight": stack_weight,
                   "validation_accuracy": accuracy(stack[2]["validation"].argmax(axis=1), workspace.y_validation)}
    return Members(
        names=[name for name, _, _, _ in members],
        validation=np.stack([arrays["validation"] for _, _, arrays, _ in members], axis=1),
        test=np.stack([arrays["test"] for _, _, arrays, _ in members], axis=1),
        weights=np.array([weight for _, _, _, weight in members]),
        records=records, threshold=threshold, stacker=stacker,
        rows=workspace.validation_index, y=workspace.y_validation,
    )


def _round_members(workspace: Workspace, folds, records: list[dict], threshold: float, stack_weight: float) -> Members:
    """k-fold members: one voter per complete round of kept runs (the r-th kept run of every fold), its
    validation rows the out-of-fold predictions of every labelled image (see the module's docstring)."""
    store, competition = workspace.store, workspace.competition
    by_fold = [[record for record in records if record.get("fold") == fold] for fold in range(folds.k)]
    rounds = min(len(runs) for runs in by_fold)
    if rounds == 0:
        held = ", ".join(f"fold {fold + 1}: {len(runs)}" for fold, runs in enumerate(by_fold))
        raise PipelineError(f"{store.runs_dir}: no complete round of {folds.k} folds among the kept runs ({held}); "
                            "run 'make ensemble' first")
    left = len(records) - rounds * folds.k
    if left:
        logger.info(f"submit: {left} kept run(s) of an unfinished round of {folds.k} folds left out of the vote")
    if stack_weight != 0 and store.stack_record() is not None:
        logger.info("submit: the stacker predicts the fixed split's validation images, not every image out of fold; "
                    "left out of a k-fold vote")
    classes, labelled = competition.num_classes, len(competition.y_train)
    validation = np.full((labelled, rounds, classes), np.nan, dtype=np.float32)
    test = np.zeros((len(competition.x_test), rounds, classes), dtype=np.float32)
    used, names = [], []
    for round_number in range(rounds):
        runs = [by_fold[fold][round_number] for fold in range(folds.k)]
        for fold, record in enumerate(runs):
            arrays, rows = store.load_predictions(record), folds.members(fold)
            for key, expected in (("validation", len(rows)), ("test", len(competition.x_test))):
                if arrays[key].shape != (expected, classes):
                    raise PipelineError(f"{store.run_dir(record)}: {key} predictions have shape {arrays[key].shape}, "
                                        f"expected {(expected, classes)} (fold {fold + 1} of {folds.k})")
            validation[rows, round_number] = arrays["validation"]
            test[:, round_number] += arrays["test"] / folds.k
        used.extend(runs)
        names.append(f"round {round_number + 1} (runs {', '.join(str(record['run']) for record in runs)})")
    return Members(names=names, validation=validation, test=test, weights=np.ones(rounds),
                   records=sorted(used, key=lambda record: record["run"]), threshold=threshold, stacker=None,
                   rows=np.arange(labelled), y=competition.y_train, out_of_fold=True,
                   fold_rows=[folds.members(fold) for fold in range(folds.k)])


def make_submission(
    workspace: Workspace, submissions_dir: Path, threshold: float | None = None, vote: str = "auto",
    stack_weight: float = 1.0, metric: str | None = None,
) -> dict:
    """Vote over the kept runs (and the stacker, when ``make stack`` has run) and write the submission.

    Every strategy in vote.STRATEGIES is fitted on one half of the validation predictions and judged on the
    other by ``metric`` (default: the store's; another may be asked here, for the vote only: the runs are
    still kept by the store's metric and ``threshold``); ``vote`` picks one of them, or ``auto`` the best
    judged. The stacker votes with ``stack_weight`` (0 leaves it out).
    """
    if vote not in VOTES:
        raise ParameterError("vote", vote, f"choose one of {', '.join(VOTES)}")
    if metric not in (None, "auto", *METRICS):
        raise ParameterError("metric", metric, f"choose auto or one of {', '.join(METRICS)}")
    judge = get_metric(workspace.metric if metric in (None, "auto") else metric)
    competition = workspace.competition
    judge.check_classes(competition.classes, competition.source)
    submissions = SubmissionStore(submissions_dir, competition.name)
    check_outside_data("submissions_dir", submissions_dir, submissions.folder, competition.source)
    submission_format = competition.submission_format_for(judge.name)
    members = stored_predictions(workspace, threshold, stack_weight)
    records, threshold = members.records, members.threshold
    truth = answer_key_labels(competition)
    strategies = {}
    for strategy in STRATEGIES:
        ensemble = VotingEnsemble(strategy=strategy, weights=members.weights, metric=judge.name).fit(
            members.validation, members.y)
        probabilities = ensemble.predict_proba(members.test)
        labels = decide(probabilities, ensemble.cutoffs_)  # what predict gives, without voting a second time
        written = _as_written(probabilities, labels, submission_format)
        strategies[strategy] = {
            "validation_score": _finite(ensemble.validation_score_),
            "validation_accuracy": ensemble.validation_accuracy_,
            "local_score": None if truth is None else _finite(judge(truth, written)),
            "weights": [round(float(weight), 4) for weight in ensemble.weights_],
            **({} if ensemble.cutoffs_ is None else {"cutoffs": [round(float(cut), 6) for cut in ensemble.cutoffs_]}),
            "probabilities": probabilities,
            "labels": labels,
        }
    # The first best wins a tie, so auto prefers the simpler strategy (the order of STRATEGIES).
    chosen = vote if vote != "auto" else judge.best_of({name: strategies[name]["validation_score"] for name in STRATEGIES})
    run_accuracies = np.array([record["validation_accuracy"] for record in records])
    if members.stacker is not None:
        members.stacker["validation_score"] = _finite(judge(members.y, members.validation[:, -1]))
    # Each run alone: on the validation split, or with folds on the fold it held out (a round's out-of-fold
    # predictions are its runs', one fold each).
    run_scores = np.array([judge.score_or_worst(members.y[rows], members.validation[rows, index])
                           for index in range(members.runs) for rows in (members.fold_rows or [slice(None)])])

    text = render_submission(competition, strategies[chosen]["labels" if submission_format == "label" else "probabilities"],
                             submission_format)
    sample = read_sample_submission(competition.sample_submission)
    rendered = parse_submission(text)
    validate_submission(rendered, sample, competition.classes, where="submission", submission_format=submission_format)

    stamp = submissions.new_stamp()
    path = submissions.stamped_csv(stamp)
    summary = {
        "submission": str(path),
        "vote": chosen,
        "vote_requested": vote,
        "runs_voted": len(records),
        "runs": [record["run"] for record in records],
        "stacker": members.stacker,
        "threshold": threshold,
        "metric": judge.name,
        "store_metric": workspace.metric,
        "format": submission_format,
        "run_validation_accuracy_mean": float(run_accuracies.mean()),
        "run_validation_accuracy_std": float(run_accuracies.std()),
        "run_validation_score_mean": float(run_scores.mean()),
        "run_validation_score_std": float(run_scores.std()),
        "ensemble_validation_accuracy": strategies[chosen]["validation_accuracy"],
        "ensemble_validation_score": strategies[chosen]["validation_score"],
        "validation_judged_on": ("the half of the out-of-fold predictions (every labelled image, predicted by the "
                                 "runs that did not train on it) that no strategy was fitted on" if members.out_of_fold
                                 else "the half of the validation split that no strategy was fitted on"),
        **({"folds": workspace.store.read_folds().k, "rounds_voted": members.runs} if members.out_of_fold else {}),
        "strategies": {name: {key: value for key, value in result.items() if key not in ("probabilities", "labels")}
                       for name, result in strategies.items()},
        **({"cutoffs": strategies[chosen]["cutoffs"]} if "cutoffs" in strategies[chosen] and submission_format == "label" else {}),
        "local_score": None,
        "fingerprint": competition.fingerprint(),
        "versions": library_versions(),
    }
    if competition.solution is not None and submission_format == "label" and judge.name == "accuracy":
        summary["local_score"] = local_score(competition.solution, rendered, competition.id_column, competition.label_column)
    elif truth is not None:  # the metric of what was written (probabilities as rendered), against the answer key
        summary["local_score"] = strategies[chosen]["local_score"]
    submissions.write(stamp, text, SubmissionSummary.from_dict(summary, where=str(submissions.stamped_json(stamp))))
    _print_summary(summary, competition)
    return summary


def _as_written(probabilities: np.ndarray, labels: np.ndarray, submission_format: str) -> np.ndarray:
    """The test predictions as the metric reads what is written: one-hot labels, clipped probabilities, or for
    ranked guesses the vote's probabilities themselves (the guesses are their order)."""
    if submission_format == "label":
        return np.eye(probabilities.shape[1])[labels]
    if submission_format == "ranked_labels":
        return probabilities
    return clip_probabilities(probabilities)


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined score (AUC over one class) is recorded as null."""
    return float(value) if value is not None and np.isfinite(value) else None


def _stack_member(workspace: Workspace, stack_weight: float):
    """The stacker as a voting member (name, folder, predictions, weight), or None without one."""
    from kaggle_pipeline.stack import load_stack

    if stack_weight == 0:
        return None
    loaded = load_stack(workspace.store)
    if loaded is None:
        return None
    record, predictions = loaded
    folder = workspace.store.stack_dir
    if record.get("fingerprint") != workspace.competition.fingerprint():
        raise PipelineError(f"{folder}: the stacker was fitted on other data; rerun 'make stack'")
    return f"stacker (VGG19 {record['weights']} features -> RandomForest)", folder, predictions, stack_weight


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_summary(summary: dict, competition: Competition) -> None:
    metric, store_metric = summary["metric"], summary["store_metric"]
    comparison = get_metric(store_metric).comparison
    stacker = f" + {summary['stacker']['name']}, weight {summary['stacker']['weight']:g}" if summary["stacker"] else ""
    # Which class is positive decides what binary F1 and AUC score; it comes from the class order, so say it.
    positive = f" (positive class {competition.positive_class!r})" if metric in ("f1", "auc") and competition.positive_class else ""
    logger.info(f"submit: {summary['vote']} vote of {summary['runs_voted']} run(s) (validation {store_metric} "
        f"{comparison} {summary['threshold']:.4f}){stacker}; judged by {metric}{positive}; writes {summary['format'].replace('_', ' ')}")
    each = "runs' held-out fold" if "folds" in summary else "runs' validation"
    logger.info(f"  {each} {metric:9} {summary['run_validation_score_mean']:.4f} ± {summary['run_validation_score_std']:.4f}")
    if metric != "accuracy":
        logger.info(f"  {each} accuracy  {summary['run_validation_accuracy_mean']:.4f} ± "
                    f"{summary['run_validation_accuracy_std']:.4f}")
    if summary["stacker"]:
        logger.info(f"  stacker validation {metric:9} {_number(summary['stacker'].get('validation_score'))}")
    has_key = summary["local_score"] is not None
    other = metric != "accuracy"
    logger.info(f"  {'strategy':10} {f'{metric}*':>11}" + (f" {'accuracy*':>11}" if other else "")
                + (f" {'local score':>11}" if has_key else ""))
    for name, result in summary["strategies"].items():
        marker = "  <- used" if name == summary["vote"] else ""
        local = f" {_number(result['local_score']):>11}" if has_key else ""
        accuracy_cell = f" {result['validation_accuracy']:11.4f}" if other else ""
        logger.info(f"  {name:10} {_number(result['validation_score']):>11}{accuracy_cell}{local}{marker}")
    logger.info(f"  * on {summary['validation_judged_on']}"
        + ("" if summary["vote_requested"] != "auto" else f"; VOTE=auto picks the best {metric}"))
    logger.info(f"  ensemble validation {metric} {_number(summary['ensemble_validation_score'])}"
                + (f", accuracy {summary['ensemble_validation_accuracy']:.4f}" if other else ""))
    if "cutoffs" in summary and len(competition.classes) == 2 and metric == "f1":
        logger.info(f"  {competition.positive_class!r} written where its probability is >= {summary['cutoffs'][0]:.4f}, "
                    f"the cut-off with the best {metric} on the half the weights were fitted on (the most probable "
                    f"class: 0.5)")
    elif "cutoffs" in summary:  # qwk: its classes are consecutive grades, the first one's index 0
        first = int(competition.classes[0])
        shown = " / ".join(f"{first + cut:.2f}" for cut in summary["cutoffs"])
        rounding = " / ".join(f"{first + index + 0.5:g}" for index in range(len(summary["cutoffs"])))
        logger.info(f"  grades written by cut-offs on the expected grade, {shown}: those with the best {metric} on the "
                    f"half the weights were fitted on (rounding would be {rounding})")
    if has_key:
        logger.info(f"  local score ({competition.solution.name}) {'' if metric == 'accuracy' else metric + ' '}"
                    f"{summary['local_score']:.4f}")
    logger.info(f"  wrote {summary['submission']} and latest.csv ({len(competition.test_ids):,} rows)")
    if summary["format"] == "label" and competition.num_classes == 2 and metric == "accuracy":
        # A sample of 0/1 placeholders cannot say that Kaggle scores it by AUC, where labels lose to probabilities.
        logger.info(f"  two classes, written as labels: if the competition is scored by AUC or log loss (Histopathologic "
                    f"Cancer Detection), METRIC=auc or logloss writes the probability of {competition.positive_class!r}")
