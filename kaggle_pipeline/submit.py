"""Vote over the kept runs (and the stacker) and write a submission CSV exactly in the sample submission's form.

The vote strategy is one of kaggle_pipeline.vote's, or ``auto``: the best on the half of the validation split
that no strategy was fitted on. Every strategy's accuracy is printed (and the local score where an answer key
exists) so the user sees what the choice was between.

The CSV text is rendered, parsed back as Kaggle would read it, and checked against the rules Kaggle
applies before anything is written: the same header as the sample, one id column, the same ids (same
set, same count, no duplicates), and every label one of the competition's classes. A submission that
fails is never written. Files appear atomically: ``submission-<timestamp>.csv``, then ``latest.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data import Competition, read_sample_submission, read_submission_table
from kaggle_pipeline.ensemble import kept_runs, read_ensemble_settings
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.store import atomic_write_json, atomic_write_text, library_versions, remove_stale_temporaries
from kaggle_pipeline.vote import STRATEGIES, VOTES, VotingEnsemble, accuracy
from kaggle_pipeline.workspace import Workspace

logger = logging.getLogger(__name__)


def validate_submission(table: pd.DataFrame, sample: pd.DataFrame, classes: list[str], where: str) -> None:
    """Raise ``PipelineError`` naming the first Kaggle rule ``table`` breaks.

    The headers are compared as written (``attrs["header"]``, set by ``read_submission_table`` and
    ``parse_submission``), not as pandas renamed them: an empty name and pandas' ``Unnamed: 1`` are not equal.
    """
    header, sample_header = raw_columns(table), raw_columns(sample)
    if header != sample_header:
        raise PipelineError(f"{where}: header {header} differs from the sample submission's {sample_header}")
    if list(table.columns) != list(sample.columns):
        raise PipelineError(f"{where}: header {list(table.columns)} differs from the sample submission's {list(sample.columns)}")
    id_column, label_column = sample.columns
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
    allowed = set(classes)
    bad = table[label_column][~table[label_column].isin(allowed)]
    if len(bad):
        raise PipelineError(f"{where}: label {bad.iloc[0]!r} is not one of the {len(classes)} classes")


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


def render_submission(competition: Competition, predicted: np.ndarray) -> str:
    table = pd.DataFrame({
        competition.id_column: competition.test_ids,
        competition.label_column: [competition.classes[index] for index in predicted],
    })
    return table.to_csv(index=False, lineterminator="\n")


def read_answer_key(solution_path: Path, id_column: str, label_column: str) -> dict[str, str]:
    """id -> label from an answer key (id, label[, Usage]), found by the sample's column names or by position."""
    solution = read_submission_table(solution_path)
    if solution.shape[1] < 2:
        raise PipelineError(f"{solution_path}: expected an id column and a label column")
    solution_ids = solution[id_column] if id_column in solution else solution.iloc[:, 0]
    solution_labels = solution[label_column] if label_column in solution else solution.iloc[:, 1]
    return dict(zip(solution_ids, solution_labels, strict=True))


def local_score(solution_path: Path, submission: pd.DataFrame, id_column: str, label_column: str) -> float:
    """Accuracy against an answer key — for local feedback only, never for selection."""
    truth = read_answer_key(solution_path, id_column, label_column)
    predicted = dict(zip(submission[id_column], submission[label_column], strict=True))
    if set(truth) != set(predicted):
        raise PipelineError(f"{solution_path}: its ids do not match the submission's ids")
    return float(np.mean([predicted[key] == label for key, label in truth.items()]))


def answer_key_labels(competition: Competition) -> np.ndarray | None:
    """The answer key as class indices in test order (for local scoring and benches); None without one."""
    if competition.solution is None:
        return None
    truth = read_answer_key(competition.solution, competition.id_column, competition.label_column)
    index = {name: position for position, name in enumerate(competition.classes)}
    missing = [test_id for test_id in competition.test_ids if test_id not in truth]
    if missing or any(label not in index for label in truth.values()):
        raise PipelineError(f"{competition.solution}: does not give a known class for every test id")
    return np.array([index[truth[test_id]] for test_id in competition.test_ids])


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


def stored_predictions(workspace: Workspace, threshold: float | None = None, stack_weight: float = 1.0) -> Members:
    """The kept runs' predictions (at ``threshold``, default the ensemble's) and the stacker's, if stored.

    For notebooks: ``VotingEnsemble(weights=members.weights).fit(members.validation, workspace.y_validation)``.
    """
    if stack_weight < 0:
        raise ParameterError("stack_weight", stack_weight, "must be 0 or more")
    store, competition = workspace.store, workspace.competition
    if threshold is None:
        settings = read_ensemble_settings(store)
        if settings is None:
            raise PipelineError(f"{store.ensemble_path}: not found; run 'make ensemble' first")
        threshold = float(settings["threshold"])
    # Only read: a damaged run is skipped here and moved aside (and retrained) by the next 'make ensemble'.
    records = kept_runs(store.run_records(repair=False), threshold)
    if not records:
        raise PipelineError(f"{store.runs_dir}: no run reaches validation accuracy {threshold:.4f}; run 'make ensemble' first")

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
    )


