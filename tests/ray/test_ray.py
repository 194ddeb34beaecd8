"""EXECUTOR=ray: retrain runs as tasks, and the search on Ray Tune, on a real local Ray instance (2 CPUs),
written to the same run store as the local executor and search.

Run in their own pytest process (``make test-ray``; ``make test`` runs it second) because a Ray instance lives
for the whole process once started.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pandas as pd
import pytest
from conftest import CLI_ENVIRONMENT, cli_command

import kaggle_pipeline
from kaggle_pipeline.ensemble import run_ensemble
from kaggle_pipeline.executors import BREAK_RUN
from kaggle_pipeline.search import run_search
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.status import status_lines
from kaggle_pipeline.store import atomic_write_json, kept_runs
from kaggle_pipeline.workspace import open_workspace

# ray.tune, not ray: without Ray installed, this very folder (tests/ray) would import as a namespace package "ray".
pytest.importorskip("ray.tune", reason="Ray is optional: make setup-ray")
import ray  # noqa: E402 - only once Ray is there

from kaggle_pipeline.ray_search import SearchAbortStopper, run_tune_search  # noqa: E402 - only once Ray is there


@pytest.fixture(scope="module")
def cluster():
    # As a notebook would: its own Ray, with the package shipped to the workers.
    package = str(Path(kaggle_pipeline.__file__).parent)
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"py_modules": [package]})
    yield context.address_info["address"]
    ray.shutdown()


def tiny_store(tmp_path, competition):
    workspace = open_workspace(competition, tmp_path / "models")
    atomic_write_json(workspace.store.best_params_path, {"params": TINY_PARAMS, "validation_accuracy": 0.5})
    return workspace


def wait_for_free_cpus(expected: float, seconds: float = 30.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if ray.available_resources().get("CPU", 0) == expected:
            return True
        time.sleep(0.2)
    return False


def test_runs_train_as_ray_tasks_and_failures_are_recorded(tmp_path, csv_competition, cluster, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace = tiny_store(tmp_path, csv_competition)
    # Run 2 raises inside its training; run 3's worker process dies (as when a node is lost or OOM-killed).
    monkeypatch.setenv(BREAK_RUN, "2:error,3:crash")
    kept = run_ensemble(workspace, n=3, threshold=0.0, max_runs=10, epochs=2, seed=10, executor="ray")
    assert "Ray executor, 2 CPU(s), 1 per run: up to 2 runs at once" in caplog.text

    records = {record["run"]: record for record in workspace.store.run_records()}
    assert sorted(records) == [1, 2, 3, 4, 5]  # nothing trained beyond what could still be needed
    assert records[2]["status"] == "failed" and records[2]["error"] == f"RuntimeError: run 2 broken on purpose ({BREAK_RUN})"
    assert records[3]["status"] == "failed" and "Worker" in records[3]["error"]  # WorkerCrashedError, no retry
    assert sorted(record["run"] for record in kept) == [1, 4, 5]
    for number in (1, 4, 5):
        record = records[number]
        assert record["executor"] == "ray" and record["seed"] == 10 + number and record["status"] == "done"
        run_dir = workspace.store.run_dir(record)
        assert set(record["files"]) == {"history.csv", "predictions.npz", "model.keras"}
        keras.models.load_model(run_dir / "model.keras", safe_mode=True)
    assert json.loads(workspace.store.ensemble_path.read_text())["stop_reason"] == "3 runs kept"
    assert wait_for_free_cpus(2.0)


def test_interrupted_ray_ensemble_resumes_with_the_local_executor(tmp_path, csv_competition, cluster):
    """The CLI joins the running cluster (--ray-address); Ctrl-C cancels its tasks; the local executor finishes."""
    workspace = tiny_store(tmp_path, csv_competition)
    runs = workspace.store.runs_dir
    command = cli_command("ensemble", "--data", csv_competition, "--models-dir", tmp_path / "models", "--n", 6,
                          "--epochs", 3, "--threshold", 0, "--no-early-abort", "--executor", "ray", "--ray-address", cluster)
    # ray.init put RAY_AUTH_MODE=token in this process's environment: a client of the cluster needs it too.
    environment = {**CLI_ENVIRONMENT, **{name: value for name, value in os.environ.items() if name.startswith("RAY_")}}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while len(list(runs.glob("run-*"))) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    if process.poll() is not None:
        raise AssertionError(process.stderr.read()[-3000:])
    assert len(list(runs.glob("run-*"))) >= 2, "no two runs finished on Ray"
    # make status shows the runs under way (two at once here); polled, as a run may be between tasks
    for _ in range(50):
        training = [line for line in status_lines(workspace.store, tmp_path / "submissions") if "training now" in line]
        if training:
            break
        time.sleep(0.1)
    assert training and training[0].strip().startswith("training now: run ")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
    assert not list(runs.glob(".run-*"))  # runs that were still training left nothing behind
    assert wait_for_free_cpus(2.0), "the interrupted runs' tasks were not cancelled"
    before = {record["run"]: (workspace.store.run_dir(record) / "run.json").read_bytes()
              for record in workspace.store.run_records()}

    kept = run_ensemble(workspace, n=6, threshold=0.0, max_runs=12, epochs=3, seed=1000, abort_margin=None)
    assert len(kept) == 6
    records = workspace.store.run_records()
    executors = {record["run"]: record["executor"] for record in records}
    assert {executors[number] for number in before} == {"ray"} and "local" in executors.values()
    for number, body in before.items():  # the Ray runs were kept as they were, not retrained
        assert (runs / f"run-{number:04d}" / "run.json").read_bytes() == body
    assert len({record["seed"] for record in records}) == len(records)
    assert len(kept_runs(records, 0.0)) == 6


def test_a_ray_tune_search_writes_what_the_local_search_writes(tmp_path, csv_competition, cluster):
    settings = {"epochs": 2, "seed": 1, "space_name": "tiny", "subset": None}
    local = open_workspace(csv_competition, tmp_path / "local")
    run_search(local, evals=2, **settings)

    tuned = open_workspace(csv_competition, tmp_path / "tune")
    best = run_tune_search(tuned, evals=2, **settings)
    trials = json.loads((tuned.store.search_dir / "trials.json").read_text())
    assert trials["settings"] == json.loads((local.store.search_dir / "trials.json").read_text())["settings"]
    results = [trial["result"] for trial in trials["trials"]]
    assert len(results) == 2 and all(result["status"] == "ok" for result in results)
    assert TINY_PARAMS in [result["params"] for result in results]  # the space's starting point was tried
    assert len({result["seed"] for result in results}) == 2
    assert best == json.loads(tuned.store.best_params_path.read_text())
    assert best["validation_accuracy"] == max(result["validation_accuracy"] for result in results)
    assert set(best) == set(json.loads(local.store.best_params_path.read_text()))
    tuned_table = pd.read_csv(tuned.store.search_dir / "trials.csv")
    assert list(tuned_table.columns) == list(pd.read_csv(local.store.search_dir / "trials.csv").columns)
    assert tuned_table["trial"].tolist() == [1, 2]

    # Either search resumes the other's trials: the local one adds a third (TPE sees both).
    run_search(tuned, evals=3, **settings)
    assert len(json.loads((tuned.store.search_dir / "trials.json").read_text())["trials"]) == 3
    # ... and Tune resumes the local one's.
    run_tune_search(local, evals=3, **settings)
    assert len(json.loads((local.store.search_dir / "trials.json").read_text())["trials"]) == 3
    assert wait_for_free_cpus(2.0)


def test_the_search_abort_stopper_applies_the_rule_to_trials():
    stopper = SearchAbortStopper(epochs=5, margin=0.03)
    for accuracy in (0.90, 0.88, 0.86, 0.50):
        stopper("finished", {"final": True, "validation_accuracy": accuracy,
                             "val_accuracy_by_epoch": [accuracy - 0.2, accuracy - 0.1, accuracy - 0.05, accuracy, accuracy]})
    # The floor at epoch 2 is the lowest of the best three curves (0.86 - 0.1 = 0.76) minus 0.03 = 0.73.
    assert stopper("t", {"epoch": 2, "val_accuracy": 0.72})
    assert not stopper("t", {"epoch": 2, "val_accuracy": 0.74})
    assert not stopper("t", {"epoch": 1, "val_accuracy": 0.0})  # never before FIRST_EPOCH
    assert not stopper("t", {"epoch": 5, "val_accuracy": 0.0})  # never at the last epoch
    assert not SearchAbortStopper(epochs=5)("t", {"epoch": 3, "val_accuracy": 0.0})  # no finished trials yet


GPU_PLACEMENT = r"""
import json, logging, sys, threading, time
from pathlib import Path
import ray
import kaggle_pipeline
from kaggle_pipeline.ensemble import run_ensemble
from kaggle_pipeline.ray_search import run_tune_search
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.store import atomic_write_json
from kaggle_pipeline.workspace import open_workspace

