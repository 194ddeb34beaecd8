"""The package called from Python: its logging is the standard library's, its errors name Python parameters."""

from __future__ import annotations

import logging

import pytest
from conftest import write_csv_competition

from kaggle_pipeline import cli
from kaggle_pipeline.ensemble import run_ensemble
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.workspace import open_workspace


@pytest.fixture
def workspace_with_a_damaged_run(tmp_path):
    folder = write_csv_competition(tmp_path / "pixels", count=30, test_count=6, side=4)
    workspace = open_workspace(folder, tmp_path / "models")
    damaged = workspace.store.runs_dir / "run-0001"
    damaged.mkdir(parents=True)
    (damaged / "run.json").write_text("{}")
    return workspace


def test_warnings_reach_standard_logging_under_the_package_logger(workspace_with_a_damaged_run, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    assert workspace_with_a_damaged_run.store.run_records(repair=False) == []
    [record] = [record for record in caplog.records if record.name.startswith("kaggle_pipeline")]
    assert record.name == "kaggle_pipeline.store" and record.levelno == logging.WARNING
    assert "run-0001" in record.getMessage() and "run skipped" in record.getMessage()


def test_a_notebook_can_silence_everything(workspace_with_a_damaged_run, caplog, capsys):
    caplog.set_level(logging.INFO)  # the root logger listens...
    logging.getLogger("kaggle_pipeline").setLevel(logging.ERROR)  # ...and the package is told to be quiet
    try:
        workspace_with_a_damaged_run.store.run_records(repair=False)
    finally:
        logging.getLogger("kaggle_pipeline").setLevel(logging.NOTSET)
    assert not [record for record in caplog.records if record.name.startswith("kaggle_pipeline")]
    assert capsys.readouterr() == ("", "")  # and a library prints nothing by itself


def test_a_library_error_names_the_parameter_and_the_command_line_the_option(tmp_path, capsys):
    folder = write_csv_competition(tmp_path / "pixels", count=24, test_count=6, side=4)
    with pytest.raises(ParameterError, match=r"^validation_fraction=0\.97: leaves 1 of 24 training images") as raised:
        open_workspace(folder, tmp_path / "models", validation_fraction=0.97)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, PipelineError)
    assert cli.main(["search", "--data", str(folder), "--models-dir", str(tmp_path / "models"),
                     "--val-fraction", "0.97"]) == 2
    assert capsys.readouterr().err.startswith("error: --val-fraction 0.97: leaves 1 of 24 training images")


@pytest.mark.parametrize("arguments, message", [
    ({"n": 0}, "n=0: need at least one kept run"),
    ({"epochs": 0}, "epochs=0: need at least one epoch per run"),
    ({"threshold": 1.5}, "threshold=1.5: a validation accuracy, between 0 and 1"),
    ({"hours": -1.0}, "hours=-1.0: the time budget must be positive"),
])
def test_run_ensemble_names_its_own_parameters(tmp_path, arguments, message):
    folder = write_csv_competition(tmp_path / "pixels", count=24, test_count=6, side=4)
    workspace = open_workspace(folder, tmp_path / "models")
    settings = {"n": 2, "threshold": None, "max_runs": None, "epochs": 1, "seed": 0, **arguments}
    with pytest.raises(ParameterError, match=f"^{message}"):
        run_ensemble(workspace, **settings)


def test_a_trial_whose_error_has_no_message_is_recorded_as_failed(tmp_path, monkeypatch):
    """An exception with an empty message (str(error) == '') once crashed the search with an IndexError."""
    import json

    import keras

    from kaggle_pipeline.search import run_search

    def fit_that_fails(*args, **kwargs):
        raise RuntimeError()  # Keras' own method, not ours, fails: as a broken backend or a bad point would

    monkeypatch.setattr(keras.Model, "fit", fit_that_fails)
    folder = write_csv_competition(tmp_path / "pixels", count=30, test_count=6, side=4)
    workspace = open_workspace(folder, tmp_path / "models")
    with pytest.raises(PipelineError, match="every trial failed; no parameters to retrain"):
        run_search(workspace, evals=2, epochs=1, seed=1, space_name="tiny", subset=None)
    trials = json.loads((workspace.store.search_dir / "trials.json").read_text())["trials"]
    assert [(trial["result"]["status"], trial["result"]["error"]) for trial in trials] == [("fail", "RuntimeError")] * 2


def test_a_stage_whose_optional_package_is_missing_says_which_extra(tmp_path, capsys, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "tensorflow" else real_find_spec(name, *rest))
    folder = write_csv_competition(tmp_path / "pixels", count=24, test_count=6, side=4)
    assert cli.main(["search", "--data", str(folder), "--models-dir", str(tmp_path / "models")]) == 2
    assert capsys.readouterr().err == ("error: search: needs tensorflow, which is not installed; "
                                       "pip install 'kaggle-pipeline[cpu]' (or [gpu]) (make setup installs it)\n")
    assert not (tmp_path / "models").exists()
