"""Vote over the kept runs and write a submission CSV exactly in the sample submission's form.

The CSV text is rendered, parsed back as Kaggle would read it, and checked against the rules Kaggle
applies before anything is written: the same header as the sample, one id column, the same ids (same
set, same count, no duplicates), and every label one of the competition's classes. A submission that
fails is never written. Files appear atomically: ``submission-<timestamp>.csv``, then ``latest.csv``.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data import Competition, read_sample_submission, read_submission_table
from kaggle_pipeline.ensemble import kept_runs
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.progress import say
from kaggle_pipeline.store import atomic_write_json, atomic_write_text, library_versions, read_json
from kaggle_pipeline.vote import accuracy, majority_vote
from kaggle_pipeline.workspace import Workspace


def validate_submission(table: pd.DataFrame, sample: pd.DataFrame, classes: list[str], where: str) -> None:
    """Raise ``PipelineError`` naming the first Kaggle rule ``table`` breaks."""
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
    return dict(zip(solution_ids, solution_labels))


def local_score(solution_path: Path, submission: pd.DataFrame, id_column: str, label_column: str) -> float:
    """Accuracy against an answer key — for local feedback only, never for selection."""
    truth = read_answer_key(solution_path, id_column, label_column)
    predicted = dict(zip(submission[id_column], submission[label_column]))
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


def make_submission(workspace: Workspace, submissions_dir: Path, threshold: float | None = None) -> dict:
    store, competition = workspace.store, workspace.competition
    if threshold is None:
        if not store.ensemble_path.exists():
            raise PipelineError(f"{store.ensemble_path}: not found; run 'make ensemble' first")
        threshold = float(read_json(store.ensemble_path)["threshold"])
    records = kept_runs(store.run_records(), threshold)
    if not records:
        raise PipelineError(f"{store.runs_dir}: no run reaches validation accuracy {threshold:.4f}; run 'make ensemble' first")

    predictions = [store.load_predictions(record) for record in records]
    expected = {"validation": len(workspace.validation_index), "test": len(competition.x_test)}
    for record, arrays in zip(records, predictions):
        for key, rows in expected.items():
            if arrays[key].shape != (rows, competition.num_classes):
                raise PipelineError(f"{store.run_dir(record)}: {key} predictions have shape {arrays[key].shape}, "
                                    f"expected {(rows, competition.num_classes)}")
    validation_vote = majority_vote(np.stack([arrays["validation"] for arrays in predictions]))
    test_vote = majority_vote(np.stack([arrays["test"] for arrays in predictions]))
    run_accuracies = np.array([record["validation_accuracy"] for record in records])

    text = render_submission(competition, test_vote)
    sample = read_sample_submission(competition.sample_submission)
    rendered = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    validate_submission(rendered, sample, competition.classes, where="submission")

    folder = Path(submissions_dir) / competition.name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"submission-{stamp}.csv"
    summary = {
        "submission": str(path),
        "runs_voted": len(records),
        "runs": [record["run"] for record in records],
        "threshold": threshold,
        "run_validation_accuracy_mean": float(run_accuracies.mean()),
        "run_validation_accuracy_std": float(run_accuracies.std()),
        "ensemble_validation_accuracy": accuracy(validation_vote, workspace.y_validation),
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


def _print_summary(summary: dict, competition: Competition) -> None:
    say(f"submit: majority vote of {summary['runs_voted']} run(s) (validation accuracy >= {summary['threshold']:.4f})")
    say(f"  runs' validation accuracy   {summary['run_validation_accuracy_mean']:.4f} ± {summary['run_validation_accuracy_std']:.4f}")
    say(f"  ensemble validation accuracy {summary['ensemble_validation_accuracy']:.4f}")
    if summary["local_score"] is not None:
        say(f"  local score ({competition.solution.name}) {summary['local_score']:.4f}")
    say(f"  wrote {summary['submission']} and latest.csv ({len(competition.test_ids):,} rows)")
