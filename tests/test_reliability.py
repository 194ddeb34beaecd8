"""Kill anywhere, one writer at a time, checksums, and disk faults: nothing finished is ever lost or misread.

The kill tests SIGKILL real ``search`` and ``ensemble`` processes (tiny nets) at random moments while they
train, and also halfway through writing an artifact (KAGGLE_PIPELINE_KILL_DURING_WRITE, store.py), then rerun
them to completion, checking the store after every kill.
"""

import errno
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import CLI_ENVIRONMENT, cli_command

from kaggle_pipeline.cli import main
from kaggle_pipeline.ensemble import run_ensemble
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.store import KILL_DURING_WRITE, atomic_write_json, atomic_write_text, file_digest, kept_runs
from kaggle_pipeline.workspace import open_workspace

# Random SIGKILLs per stage on top of the kills during writes. Each one is a fresh process (~8 s of start-up and
# training here), so make test keeps a few; KILLS_PER_STAGE=20 make test soaks them longer.
KILLS_PER_STAGE = int(os.environ.get("KILLS_PER_STAGE", "4"))


def start(command, stderr_path, extra_environment=None):
    # A process killed while Keras saves a model leaves Keras' temporary folder behind: it goes under the test's
    # own folder, not the machine's /tmp.
    temporaries = stderr_path.parent / "tmp"
    temporaries.mkdir(exist_ok=True)
    environment = {**CLI_ENVIRONMENT, "TMPDIR": str(temporaries), **(extra_environment or {})}
    with open(stderr_path, "w") as stderr:
        return subprocess.Popen([str(part) for part in command], env=environment, stdout=subprocess.DEVNULL, stderr=stderr)


def kill_after_progress(command, stderr_path, marker, generator, timeout=180):
    """Start ``command``, wait for 1-3 lines containing ``marker`` (epochs finishing), sleep a random fraction
    of a second more and SIGKILL it. Returns False if it finished on its own first."""
    process = start(command, stderr_path, {"KAGGLE_PIPELINE_PROGRESS": "epochs"})  # epoch lines off a terminal
    wanted = generator.randint(1, 3)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            assert process.returncode == 0, stderr_path.read_text()
            return False
        if stderr_path.read_text().count(marker) >= wanted:
            time.sleep(generator.uniform(0.0, 0.6))
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"no progress within {timeout} s: {stderr_path.read_text()[-2000:]}")


def kill_during_write(command, stderr_path, file_name):
    """Run ``command`` until it SIGKILLs itself halfway through writing ``file_name``."""
    process = start(command, stderr_path, {KILL_DURING_WRITE: file_name})
    process.wait(timeout=180)
    return process.returncode == -signal.SIGKILL


def finish(command, stderr_path):
    process = start(command, stderr_path)
    assert process.wait(timeout=300) == 0, stderr_path.read_text()[-3000:]
    return stderr_path.read_text()


def check_runs(store, seen: dict) -> None:
    """Every run folder is whole (checksums match), none was set aside, and no kept run ever changed."""
    records = store.run_records()
    assert not list(store.runs_dir.glob(".corrupt-*")), "a run was damaged"
    for record in records:
        run_dir = store.run_dir(record)
        body = (run_dir / "run.json").read_bytes()
        if record["run"] in seen:
            assert seen[record["run"]] == body, f"run {record['run']} was retrained or rewritten"
        seen[record["run"]] = body
    assert len({record["seed"] for record in records}) == len(records)


def test_ensemble_survives_kills_anywhere(tmp_path, csv_competition):
    import keras

    models = tmp_path / "models"
    workspace = open_workspace(csv_competition, models)
    atomic_write_json(workspace.store.best_params_path, {"params": TINY_PARAMS, "validation_accuracy": 0.5})
    wanted = 4
    command = cli_command("ensemble", "--data", csv_competition, "--models-dir", models,
                          "--n", wanted, "--epochs", 3, "--threshold", 0, "--max-runs", 100)
    generator = random.Random(7)
    seen: dict = {}
    kills = 0
    for file_name in ("run.json", "predictions.npz", "ensemble.json"):
        assert kill_during_write(command, tmp_path / f"write-{file_name}.log", file_name)
        check_runs(workspace.store, seen)
        kills += 1
    while kills < KILLS_PER_STAGE + 3:
        # Too few runs left to kill: start over with more wanted, so every kill lands on work.
        if len(kept_runs(workspace.store.run_records(), 0.0)) >= wanted - 1:
            wanted += 2
            command[command.index("--n") + 1] = wanted
        if kill_after_progress(command, tmp_path / f"kill-{kills}.log", " epoch ", generator):
            kills += 1
        check_runs(workspace.store, seen)

    finish(command, tmp_path / "final.log")
    check_runs(workspace.store, seen)
    kept = kept_runs(workspace.store.run_records(), 0.0)
    assert len(kept) == wanted
    for record in kept:
        run_dir = workspace.store.run_dir(record)
        with np.load(run_dir / "predictions.npz", allow_pickle=False) as predictions:
            assert predictions["test"].shape[1] == 3
        keras.models.load_model(run_dir / "model.keras", safe_mode=True)
        assert set(record["files"]) == {"history.csv", "predictions.npz", "model.keras"}
    assert not list(workspace.store.runs_dir.glob(".run-*"))