competition, models = Path(sys.argv[1]), Path(sys.argv[2])
# Two logical GPUs: Ray schedules by them as by real ones; TensorFlow (tensorflow-cpu) still trains on the CPU.
ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False,
         runtime_env={"py_modules": [str(Path(kaggle_pipeline.__file__).parent)]})
lines = []
handler = logging.Handler()
handler.emit = lambda record: lines.append(record.getMessage())
logging.getLogger("kaggle_pipeline").addHandler(handler)
logging.getLogger("kaggle_pipeline").setLevel(logging.INFO)
workspace = open_workspace(competition, models)
atomic_write_json(workspace.store.best_params_path, {"params": TINY_PARAMS, "validation_accuracy": 0.5})
free, done = [], threading.Event()
def watch():
    while not done.is_set():
        free.append(ray.available_resources().get("GPU", 0.0))
        time.sleep(0.05)
def watched(work):
    free.clear()
    done.clear()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return work()
    finally:
        done.set()
        watcher.join()
        time.sleep(1.0)
        free.append(ray.available_resources().get("GPU", 0.0))

kept = watched(lambda: run_ensemble(workspace, n=4, threshold=0.0, max_runs=8, epochs=3, seed=20, executor="ray",
                                    abort_margin=None))
ensemble = {"kept": len(kept), "least_free": min(free), "most_free": max(free), "free_after": free[-1],
            "executors": sorted({r["executor"] for r in workspace.store.run_records()})}
