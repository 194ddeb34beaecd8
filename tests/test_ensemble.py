"""The retrain loop: threshold gating, failed runs, and resuming after a kill without retraining kept runs."""

import json
import logging
import signal
import subprocess
import time

from conftest import CLI_ENVIRONMENT, cli_command, run_in_process

from kaggle_pipeline.ensemble import default_threshold, run_ensemble
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.store import atomic_write_json, kept_runs
from kaggle_pipeline.workspace import open_workspace


def write_best_params(workspace, params, accuracy=0.5):
    atomic_write_json(workspace.store.best_params_path, {"params": params, "validation_accuracy": accuracy})


def test_default_threshold_is_best_trial_minus_one_point(tmp_path, csv_competition):
    workspace = open_workspace(csv_competition, tmp_path / "models")
    write_best_params(workspace, TINY_PARAMS, accuracy=0.9312)
    assert default_threshold(workspace) == 0.9212


def test_kept_runs_are_resorted_by_the_threshold_in_force():
    records = [
        {"run": 1, "status": "done", "validation_accuracy": 0.90},
        {"run": 2, "status": "failed", "validation_accuracy": None},
        {"run": 3, "status": "done", "validation_accuracy": 0.93},
    ]
    assert [r["run"] for r in kept_runs(records, 0.91)] == [3]
    assert [r["run"] for r in kept_runs(records, 0.85)] == [1, 3]