def test_search_survives_kills_anywhere(tmp_path, csv_competition):
    models = tmp_path / "models"
    evals = max(12, 2 * KILLS_PER_STAGE)  # a kill lands after 1-3 of the 2-epoch trials' epochs: enough left to kill
    command = cli_command("search", "--data", csv_competition, "--models-dir", models, "--space", "tiny",
                          "--evals", evals, "--search-epochs", 2)
    trials_path = models / "pixels" / "search" / "trials.json"
    generator = random.Random(11)
    kills = 0
    for file_name in ("trials.json", "best_params.json"):
        assert kill_during_write(command, tmp_path / f"write-{file_name}.log", file_name)
        kills += 1
    finished_before = 0
    while kills < KILLS_PER_STAGE + 2:
        if not kill_after_progress(command, tmp_path / f"kill-{kills}.log", " epoch ", generator):
            break
        kills += 1
        if trials_path.exists():
            trials = json.loads(trials_path.read_text())["trials"]
            numbers = [trial["tid"] for trial in trials]
            assert numbers == list(range(len(numbers)))  # in order, none twice, none lost
            assert len(numbers) >= finished_before
            finished_before = len(numbers)
    assert kills >= KILLS_PER_STAGE, "the search finished before it could be killed often enough"
    finish(command, tmp_path / "final.log")
    trials = json.loads(trials_path.read_text())["trials"]
    assert [trial["tid"] for trial in trials] == list(range(evals))
    assert json.loads((models / "pixels" / "best_params.json").read_text())["trials"] == evals


def test_a_second_writer_is_refused_and_a_dead_holder_is_taken_over(tmp_path, csv_competition, capsys):
    models = tmp_path / "models"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from kaggle_pipeline.workspace import open_workspace; "
         f"open_workspace(Path({str(csv_competition)!r}), Path({str(models)!r}), lock='ensemble'); "
         "print('locked', flush=True); time.sleep(600)"],
        env=CLI_ENVIRONMENT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(["search", "--data", str(csv_competition), "--models-dir", str(models), "--space", "tiny",
                     "--evals", "1"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1
        assert f"in use by another kaggle_pipeline process (pid {holder.pid}, stage ensemble" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder died without cleaning up: its lock file is still there, naming it, and is taken over.
    assert f"pid {holder.pid}" in (models / "pixels" / ".lock").read_text()
    workspace = open_workspace(csv_competition, models, lock="submit")
    workspace.lock.release()
    assert f"pid {os.getpid()}, stage submit" in (models / "pixels" / ".lock").read_text()


def test_a_run_whose_files_fail_their_checksum_is_set_aside_and_redone(tmp_path, csv_competition, caplog):
    caplog.set_level(logging.INFO, logger="kaggle_pipeline")
    workspace = open_workspace(csv_competition, tmp_path / "models")
    atomic_write_json(workspace.store.best_params_path, {"params": TINY_PARAMS, "validation_accuracy": 0.5})
    run_ensemble(workspace, n=2, threshold=0.0, max_runs=4, epochs=1, seed=10)
    damaged = workspace.store.runs_dir / "run-0001" / "predictions.npz"
    record = json.loads((damaged.parent / "run.json").read_text())
    assert record["files"]["predictions.npz"] == file_digest(damaged)
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))

    assert [record["run"] for record in workspace.store.run_records()] == [2]
    err = caplog.text
    assert "predictions.npz: checksum does not match run.json; run set aside as .corrupt-run-0001-" in err
    kept = run_ensemble(workspace, n=2, threshold=0.0, max_runs=4, epochs=1, seed=10)
    assert [record["run"] for record in kept] == [2, 3]
    assert len(list(workspace.store.runs_dir.glob(".corrupt-run-0001-*"))) == 1


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, failure):
    target = tmp_path / "best_params.json"
    atomic_write_text(target, "old\n")

    def failing_replace(source, destination):
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(os, "replace", failing_replace)  # the disk, not our code, fails
    with pytest.raises(PipelineError) as raised:
        atomic_write_text(target, "new\n")
    message = str(raised.value)
    assert message.startswith(f"{target}: cannot write ({os.strerror(failure)})") and "\n" not in message
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["best_params.json"]  # no temporary left behind


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    """Temporary files are private while written; the result is readable like any file the user makes."""
    target = tmp_path / "latest.csv"
    atomic_write_text(target, "ImageId,Label\n")
    ordinary = tmp_path / "ordinary.csv"
    ordinary.write_text("x\n")
    assert target.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777


def test_a_read_only_models_folder_stops_the_cli_in_one_line(tmp_path, csv_competition, monkeypatch, capsys):
    """The first write of a stage fails (EROFS from mkdir, as on a read-only mount): one line, exit 2."""
    real_mkdir = type(tmp_path).mkdir

    def read_only_mkdir(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "models")):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "mkdir", read_only_mkdir)
    code = main(["search", "--data", str(csv_competition), "--models-dir", str(tmp_path / "models"),
                 "--space", "tiny", "--evals", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err and err.startswith("error: ")
