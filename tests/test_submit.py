"""Every Kaggle rule the validator applies, and that a failing submission is never written."""

import io

import numpy as np
import pandas as pd
import pytest
from conftest import write_image_competition

from kaggle_pipeline.data import load_competition, read_sample_submission
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.submit import (
    answer_key_labels,
    local_score,
    make_submission,
    render_submission,
    validate_submission,
)
from kaggle_pipeline.workspace import open_workspace

CLASSES = ["cat", "dog", "frog"]


@pytest.fixture
def sample():
    return pd.DataFrame({"id": ["3", "1", "2"], "label": ["cat", "cat", "cat"]})


def table(rows, columns=("id", "label")):
    return pd.DataFrame(rows, columns=list(columns))


def test_a_valid_submission_passes(sample):
    validate_submission(table([["3", "dog"], ["1", "frog"], ["2", "cat"]]), sample, CLASSES, "s.csv")


@pytest.mark.parametrize("rows, columns, message", [
    ([["3", "dog"], ["1", "dog"], ["2", "dog"]], ("Id", "label"), "header"),
    ([["3", "dog"], ["1", "dog"], ["2", "dog"]], ("label", "id"), "header"),
    ([["3", "dog"], ["1", "dog"]], ("id", "label"), "2 rows"),
    ([["3", "dog"], ["1", "dog"], ["2", "dog"], ["4", "dog"]], ("id", "label"), "4 rows"),
    ([["3", "dog"], ["1", "dog"], ["1", "dog"]], ("id", "label"), "duplicate id '1'"),
    ([["3", "dog"], ["1", "dog"], ["9", "dog"]], ("id", "label"), "'2' from the sample submission is missing"),
    ([["3", "dog"], ["1", "dog"], ["2", "horse"]], ("id", "label"), "label 'horse' is not one of the 3 classes"),
    ([["3", "dog"], ["1", "dog"], ["2", "2"]], ("id", "label"), "label '2'"),
])
def test_each_rule(sample, rows, columns, message):
    with pytest.raises(PipelineError, match=message):
        validate_submission(table(rows, columns), sample, CLASSES, "s.csv")


def test_two_id_columns_break_the_header_rule(sample):
    with pytest.raises(PipelineError, match="header"):
        validate_submission(table([["3", "3"]] * 3, ("id", "id")), sample, CLASSES, "s.csv")


def test_rendered_labels_follow_the_classes_and_the_sample_order(tmp_path):
    competition = load_competition(write_image_competition(tmp_path / "cifar"))
    text = render_submission(competition, np.array([2, 0, 1] * 20))
    rendered = pd.read_csv(io.StringIO(text), dtype=str)
    assert list(rendered.columns) == ["id", "label"]
    assert rendered["id"].tolist() == competition.test_ids
    assert rendered["label"].tolist()[:3] == ["frog", "cat", "dog"]
    sample = read_sample_submission(competition.sample_submission)
    validate_submission(rendered, sample, competition.classes, "rendered")


def test_local_score_matches_by_id(tmp_path):
    solution = tmp_path / "solution.csv"
    solution.write_text("id,label,Usage\n1,cat,Public\n2,dog,Private\n3,dog,Private\n4,frog,Public\n")
    submission = table([["4", "frog"], ["3", "cat"], ["2", "dog"], ["1", "cat"]])
    assert local_score(solution, submission, "id", "label") == 0.75


def test_answer_key_as_class_indices_in_test_order(tmp_path):
    competition = load_competition(write_image_competition(tmp_path / "cifar"))
    truth = answer_key_labels(competition)
    solution = pd.read_csv(competition.solution, dtype=str).set_index("id")["label"]
    assert [competition.classes[index] for index in truth] == [solution[test_id] for test_id in competition.test_ids]
    competition.solution.write_text("id,label\n241,cat\n")  # answers for one test image of sixty
    with pytest.raises(PipelineError, match="solution.csv: does not give a known class for every test id"):
        answer_key_labels(competition)


def test_broken_run_predictions_write_nothing(tmp_path):
    """A run whose stored predictions do not fit the competition must not reach a CSV."""
    from kaggle_pipeline.store import atomic_save_npz, atomic_write_json

    folder = write_image_competition(tmp_path / "cifar")
    workspace = open_workspace(folder, tmp_path / "models")
    store = workspace.store
    run_dir = store.runs_dir / "run-0001"
    atomic_write_json(run_dir / "run.json", {"run": 1, "status": "done", "validation_accuracy": 0.9})
    atomic_save_npz(run_dir / "predictions.npz", validation=np.zeros((24, 3)), test=np.zeros((59, 3)))
    atomic_write_json(store.ensemble_path, {"threshold": 0.5})
    with pytest.raises(PipelineError, match=r"test predictions have shape \(59, 3\)"):
        make_submission(workspace, tmp_path / "submissions")
    assert not (tmp_path / "submissions").exists()