def test_failed_runs_are_recorded_and_the_loop_goes_on(tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace = open_workspace(csv_competition, tmp_path / "models")
    # Keras refuses a dropout rate of 1.5 when it builds the model: a real crash inside a run.
    write_best_params(workspace, {**TINY_PARAMS, "dense2_dropout": 1.5})
    kept = run_ensemble(workspace, n=2, threshold=0.0, max_runs=2, epochs=1, seed=10)
    assert kept == []
    records = workspace.store.run_records()
    assert [record["status"] for record in records] == ["failed", "failed"]
    assert "dropout" in records[0]["error"].lower() or "rate" in records[0]["error"].lower()
    assert "stopped at MAX_RUNS=2" in caplog.text

    write_best_params(workspace, TINY_PARAMS)
    kept = run_ensemble(workspace, n=2, threshold=0.0, max_runs=4, epochs=1, seed=10)
    assert [record["run"] for record in kept] == [3, 4]
    assert [record["seed"] for record in kept] == [13, 14]
    saved = json.loads((workspace.store.runs_dir / "run-0003" / "run.json").read_text())
    assert saved["kept"] and saved["params"] == TINY_PARAMS and len(saved["history"]["val_accuracy"]) == 1
    assert (workspace.store.runs_dir / "run-0003" / "model.keras").exists()


def test_a_time_budget_starts_no_run_that_would_overrun_it(tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace = open_workspace(csv_competition, tmp_path / "models")
    write_best_params(workspace, TINY_PARAMS)
    # A budget far shorter than one run: the first run (no estimate yet) goes, the second would overrun it.
    kept = run_ensemble(workspace, n=5, threshold=0.0, max_runs=5, epochs=1, seed=10, hours=1e-5)
    assert len(kept) == 1
    assert "stopped by HOURS=1e-05" in caplog.text
    summary = json.loads(workspace.store.ensemble_path.read_text())
    assert summary["stop_reason"] == "HOURS=1e-05 time budget" and summary["kept"] == 1 and summary["hours"] == 1e-5

    # Resumed with the same budget: the run on disk says a run takes longer than that, so none starts.
    assert len(run_ensemble(workspace, n=5, threshold=0.0, max_runs=5, epochs=1, seed=10, hours=1e-5)) == 1
    assert len(workspace.store.run_records()) == 1

    kept = run_ensemble(workspace, n=2, threshold=0.0, max_runs=5, epochs=1, seed=10, hours=1.0)
    assert len(kept) == 2
    assert json.loads(workspace.store.ensemble_path.read_text())["stop_reason"] == "2 runs kept"


def ensemble_of_tiny_runs(tmp_path, competition, n):
    """A store with tiny best params, and the command line that retrains them until ``n`` are kept."""
    models = tmp_path / "models"
    workspace = open_workspace(competition, models)
    write_best_params(workspace, TINY_PARAMS)
    command = cli_command("ensemble", "--data", competition, "--models-dir", models,
                          "--n", n, "--epochs", 3, "--threshold", 0)
    return workspace, command


def test_killed_ensemble_resumes_without_retraining_kept_runs(tmp_path, csv_competition):
    workspace, command = ensemble_of_tiny_runs(tmp_path, csv_competition, n=3)
    runs = workspace.store.runs_dir

    process = subprocess.Popen(command, env=CLI_ENVIRONMENT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (runs / "run-0001" / "run.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (runs / "run-0001").exists(), "the first run never finished"
    first_run = (runs / "run-0001" / "run.json").read_bytes()
    # Kill while run 2 is training (or being written): no chance to clean up.
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()

    finished = run_in_process(*command[3:], cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    records = workspace.store.run_records()
    assert len(kept_runs(records, 0.0)) == 3
    assert (runs / "run-0001" / "run.json").read_bytes() == first_run  # never retrained
    assert len({record["seed"] for record in records}) == len(records)
    assert not list(runs.glob(".run-*"))  # the half-written run was cleared away


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, csv_competition):
    workspace, command = ensemble_of_tiny_runs(tmp_path, csv_competition, n=5)
    process = subprocess.Popen(command, env=CLI_ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = workspace.store.runs_dir
    deadline = time.time() + 120
    while not list(runs.glob(".run-0002.*")) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    assert (runs / "run-0001" / "run.json").exists()
    assert not list(runs.glob(".run-*"))


def test_runs_behind_the_kept_curve_are_aborted_and_recorded(tmp_path, csv_competition):
    workspace = open_workspace(csv_competition, tmp_path / "models")
    write_best_params(workspace, TINY_PARAMS)
    run_ensemble(workspace, n=3, threshold=0.0, max_runs=3, epochs=3, seed=10)
    # A margin of -1 puts the floor above 100% accuracy: the next run is stopped as soon as the rule may act.
    kept = run_ensemble(workspace, n=4, threshold=0.0, max_runs=4, epochs=3, seed=10, abort_margin=-1.0)
    assert len(kept) == 3
    record = json.loads((workspace.store.runs_dir / "run-0004" / "run.json").read_text())
    assert record["status"] == "aborted" and not record["kept"]
    assert record["stopped_epoch"] == 2 and len(record["history"]["val_accuracy"]) == 2
    assert len(record["abort_floor"]) == 3
    assert not (workspace.store.runs_dir / "run-0004" / "predictions.npz").exists()
    assert len(kept_runs(workspace.store.run_records(), 0.0)) == 3  # aborted runs never count as kept
    done = json.loads((workspace.store.runs_dir / "run-0001" / "run.json").read_text())
    assert done["stopped_epoch"] == 3 and len(done["history"]["epoch_images_per_second"]) == 3


def test_on_a_terminal_every_epoch_gets_a_line_and_a_live_counter(tmp_path, csv_competition):
    import os
    import pty

    workspace = open_workspace(csv_competition, tmp_path / "models")
    write_best_params(workspace, TINY_PARAMS)
    command = cli_command("ensemble", "--data", csv_competition, "--models-dir", tmp_path / "models",
                          "--n", 1, "--epochs", 2, "--threshold", 0)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, env=CLI_ENVIRONMENT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=terminal)
    os.close(terminal)
    output = b""
    while True:  # drain the terminal until the child closes it (EIO on Linux)
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    text = output.decode()
    for epoch in (1, 2):
        assert f"\r\x1b[K  run 1 epoch {epoch}/2  loss " in text and "run ETA" in text
    assert "ensemble: run 1 (seed 1001) val_acc" in text