searched = open_workspace(competition, models.parent / "search")
watched(lambda: run_tune_search(searched, evals=4, epochs=2, seed=1, space_name="tiny", subset=None))
trials = json.loads((searched.store.search_dir / "trials.json").read_text())["trials"]
search = {"trials": len(trials), "least_free": min(free), "most_free": max(free), "free_after": free[-1]}
print(json.dumps({"lines": lines, "ensemble": ensemble, "search": search}))
ray.shutdown()
"""


def test_with_gpus_each_run_holds_one_and_as_many_run_at_once(tmp_path, csv_competition):
    """Ray's GPU placement, checked without a GPU: a Ray of 2 CPUs and 2 logical GPUs (a process of its own, since
    the module's Ray has none). Each run, and each trial of a Tune search, asks for one GPU, two run at once (both
    GPUs held at some moment, never more asked for), and both are free again afterwards. Real GPUs were not lent to this project; this checks
    the scheduling, not CUDA."""
    result = subprocess.run([sys.executable, "-c", GPU_PLACEMENT, str(csv_competition), str(tmp_path / "models")],
                            capture_output=True, text=True, timeout=300, env=CLI_ENVIRONMENT)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    ensemble, search = outcome["ensemble"], outcome["search"]
    assert ensemble["kept"] == 4 and ensemble["executors"] == ["ray"] and search["trials"] == 4
    assert any("Ray executor, 2 GPU(s), one per run: up to 2 runs at once" in line for line in outcome["lines"])
    for placed in (ensemble, search):  # retrain runs, then Tune's trials
        assert placed["least_free"] == 0.0 and placed["most_free"] <= 2.0 and placed["free_after"] == 2.0, placed
