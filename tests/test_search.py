"""Search: the reference goes first, trials are saved as they finish, and a resumed search continues exactly."""

import json

import pytest

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.search import run_search
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.workspace import open_workspace


def trial_docs(store):
    return json.loads((store.search_dir / "trials.json").read_text())["trials"]


def test_search_resumes_to_the_same_trials_as_an_uninterrupted_search(tmp_path, csv_competition):
    settings = dict(epochs=1, seed=7, space_name="tiny", subset=None)
    resumed = open_workspace(csv_competition, tmp_path / "resumed")
    run_search(resumed, evals=2, **settings)
    first_two = trial_docs(resumed.store)
    assert len(first_two) == 2
    assert first_two[0]["result"]["params"] == TINY_PARAMS  # the reference is trial 1

    best = run_search(resumed, evals=3, **settings)
    after = trial_docs(resumed.store)
    assert len(after) == 3
    assert after[:2] == first_two  # finished trials were neither redone nor changed
    assert best["trials"] == 3 and best["space"] == "tiny"
    assert best["validation_accuracy"] == max(doc["result"]["validation_accuracy"] for doc in after)
    assert {"tensorflow-cpu", "keras", "hyperopt", "numpy"} <= set(best["versions"])

    straight = open_workspace(csv_competition, tmp_path / "straight")
    run_search(straight, evals=3, **settings)
    assert [doc["result"]["params"] for doc in trial_docs(straight.store)] == [doc["result"]["params"] for doc in after]

    table = (resumed.store.search_dir / "trials.csv").read_text().splitlines()
    assert table[0].startswith("trial,status,validation_accuracy") and len(table) == 4

    # Asking for fewer trials than exist trains nothing.
    run_search(resumed, evals=2, **settings)
    assert len(trial_docs(resumed.store)) == 3


def test_search_refuses_to_mix_settings(tmp_path, csv_competition):
    workspace = open_workspace(csv_competition, tmp_path / "models")
    run_search(workspace, evals=1, epochs=1, seed=1, space_name="tiny", subset=None)
    with pytest.raises(PipelineError, match="these trials were made with"):
        run_search(workspace, evals=2, epochs=2, seed=1, space_name="tiny", subset=None)
