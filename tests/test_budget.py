"""One budget for the whole job (kaggle_pipeline.budget): ``all --hours`` splits the hours between search and runs,
prints and records the split; ``ensemble --hours`` stays the ensemble call's own budget."""

import json
import time

import pytest
from conftest import run_cli

from kaggle_pipeline.budget import SEARCH_SHARE, SUBMIT_RESERVE_SECONDS, JobBudget
from kaggle_pipeline.errors import ParameterError


def test_the_split_leaves_the_runs_what_the_search_did_not_use():
    started = time.monotonic() - 600  # the search took ten minutes of a two-hour job
    budget = JobBudget(2.0, started=started)
    assert budget.search_deadline() == pytest.approx(started + SEARCH_SHARE * 7200)
    budget.search_finished()
    assert budget.search_seconds == pytest.approx(600, abs=5)
    left = 7200 - 600 - SUBMIT_RESERVE_SECONDS
    assert budget.ensemble_hours() * 3600 == pytest.approx(left, abs=5)
    record = budget.record(budget.ensemble_hours())
    assert record["hours"] == 2.0 and record["search_share"] == SEARCH_SHARE
    assert record["search_seconds"] == pytest.approx(600, abs=5)
    described = budget.describe(budget.ensemble_hours())
    assert "loading and search took 10m00s" in described and "the runs get 1h49m" in described
    # A job already over its hours leaves the runs a second: the ensemble then says that no run fits.
    assert JobBudget(0.01, started=time.monotonic() - 3600).ensemble_hours() == pytest.approx(1 / 3600)
    with pytest.raises(ParameterError):
        JobBudget(0.0)


def _all(tmp_path, folder, *extra):
    return run_cli("all", "--data", folder, "--models-dir", tmp_path / "models", "--submissions-dir",
                   tmp_path / "submissions", "--space", "tiny", "--evals", "3", "--search-epochs", "1", "--n", "2",
                   "--epochs", "2", "--threshold", "0", *extra, cwd=tmp_path)


def test_all_with_hours_records_the_split_and_keeps_the_job_inside_them(tmp_path, csv_competition):
    result = _all(tmp_path, csv_competition, "--hours", "1")
    assert result.returncode == 0, result.stderr
    assert "all: HOURS=1 for the whole job: loading and search took" in result.stderr
    settings = json.loads((tmp_path / "models" / "pixels" / "ensemble.json").read_text())
    budget = settings["budget"]
    assert budget["hours"] == 1 and budget["search_share"] == SEARCH_SHARE
    assert 0 < budget["search_seconds"] < 900
    # The runs got the hour less what the search took and the submit reserve.
    assert budget["ensemble_hours"] == pytest.approx((3600 - budget["search_seconds"] - SUBMIT_RESERVE_SECONDS) / 3600, abs=0.01)
    assert settings["hours"] == pytest.approx(budget["ensemble_hours"], abs=0.01)
    assert settings["stop_reason"] == "2 runs kept"
    trials = json.loads((tmp_path / "models" / "pixels" / "search" / "trials.json").read_text())
    assert len(trials["trials"]) == 3


def test_a_budget_too_small_for_a_run_trains_one_trial_and_no_run(tmp_path, csv_competition):
    # 0.36 seconds: the search still needs one trial to have parameters, then stops; the ensemble estimates a
    # run from the trial's measured speed and starts none, and submit says there is nothing to vote.
    result = _all(tmp_path, csv_competition, "--hours", "0.0001")
    assert result.returncode == 2
    assert "search: stopped after 1 of 3 trials" in result.stderr
    assert "no more runs are started" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.stderr
    trials = json.loads((tmp_path / "models" / "pixels" / "search" / "trials.json").read_text())
    assert len(trials["trials"]) == 1
    store = tmp_path / "models" / "pixels"
    assert not list(store.glob("runs/run-*"))
    settings = json.loads((store / "ensemble.json").read_text())
    assert settings["stop_reason"].startswith("HOURS=") and settings["budget"]["hours"] == 0.0001
    assert not (tmp_path / "submissions" / "pixels" / "latest.csv").exists()


def test_ensemble_hours_alone_is_the_ensemble_calls_budget(tmp_path, csv_competition):
    common = ["--data", csv_competition, "--models-dir", tmp_path / "models"]
    assert run_cli("search", *common, "--space", "tiny", "--evals", "1", "--search-epochs", "1", cwd=tmp_path).returncode == 0
    result = run_cli("ensemble", *common, "--n", "1", "--epochs", "1", "--threshold", "0", "--hours", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "for the whole job" not in result.stderr
    settings = json.loads((tmp_path / "models" / "pixels" / "ensemble.json").read_text())
    assert settings["hours"] == 1 and "budget" not in settings


def test_a_resumed_search_sizes_its_next_trial_from_the_trials_on_disk(tmp_path, csv_competition):
    # The first call finishes one trial; the second, with too little time for another, must judge the next trial
    # by the stored trials' seconds (it has measured none itself) and start none.
    first = _all(tmp_path, csv_competition, "--evals", "1", "--hours", "1")
    assert first.returncode == 0, first.stderr
    resumed = _all(tmp_path, csv_competition, "--hours", "0.0001")
    assert "search: stopped after 1 of 3 trials" in resumed.stderr
    trials = json.loads((tmp_path / "models" / "pixels" / "search" / "trials.json").read_text())
    assert len(trials["trials"]) == 1
