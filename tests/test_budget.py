"""One budget for the whole job (kaggle_pipeline.budget): ``all --hours`` splits the hours between search and runs,
prints and records the split, and (with no EPOCHS given) lengthens the runs so that a few of them fill it;
``ensemble --hours`` stays the ensemble call's own budget."""

import json
import logging
import time

import pytest
from conftest import run_in_process

from kaggle_pipeline.budget import (
    FILL_RUNS,
    FILL_SHARE,
    LAST_RUN_SHARE,
    MAX_FILL_EPOCHS,
    SEARCH_SHARE,
    SUBMIT_RESERVE_SECONDS,
    JobBudget,
    epochs_that_fit,
    fill_epochs,
    planned_runs,
    refill_epochs,
)
from kaggle_pipeline.ensemble import run_ensemble
from kaggle_pipeline.errors import ParameterError
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.store import atomic_write_json
from kaggle_pipeline.workspace import open_workspace


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
    return run_in_process("all", "--data", folder, "--models-dir", tmp_path / "models", "--submissions-dir",
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
    assert settings["epochs"] == 2  # EPOCHS given: the budget does not size the runs
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
    assert run_in_process("search", *common, "--space", "tiny", "--evals", "1", "--search-epochs", "1", cwd=tmp_path).returncode == 0
    result = run_in_process("ensemble", *common, "--n", "1", "--epochs", "1", "--threshold", "0", "--hours", "1", cwd=tmp_path)
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


def test_the_budget_spreads_the_runs_time_over_a_few_runs_no_longer_than_the_cap():
    # The full preset's numbers: 54,000 images at 1,500 images/s are 36 s an epoch.
    per_epoch = 54_000 / 1_500
    for hours, expected in [(0.9, 30), (1.21, 36), (1.51, 45), (1.8, 54), (2.2, MAX_FILL_EPOCHS), (10.0, MAX_FILL_EPOCHS)]:
        epochs, note = fill_epochs(30, hours, 54_000, 1_500)
        assert epochs == expected, hours
        assert (note is None) == (epochs == 30)
        planned = FILL_SHARE * hours * 3600
        if 30 < epochs < MAX_FILL_EPOCHS:
            # FILL_RUNS runs of that length fit in the planned share of the time; one epoch more would not.
            assert FILL_RUNS * epochs * per_epoch <= planned < FILL_RUNS * (epochs + 1) * per_epoch
    assert "45 epochs per run instead of the preset's 30" in fill_epochs(30, 1.51, 54_000, 1_500)[1]
    assert f"{FILL_RUNS} runs of them fill" in fill_epochs(30, 1.51, 54_000, 1_500)[1]
    # Never shorter than the preset's runs, whatever the budget; no measured speed: the preset's epochs.
    assert fill_epochs(30, 0.1, 54_000, 1_500) == (30, None)
    assert fill_epochs(30, 2.0, 54_000, None) == (30, None)
    assert fill_epochs(30, 2.0, 54_000, 0.0) == (30, None)
    # A resumed ensemble keeps the length of the runs on disk, longer or shorter than the fill would choose.
    assert fill_epochs(30, 1.8, 54_000, 1_500, epochs_on_disk=44)[0] == 44
    assert "as long as the runs on disk" in fill_epochs(30, 0.1, 54_000, 1_500, epochs_on_disk=35)[1]
    assert fill_epochs(30, 1.8, 54_000, 1_500, epochs_on_disk=30) == (30, None)


def _tiny_store(tmp_path, csv_competition):
    """A store whose search chose TINY_PARAMS, and its training images."""
    workspace = open_workspace(csv_competition, tmp_path / "models")
    atomic_write_json(workspace.store.best_params_path, {"params": TINY_PARAMS, "validation_accuracy": 0.5})
    return workspace, len(workspace.y_train)


def _speed_for(epochs, images, hours):
    """The images per second at which FILL_RUNS runs of ``epochs`` and a half fill the planned share of ``hours``."""
    return images / (FILL_SHARE * hours * 3600 / FILL_RUNS / (epochs + 0.5))


def test_a_budget_sized_ensemble_trains_the_filled_epochs_and_a_resumed_one_keeps_them(tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    common = {"threshold": 0.0, "seed": 10, "hours": 1.0, "fill_budget": True}
    kept = run_ensemble(workspace, n=1, epochs=1, max_runs=1, images_per_second=_speed_for(3, images, 1.0), **common)
    assert [record["epochs"] for record in kept] == [3]
    assert json.loads(workspace.store.ensemble_path.read_text())["epochs"] == 3
    assert "3 epochs per run instead of the preset's 1" in caplog.text
    # Resumed with another measured speed: the runs stay as long as the one on disk.
    kept = run_ensemble(workspace, n=2, epochs=1, max_runs=2, images_per_second=_speed_for(5, images, 1.0), **common)
    assert [record["epochs"] for record in kept] == [3, 3]
    # Epochs given (EPOCHS=, --epochs): honoured, whatever the budget.
    kept = run_ensemble(workspace, n=3, epochs=2, max_runs=3, images_per_second=_speed_for(5, images, 1.0),
                        fixed_epochs=True, **common)
    assert [record["epochs"] for record in kept] == [3, 3, 2]


def test_finished_runs_resize_the_runs_after_them_from_their_own_speed():
    # 40 s an epoch measured, 3,600 s left for 2 more runs: 0.9 * 1,800 / 40 = 40 epochs, longer or shorter
    # than the search's guess.
    assert refill_epochs(30, 3_600, 40.0, runs_left=2, shortest=30)[0] == int(FILL_SHARE * 1_800 // 40) == 40
    assert "40 epochs per run from now on instead of 30" in refill_epochs(30, 3_600, 40.0, 2, 30)[1]
    assert refill_epochs(50, 3_600, 40.0, runs_left=2, shortest=30)[0] == 40
    assert refill_epochs(40, 3_600, 40.0, runs_left=2, shortest=30) == (40, None)
    # Within the same bounds as the first sizing; the planned runs done, the time left goes to one run at a time.
    assert refill_epochs(30, 100_000, 40.0, runs_left=2, shortest=30)[0] == MAX_FILL_EPOCHS
    assert refill_epochs(45, 600, 40.0, runs_left=2, shortest=30)[0] == 30
    assert refill_epochs(30, 2_000, 40.0, runs_left=0, shortest=10)[0] == refill_epochs(30, 2_000, 40.0, 1, 10)[0] == 45
    assert refill_epochs(30, -5, 40.0, runs_left=1, shortest=10)[0] == 10
    assert refill_epochs(30, 3_600, None, runs_left=2, shortest=10) == (30, None)


def test_a_budget_sized_ensemble_resizes_its_next_runs_from_the_first_runs_measured_speed(
        tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    # The search's speed says 2 epochs fill the hour; the tiny runs are far faster than that, so once the first
    # has finished the next ones grow to the longest run the budget sizes.
    kept = run_ensemble(workspace, n=2, epochs=1, max_runs=2, threshold=0.0, seed=10, hours=1.0, fill_budget=True,
                        images_per_second=_speed_for(2, images, 1.0))
    assert [record["epochs"] for record in kept] == [2, MAX_FILL_EPOCHS]
    assert f"{MAX_FILL_EPOCHS} epochs per run from now on instead of 2: the runs took" in caplog.text
    assert json.loads(workspace.store.ensemble_path.read_text())["epochs"] == MAX_FILL_EPOCHS


def test_a_resized_length_that_no_run_can_use_is_neither_said_nor_recorded(tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    # The search's speed promises 3 epochs in 0.7 s; the real run takes longer, so when it finishes the budget is
    # spent: the re-sizing would shrink the next runs to the shortest, which no longer fits either.
    kept = run_ensemble(workspace, n=3, epochs=1, max_runs=3, threshold=0.0, seed=10, hours=0.0002, fill_budget=True,
                        images_per_second=_speed_for(3, images, 0.0002))
    assert [record["epochs"] for record in kept] == [3]
    assert "per run from now on" not in caplog.text
    assert "no more runs are started" in caplog.text
    settings = json.loads(workspace.store.ensemble_path.read_text())
    assert settings["epochs"] == 3 and settings["stop_reason"].startswith("HOURS=")


def test_a_budget_sized_run_must_fit_the_last_runs_margin_not_just_the_time_left(tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    common = {"threshold": 0.0, "seed": 10, "epochs": 1, "fill_budget": True}
    [first] = run_ensemble(workspace, n=1, max_runs=1, hours=1.0, images_per_second=_speed_for(12, images, 1.0), **common)
    # Resumed with 97% of a run's measured time: a whole run would end inside it, but not inside LAST_RUN_SHARE of
    # it, so the run is shortened to what that share holds instead of risking the hours' end.
    left = first["seconds"] / 0.97
    kept = run_ensemble(workspace, n=2, max_runs=2, hours=left / 3600, images_per_second=None, **common)
    shortened = int(LAST_RUN_SHARE * 12 / 0.97)
    assert [record["epochs"] for record in kept] == [12, shortened] and shortened < 12
    assert f"a last one of {shortened} will" in caplog.text


def test_k_fold_members_spread_the_budget_over_whole_rounds():
    # The vote counts only complete rounds of K runs (kaggle_pipeline.submit): the fill plans whole rounds.
    assert planned_runs(None) == FILL_RUNS == 3
    assert [planned_runs(k) for k in (2, 3, 4, 5, 10)] == [4, 3, 4, 5, 10]
    # Five folds, 2.2 hours at 36 s an epoch: five runs of 39 epochs, not three runs of the cap.
    assert fill_epochs(30, 2.2, 54_000, 1_500)[0] == MAX_FILL_EPOCHS
    epochs, note = fill_epochs(30, 2.2, 54_000, 1_500, runs=planned_runs(5))
    assert epochs == int(FILL_SHARE * 2.2 * 3600 / 5 // 36) == 39
    assert "5 runs of them fill" in note


def test_a_k_fold_budget_that_holds_no_whole_round_is_said_before_any_run(tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    # 100 s an epoch at the search's speed; 36 s of hours cannot hold the two runs of a round of two folds.
    kept = run_ensemble(workspace, n=2, epochs=1, max_runs=2, threshold=0.0, seed=10, hours=0.01, fill_budget=True,
                        folds=2, images_per_second=images / 100)
    assert kept == []
    assert "cannot hold the 2 run(s) of at least 1 epochs that complete a round of folds" in caplog.text
    assert "give more HOURS or fewer FOLDS" in caplog.text
    assert not list(workspace.store.runs_dir.glob("run-*"))
    # Hours that hold the round: no warning, and the fill plans two rounds (4 runs; about 220 s an epoch on the
    # half of the labelled images a run of two folds trains on: 3 epochs, where 3 runs would get 4).
    caplog.clear()
    kept = run_ensemble(workspace, n=2, epochs=1, max_runs=1, threshold=0.0, seed=10, hours=1.0, fill_budget=True,
                        folds=2, images_per_second=images / 400)
    assert len(kept) == 1
    assert "complete a round of folds" not in caplog.text
    assert "3 epochs per run instead of the preset's 1" in caplog.text and "4 runs of them fill" in caplog.text
    assert kept[0]["epochs"] == 3
    # Resumed with one run of the round on disk: the warning counts the one run that completes it, at the speed
    # that run measured (hours far below one tiny epoch).
    caplog.clear()
    kept = run_ensemble(workspace, n=2, epochs=1, max_runs=2, threshold=0.0, seed=10, hours=0.00001, fill_budget=True,
                        images_per_second=None)
    assert len(kept) == 1
    assert "cannot hold the 1 run(s) of at least 1 epochs that complete a round of folds" in caplog.text


def test_a_machine_too_slow_for_one_run_of_the_presets_length_still_gets_a_shorter_member(tmp_path, csv_competition,
                                                                                         caplog):
    # A CPU without bfloat16 trained the full preset's wide net 4-5 times slower than the development one: its hours
    # held no run of the preset's 30 epochs, and the job ended with nothing to submit. With no member yet, the run
    # is shortened to what fits (here 100 s an epoch at the search's speed, 360 s, a preset of 4 epochs: 3).
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    common = {"n": 3, "epochs": 4, "max_runs": 3, "threshold": 0.0, "seed": 10, "hours": 0.1, "fill_budget": True,
              "images_per_second": images / 100}
    kept = run_ensemble(workspace, **common)
    assert [record["epochs"] for record in kept] == [3]
    assert "no run of 4 epochs fits the time left on this machine (100.0 s an epoch" in caplog.text
    assert "one of 3 epochs will, so that there is a member to submit" in caplog.text
    settings = json.loads(workspace.store.ensemble_path.read_text())
    assert settings["stop_reason"].startswith("HOURS=") and settings["kept"] == 1
    # K-fold runs vote only in whole rounds of K: one short run of a round would be no member, so none is trained
    # (the same 100 s an epoch on the half of the labelled images a run of two folds trains on).
    caplog.clear()
    other, _ = _tiny_store(tmp_path / "folds", csv_competition)
    assert run_ensemble(other, folds=2, **{**common, "images_per_second": images / 200}) == []
    assert "no run of 4 epochs fits" not in caplog.text
    assert not list(other.store.runs_dir.glob("run-*"))



def test_a_job_given_more_hours_after_a_shortened_first_member_trains_runs_of_the_full_length(
        tmp_path, csv_competition, caplog):
    # The warning's advice, followed: a machine too slow for the preset got one 3-epoch member; the same job run
    # again with more hours resumes. A resumed job keeps the length of the runs on disk, but a shortened run's
    # length is no plan: the new runs are the preset's 4 epochs at least (filled from the speed), not 3.
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    common = {"epochs": 4, "threshold": 0.0, "seed": 10, "fill_budget": True}
    [first] = run_ensemble(workspace, n=3, max_runs=3, hours=0.1, images_per_second=images / 100, **common)
    assert first["epochs"] == 3
    kept = run_ensemble(workspace, n=2, max_runs=3, hours=1.0, images_per_second=_speed_for(5, images, 1.0), **common)
    assert [record["epochs"] for record in kept] == [3, 5]
    assert "5 epochs per run instead of the preset's 4" in caplog.text
    assert "as long as the runs on disk" not in caplog.text
    # Once a run of the planned length is on disk, a resume keeps that length, the short member notwithstanding.
    kept = run_ensemble(workspace, n=3, max_runs=3, hours=1.0, images_per_second=_speed_for(7, images, 1.0), **common)
    assert [record["epochs"] for record in kept] == [3, 5, 5]

def test_a_last_run_is_shortened_to_the_time_left_but_never_below_the_shortest():
    assert epochs_that_fit(100, 10, shortest=5, longest=20) == int(LAST_RUN_SHARE * 100 // 10) == 9
    assert epochs_that_fit(100, 10, shortest=10, longest=20) is None  # not even the preset's length fits
    assert epochs_that_fit(10_000, 10, shortest=5, longest=20) == 19  # shorter than a whole run, by definition
    assert epochs_that_fit(100, None, shortest=5, longest=20) is None
    assert epochs_that_fit(-5, 10, shortest=1, longest=20) is None


def test_when_a_whole_run_no_longer_fits_the_last_one_is_shorter_and_a_resume_keeps_the_planned_length(
        tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace, images = _tiny_store(tmp_path, csv_competition)
    common = {"threshold": 0.0, "seed": 10, "epochs": 1, "fill_budget": True}
    [first] = run_ensemble(workspace, n=1, max_runs=1, hours=1.0, images_per_second=_speed_for(12, images, 1.0), **common)
    assert first["epochs"] == 12
    # Half a run's measured time left: a whole run would overrun it, about half a run fits.
    seconds = first["seconds"]
    kept = run_ensemble(workspace, n=3, max_runs=3, hours=seconds / 2 / 3600, images_per_second=None, **common)
    assert [record["epochs"] for record in kept] == [12, int(LAST_RUN_SHARE * 6)]
    assert f"a last one of {int(LAST_RUN_SHARE * 6)} will" in caplog.text
    assert json.loads(workspace.store.ensemble_path.read_text())["stop_reason"].startswith("HOURS=")
    # Resumed with time to spare: the runs are as long as the planned ones again, not the shortened one.
    kept = run_ensemble(workspace, n=3, max_runs=3, hours=1.0, images_per_second=None, **common)
    assert [record["epochs"] for record in kept] == [12, int(LAST_RUN_SHARE * 6), 12]
