"""k-fold members (``ensemble --folds K``, issue 15): folds cover every labelled image once per K runs, a run's
out-of-fold rows are exactly the images it did not train on, the threshold compares each run on its own fold,
a killed k-fold ensemble resumes the fold cycle, and a store's folds are fixed. Tiny data, tiny nets, real CLI."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
from conftest import CLI_ENVIRONMENT, cli_command, run_cli, run_in_process, write_csv_competition

from kaggle_pipeline.ensemble import make_folds, next_fold
from kaggle_pipeline.executors import RunData
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.store import BestParams, Run, RunStore, SubmissionStore
from kaggle_pipeline.workspace import open_workspace

FOLDS = 3


def prepared_store(tmp_path):
    """A tiny competition whose store has a best trial (the tiny net), as a search leaves it."""
    data = write_csv_competition(tmp_path / "pixels", count=90, test_count=30)
    workspace = open_workspace(data, tmp_path / "models")
    workspace.store.write_best_params(BestParams.from_dict({"params": TINY_PARAMS, "validation_accuracy": 0.5}))
    return data, workspace


def ensemble_command(data, tmp_path, *extra):
    return cli_command("ensemble", "--data", data, "--models-dir", tmp_path / "models", "--epochs", "1", "--no-tta",
                       "--no-early-abort", "--threshold", "0", *extra)


def check_fold_runs(store: RunStore, labels: np.ndarray) -> list[dict]:
    """Every run's fold, predictions and score against the store's saved folds."""
    folds = store.read_folds(len(labels))
    runs = store.run_records(repair=False)
    assert [record["fold"] for record in runs] == [number % FOLDS for number in range(len(runs))]
    for start in range(0, len(runs) - FOLDS + 1, FOLDS):
        held_out = np.concatenate([folds.members(record["fold"]) for record in runs[start:start + FOLDS]])
        assert np.array_equal(np.sort(held_out), np.arange(len(labels)))  # each image held out exactly once
    for record in runs:
        rows, trained_on = folds.members(record["fold"]), folds.training(record["fold"])
        assert not np.intersect1d(rows, trained_on).size and len(rows) + len(trained_on) == len(labels)
        validation = store.load_predictions(record)["validation"]
        assert validation.shape == (len(rows), 3)
        # The recorded score (the one the threshold compares) is the run's own held-out fold's.
        assert record["validation_accuracy"] == pytest.approx(np.mean(validation.argmax(axis=1) == labels[rows]), abs=1e-6)
    return runs


def test_folds_stratified_each_image_once():
    labels = np.repeat(np.arange(4), [30, 20, 11, 7])
    folds = make_folds(labels, 5)
    assert np.array_equal(make_folds(labels, 5).assignment, folds.assignment)  # seeded
    sizes = np.bincount(folds.assignment, minlength=5)
    assert sizes.sum() == len(labels) and sizes.max() - sizes.min() <= 1
    for label in range(4):
        per_fold = np.bincount(folds.assignment[labels == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    data = RunData(np.arange(len(labels))[:, None], labels, None, None, None, 4, folds.assignment)
    for fold in range(5):
        part = data.for_fold(fold)
        assert np.array_equal(part.x_validation[:, 0], folds.members(fold))  # held-out rows, in index order
        assert np.array_equal(part.x_train[:, 0], folds.training(fold))
    # The next run holds out the fold with the fewest kept or training runs.
    assert next_fold([{"fold": 0}, {"fold": 1}], [], 3) == 2
    assert next_fold([{"fold": 0}, {"fold": 1}], [2], 3) == 0
    assert next_fold([{"fold": 1}], [], 3) == 0


def test_kfold_ensemble_and_submit(tmp_path):
    data, workspace = prepared_store(tmp_path)
    finished = subprocess.run(ensemble_command(data, tmp_path, "--folds", FOLDS, "--n", "2"), cwd=tmp_path,
                              env=CLI_ENVIRONMENT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "rounded up to 3" in finished.stderr
    # Its epochs are counted on what a k-fold run trains on (2 of 3 folds of 90 images), not the fixed split's 81.
    assert "60 training images make" in finished.stderr
    # Three new models' predict calls on sets smaller than a batch: one trace each, not a retracing to warn about.
    assert "retracing" not in finished.stderr
    store = workspace.store
    assert store.ensemble_settings().folds == FOLDS
    runs = check_fold_runs(store, workspace.competition.y_train)
    assert len(runs) == FOLDS and all(Run(record).is_kept(0.0) for record in runs)

    submitted = run_cli("submit", "--data", data, "--models-dir", tmp_path / "models", "--submissions-dir",
                        tmp_path / "submissions", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    summary = SubmissionStore(tmp_path / "submissions", "pixels").latest()
    assert summary["folds"] == FOLDS and summary["rounds_voted"] == 1 and summary["runs"] == [1, 2, 3]
    assert "out-of-fold" in summary["validation_judged_on"]
    # Each run is scored on the fold it held out (a round of one has no spread; its runs do).
    fold_scores = [Run(record).score("accuracy") for record in runs]
    assert summary["run_validation_score_mean"] == pytest.approx(np.mean(fold_scores))
    assert summary["run_validation_score_std"] == pytest.approx(np.std(fold_scores))
    assert f"runs' held-out fold accuracy  {np.mean(fold_scores):.4f} ± {np.std(fold_scores):.4f}" in submitted.stderr

    # Per fold: a threshold above one run's own-fold score leaves its round incomplete, so nothing is voted.
    scores = [record["validation_accuracy"] for record in runs]
    worst = min(scores)
    if max(scores) > worst:
        refused = run_cli("submit", "--data", data, "--models-dir", tmp_path / "models", "--submissions-dir",
                          tmp_path / "submissions", "--threshold", str(min(1.0, worst + 1e-6)), cwd=tmp_path)
        assert refused.returncode == 2 and "no complete round of 3 folds" in refused.stderr, refused.stderr

    # A store's folds cannot change: one line naming the option, nothing written.
    before = store.folds_path.read_bytes(), store.ensemble_path.read_bytes()
    changed = subprocess.run(ensemble_command(data, tmp_path, "--folds", "2", "--n", "2"), cwd=tmp_path,
                             env=CLI_ENVIRONMENT, capture_output=True, text=True, timeout=120)
    assert changed.returncode == 2
    assert changed.stderr.count("\n") == 1 and "--folds" in changed.stderr and "holds 3 folds" in changed.stderr
    assert (store.folds_path.read_bytes(), store.ensemble_path.read_bytes()) == before


@pytest.mark.parametrize("value", ["0", "1", "21"])
def test_folds_out_of_range_refused(tmp_path, value):
    data = write_csv_competition(tmp_path / "pixels", count=90, test_count=30)
    finished = run_cli("ensemble", "--data", data, "--models-dir", tmp_path / "models", "--folds", value, cwd=tmp_path)
    assert finished.returncode == 2 and finished.stderr.count("\n") == 1 and "--folds" in finished.stderr
    assert not (tmp_path / "models").exists()


def test_folds_refused_on_a_fixed_split_store(tmp_path):
    """Runs validated on the fixed split cannot be mixed with k-fold runs (a store made by today's code)."""
    data, workspace = prepared_store(tmp_path)
    (workspace.store.runs_dir / "run-0001").mkdir(parents=True)
    finished = run_cli("ensemble", "--data", data, "--models-dir", tmp_path / "models", "--folds", "3", cwd=tmp_path)
    assert finished.returncode == 2 and finished.stderr.count("\n") == 1
    assert "--folds" in finished.stderr and "fixed split" in finished.stderr
    assert not workspace.store.folds_path.exists()


def test_killed_kfold_ensemble_resumes_the_fold_cycle(tmp_path):
    data, workspace = prepared_store(tmp_path)
    store = workspace.store
    command = [str(part) for part in ensemble_command(data, tmp_path, "--folds", FOLDS, "--n", FOLDS)]
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(command, cwd=tmp_path, env=CLI_ENVIRONMENT, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 120
    while not (store.runs_dir / "run-0001" / "run.json").exists():
        assert process.poll() is None and time.time() < deadline, (tmp_path / "killed.log").read_text()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = [record["run"] for record in store.run_records(repair=False)]
    assert done and done != [1, 2, 3], "the ensemble finished before it could be killed"
    # The rerun needs no --folds: the store's are used, and the cycle goes on at the next fold.
    resumed = run_in_process(*ensemble_command(data, tmp_path, "--n", FOLDS)[3:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    runs = check_fold_runs(store, workspace.competition.y_train)
    assert [record["run"] for record in runs] == [1, 2, 3]
    assert store.ensemble_settings().folds == FOLDS


def write_fold_run(store: RunStore, number: int, fold: int, validation: np.ndarray, test: np.ndarray,
                   labels: np.ndarray, fingerprint: str) -> None:
    """A finished run holding out ``fold``, through the store's own run writer (no training)."""
    temporary = store.begin_run(number)
    store.write_run_predictions(temporary, validation, test)
    accuracy = float(np.mean(validation.argmax(axis=1) == labels))
    store.seal_run(temporary, Run.from_dict({"run": number, "status": "done", "kept": True, "fold": fold,
                                             "validation_accuracy": accuracy, "fingerprint": fingerprint,
                                             "seed": number, "epochs": 1, "seconds": 1.0,
                                             "history": {"loss": [1.0], "accuracy": [accuracy],
                                                         "val_loss": [1.0], "val_accuracy": [accuracy]}}))
    store.commit_run(temporary, number)


def test_vote_on_out_of_fold_rounds_and_threshold_per_fold(tmp_path):
    """Each out-of-fold row comes from the round's run that held that image out; the threshold is compared on
    each run's own fold, so a run below it leaves its round out; a partial round is not voted."""
    from kaggle_pipeline.errors import PipelineError
    from kaggle_pipeline.store import EnsembleSettings
    from kaggle_pipeline.submit import make_submission, stored_predictions

    data, workspace = prepared_store(tmp_path)
    store, competition = workspace.store, workspace.competition
    labels, tests = competition.y_train, len(competition.x_test)
    folds = make_folds(labels, FOLDS)
    store.write_folds(folds)
    store.write_ensemble_settings(EnsembleSettings.from_dict({"threshold": 0.5, "folds": FOLDS}))
    rng = np.random.default_rng(0)
    # Run 2 (fold 1) is right on a quarter of its fold only: below 0.5 on its own fold, whatever the others do.
    right_share = {1: 1.0, 2: 0.25, 3: 1.0, 4: 1.0, 5: 0.8, 6: 1.0, 7: 1.0}
    written = {}
    for number, share in right_share.items():
        fold = (number - 1) % FOLDS
        rows = folds.members(fold)
        truth = labels[rows].copy()
        wrong = rng.random(len(rows)) >= share
        truth[wrong] = (truth[wrong] + 1) % 3
        validation = np.eye(3, dtype=np.float32)[truth] * 0.9 + 0.1 / 3
        test = rng.dirichlet(np.ones(3), tests).astype(np.float32)
        write_fold_run(store, number, fold, validation, test, labels[rows], competition.fingerprint())
        written[number] = (fold, validation, test)

    members = stored_predictions(workspace)
    # Fold 1 has one kept run (run 5; run 2 fails the threshold on its own fold): one complete round, runs 1, 5, 3;
    # run 4 (fold 0) and run 6 (fold 2) wait for a second round; run 7 (fold 0) too.
    assert [record["run"] for record in members.records] == [1, 3, 5]
    assert members.validation.shape == (len(labels), 1, 3) and not np.isnan(members.validation).any()
    for number in (1, 5, 3):
        fold, validation, _ = written[number]
        rows = folds.members(fold)
        assert np.array_equal(members.validation[rows, 0], validation)
        assert (folds.assignment[rows] == written[number][0]).all()  # never an image the run trained on
    assert np.allclose(members.test[:, 0], np.mean([written[number][2] for number in (1, 5, 3)], axis=0), atol=1e-6)
    assert np.array_equal(members.y, labels)

    # Run 5 (fold 1, right on about 80% of its fold) fails 0.999 on its own fold: fold 1 has no kept run left.
    assert Run(store.run_records()[4]).score() < 0.999
    with pytest.raises(PipelineError, match="no complete round of 3 folds"):
        stored_predictions(workspace, threshold=0.999)
    summary = make_submission(workspace, tmp_path / "submissions")
    assert summary["rounds_voted"] == 1 and summary["runs"] == [1, 3, 5]

    from kaggle_pipeline.report import make_report
    from kaggle_pipeline.status import status_lines

    assert any("3 folds, kept runs per held-out fold 3 1 2: 1 complete round(s)" in line
               for line in status_lines(store, tmp_path / "submissions"))
    make_report(workspace, tmp_path / "reports", tmp_path / "submissions")
    assert (tmp_path / "reports" / "pixels" / "index.html").is_file()


def test_early_abort_compares_a_run_only_with_runs_of_its_own_fold():
    from kaggle_pipeline.ensemble import early_abort_floor

    params = dict(TINY_PARAMS)

    def kept_run(fold, curve):
        return {"params": params, "epochs": 3, "fold": fold, "history": {"val_accuracy": curve}}

    easy = [kept_run(0, [0.80, 0.90, 0.95]) for _ in range(3)]   # fold 0 is easy
    hard = [kept_run(1, [0.70, 0.80, 0.85]) for _ in range(2)]   # fold 1 is hard: two kept runs so far
    kept = easy + hard
    assert early_abort_floor(kept, params, 3, 0.03, fold=0) == pytest.approx([0.77, 0.87, 0.92])
    assert early_abort_floor(kept, params, 3, 0.03, fold=1) is None  # not judged by the easy fold's curves
    assert early_abort_floor(kept + [kept_run(1, [0.72, 0.79, 0.86])], params, 3, 0.03, fold=1) == \
        pytest.approx([0.67, 0.76, 0.82])
    # A fixed-split store (no folds) is judged as before: all its kept runs.
    fixed = [{key: value for key, value in record.items() if key != "fold"} for record in easy]
    assert early_abort_floor(fixed, params, 3, 0.03) == pytest.approx([0.77, 0.87, 0.92])


def _folds_with(**change):
    """folds.npz's arrays as make_folds writes them for the 90 images of prepared_store, with ``change`` applied."""
    def write(path):
        folds = make_folds(np.arange(90) % 3, FOLDS)
        arrays = {"assignment": folds.assignment, "k": np.int64(FOLDS), "seed": np.int64(folds.seed), **change}
        np.savez(path, **{name: value for name, value in arrays.items() if value is not None})
    return write


DAMAGED_FOLDS = {
    "cut-in-half": lambda path: path.write_bytes(path.read_bytes()[:200]),
    "a-text-file": lambda path: path.write_text("fold\n0\n1\n2\n"),
    "a-folder": lambda path: (path.unlink(), path.mkdir()),
    "one-fold": _folds_with(assignment=np.zeros(90, dtype=np.int64), k=np.int64(1)),
    "a-fold-past-k": _folds_with(assignment=np.arange(90) % 4),
    "an-empty-fold": _folds_with(assignment=np.arange(90) % 2),
    "a-negative-fold": _folds_with(assignment=np.arange(90) % 3 - 1),
    "too-few-images": _folds_with(assignment=np.arange(60) % 3),
    "folds-as-floats": _folds_with(assignment=(np.arange(90) % 3).astype(float)),
    "no-assignment": _folds_with(assignment=None),
    "k-a-list": _folds_with(k=np.array([3, 3])),
    "k-past-the-most": _folds_with(k=np.int64(2**40)),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_FOLDS))
def test_damaged_folds_are_one_line_naming_the_file_and_nothing_changes(tmp_path, case):
    # A store's folds decide which images each of its runs never saw: folds.npz damaged or edited by hand would
    # put out-of-fold predictions on images a member trained on, so every stage that reads it refuses.
    data, workspace = prepared_store(tmp_path)
    store = workspace.store
    store.write_folds(make_folds(workspace.competition.y_train, FOLDS))
    DAMAGED_FOLDS[case](store.folds_path)
    models = tmp_path / "models"

    def state():  # the stage's lock names the stage that last took it (tests/test_hostile_store.py): the rest
        return {path: path.read_bytes() if path.is_file() else None for path in sorted(models.rglob("*"))
                if path.name != ".lock"}

    before = state()
    for arguments in (("ensemble", "--data", data, "--models-dir", models, "--epochs", "1", "--threshold", "0"),
                      ("ensemble", "--data", data, "--models-dir", models, "--folds", str(FOLDS))):
        finished = run_in_process(*arguments, cwd=tmp_path)
        assert finished.returncode != 0, finished.stderr
        assert finished.stderr.count("\n") == 1 and str(store.folds_path) in finished.stderr, finished.stderr
        assert "Traceback" not in finished.stderr
        assert state() == before
