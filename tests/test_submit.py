"""Every Kaggle rule the validator applies, and that a failing submission is never written."""

import io
import logging

import numpy as np
import pandas as pd
import pytest
from conftest import write_image_competition

from kaggle_pipeline.data import answer_key_labels, load_competition, read_sample_submission
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.submit import (
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
    with pytest.raises(PipelineError, match=r"solution.csv: no answer for test id .242. \(59 of the sample.s 60 ids have none\)"):
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


def stored_members(tmp_path, stacker_fingerprint=None):
    """A store with three kept runs and a stacker, their predictions made by hand (noisy one-hot answers)."""
    from kaggle_pipeline.store import atomic_save_npz, atomic_write_json
    from kaggle_pipeline.submit import answer_key_labels

    folder = write_image_competition(tmp_path / "cifar")
    workspace = open_workspace(folder, tmp_path / "models")
    store, competition = workspace.store, workspace.competition
    truth = {"validation": workspace.y_validation, "test": answer_key_labels(competition)}
    generator = np.random.default_rng(0)

    def predictions(right_share):
        arrays = {}
        for key, labels in truth.items():
            noise = generator.dirichlet(np.ones(3), size=len(labels))
            right = generator.random(len(labels)) < right_share
            noise[right, labels[right]] += 1.0
            arrays[key] = noise / noise.sum(axis=1, keepdims=True)
        return arrays

    for run, share in enumerate((0.6, 0.7, 0.8), start=1):
        run_dir = store.runs_dir / f"run-{run:04d}"
        atomic_write_json(run_dir / "run.json", {"run": run, "status": "done", "validation_accuracy": 0.9})
        atomic_save_npz(run_dir / "predictions.npz", **predictions(share))
    atomic_write_json(store.ensemble_path, {"threshold": 0.5})
    stack_dir = store.root / "stack"
    atomic_save_npz(stack_dir / "predictions.npz", **predictions(0.9))
    atomic_write_json(stack_dir / "stack.json", {
        "kind": "vgg19-randomforest", "weights": "random (WEIGHTS=none)",
        "fingerprint": stacker_fingerprint or competition.fingerprint(),
    })
    return workspace


def test_submission_uses_the_chosen_strategy_with_the_stacker(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    from kaggle_pipeline.vote import soft_vote

    workspace = stored_members(tmp_path)
    store = workspace.store
    summary = make_submission(workspace, tmp_path / "submissions", vote="soft", stack_weight=2.0)
    members = [np.load(store.runs_dir / f"run-{run:04d}" / "predictions.npz")["test"] for run in (1, 2, 3)]
    members.append(np.load(store.root / "stack" / "predictions.npz")["test"])
    expected = [CLASSES[index] for index in soft_vote(np.stack(members), weights=[1, 1, 1, 2])]
    written = pd.read_csv(tmp_path / "submissions" / "cifar" / "latest.csv", dtype=str)
    assert written["label"].tolist() == expected
    assert summary["vote"] == "soft" and summary["stacker"]["weight"] == 2.0
    assert set(summary["strategies"]) == {"majority", "soft", "weighted", "select", "logistic"}
    assert summary["local_score"] == summary["strategies"]["soft"]["local_score"]
    err = caplog.text
    assert "stacker (VGG19 random (WEIGHTS=none) features" in err and "select" in err and "<- used" in err

    summary = make_submission(workspace, tmp_path / "submissions", vote="auto", stack_weight=0)
    assert summary["stacker"] is None
    judged = {name: result["validation_accuracy"] for name, result in summary["strategies"].items()}
    assert judged[summary["vote"]] == max(judged.values())


def test_a_stacker_fitted_on_other_data_writes_nothing(tmp_path):
    workspace = stored_members(tmp_path, stacker_fingerprint="0000000000000000")
    with pytest.raises(PipelineError, match="stacker was fitted on other data"):
        make_submission(workspace, tmp_path / "submissions")
    assert not (tmp_path / "submissions").exists()


def test_the_notebook_example_votes_like_make_submit(tmp_path):
    """README's Python example: stored predictions into VotingEnsemble give make submit's answers."""
    from kaggle_pipeline import VotingEnsemble
    from kaggle_pipeline.submit import stored_predictions

    workspace = stored_members(tmp_path)
    members = stored_predictions(workspace)
    assert members.names == ["run 1", "run 2", "run 3", "stacker (VGG19 random (WEIGHTS=none) features -> RandomForest)"]
    ensemble = VotingEnsemble(strategy="auto", weights=members.weights).fit(members.validation, workspace.y_validation)
    summary = make_submission(workspace, tmp_path / "submissions")
    assert ensemble.strategy_ == summary["vote"]
    written = pd.read_csv(tmp_path / "submissions" / "cifar" / "latest.csv", dtype=str)
    assert written["label"].tolist() == [CLASSES[index] for index in ensemble.predict(members.test)]