def make_submission(
    workspace: Workspace, submissions_dir: Path, threshold: float | None = None, vote: str = "auto",
    stack_weight: float = 1.0,
) -> dict:
    """Vote over the kept runs (and the stacker, when ``make stack`` has run) and write the submission.

    Every strategy in vote.STRATEGIES is fitted on one half of the validation predictions and judged on the
    other; ``vote`` picks one of them, or ``auto`` the best judged. The stacker votes with ``stack_weight``
    (0 leaves it out).
    """
    if vote not in VOTES:
        raise ParameterError("vote", vote, f"choose one of {', '.join(VOTES)}")
    competition = workspace.competition
    members = stored_predictions(workspace, threshold, stack_weight)
    records, threshold = members.records, members.threshold
    truth = answer_key_labels(competition)
    strategies = {}
    for strategy in STRATEGIES:
        ensemble = VotingEnsemble(strategy=strategy, weights=members.weights).fit(members.validation, workspace.y_validation)
        predicted = ensemble.predict(members.test)
        strategies[strategy] = {
            "validation_accuracy": ensemble.validation_accuracy_,
            "local_score": None if truth is None else accuracy(predicted, truth),
            "weights": [round(float(weight), 4) for weight in ensemble.weights_],
            "predicted": predicted,
        }
    # The first best wins a tie, so auto prefers the simpler strategy (the order of STRATEGIES).
    chosen = vote if vote != "auto" else max(STRATEGIES, key=lambda name: strategies[name]["validation_accuracy"])
    run_accuracies = np.array([record["validation_accuracy"] for record in records])

    text = render_submission(competition, strategies[chosen]["predicted"])
    sample = read_sample_submission(competition.sample_submission)
    rendered = parse_submission(text)
    validate_submission(rendered, sample, competition.classes, where="submission")

    folder = Path(submissions_dir) / competition.name
    remove_stale_temporaries(folder)  # left by a killed submit; this stage holds the store's lock
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"submission-{stamp}.csv"
    summary = {
        "submission": str(path),
        "vote": chosen,
        "vote_requested": vote,
        "runs_voted": len(records),
        "runs": [record["run"] for record in records],
        "stacker": members.stacker,
        "threshold": threshold,
        "run_validation_accuracy_mean": float(run_accuracies.mean()),
        "run_validation_accuracy_std": float(run_accuracies.std()),
        "ensemble_validation_accuracy": strategies[chosen]["validation_accuracy"],
        "validation_judged_on": "the half of the validation split that no strategy was fitted on",
        "strategies": {name: {key: value for key, value in result.items() if key != "predicted"}
                       for name, result in strategies.items()},
        "local_score": None,
        "fingerprint": competition.fingerprint(),
        "versions": library_versions(),
    }
    if competition.solution is not None:
        summary["local_score"] = local_score(competition.solution, rendered, competition.id_column, competition.label_column)
    atomic_write_text(path, text)
    atomic_write_text(folder / "latest.csv", text)
    atomic_write_json(folder / f"submission-{stamp}.json", summary)
    atomic_write_json(folder / "latest.json", summary)
    _print_summary(summary, competition)
    return summary


def _stack_member(workspace: Workspace, stack_weight: float):
    """The stacker as a voting member (name, folder, predictions, weight), or None without one."""
    from kaggle_pipeline.stack import load_stack, stack_dir

    if stack_weight == 0:
        return None
    loaded = load_stack(workspace.store)
    if loaded is None:
        return None
    record, predictions = loaded
    folder = stack_dir(workspace.store)
    if record.get("fingerprint") != workspace.competition.fingerprint():
        raise PipelineError(f"{folder}: the stacker was fitted on other data; rerun 'make stack'")
    return f"stacker (VGG19 {record['weights']} features -> RandomForest)", folder, predictions, stack_weight


def _print_summary(summary: dict, competition: Competition) -> None:
    stacker = f" + {summary['stacker']['name']}, weight {summary['stacker']['weight']:g}" if summary["stacker"] else ""
    logger.info(f"submit: {summary['vote']} vote of {summary['runs_voted']} run(s) (validation accuracy >= "
        f"{summary['threshold']:.4f}){stacker}")
    logger.info(f"  runs' validation accuracy   {summary['run_validation_accuracy_mean']:.4f} ± {summary['run_validation_accuracy_std']:.4f}")
    if summary["stacker"]:
        logger.info(f"  stacker validation accuracy {summary['stacker']['validation_accuracy']:.4f}")
    has_key = summary["local_score"] is not None
    logger.info(f"  {'strategy':10} {'validation*':>11}" + (f" {'local score':>11}" if has_key else ""))
    for name, result in summary["strategies"].items():
        marker = "  <- used" if name == summary["vote"] else ""
        local = f" {result['local_score']:11.4f}" if has_key else ""
        logger.info(f"  {name:10} {result['validation_accuracy']:11.4f}{local}{marker}")
    logger.info("  * on the half of the validation split that no strategy was fitted on"
        + ("" if summary["vote_requested"] != "auto" else "; VOTE=auto picks the best"))
    logger.info(f"  ensemble validation accuracy {summary['ensemble_validation_accuracy']:.4f}")
    if has_key:
        logger.info(f"  local score ({competition.solution.name}) {summary['local_score']:.4f}")
    logger.info(f"  wrote {summary['submission']} and latest.csv ({len(competition.test_ids):,} rows)")
