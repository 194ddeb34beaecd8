"""Hostile stores and options: damaged or hand-edited store files, links and special files inside the store,
options that would crash or poison it, and the order of checks and writes.

One real store is made once (a tiny search, a two-run ensemble and a submission, through the command line)
and copied for each case, which then breaks it in one way. A refused case must, through the real command
line: exit 2, print exactly one line naming the file (or option) and the problem, no traceback, and leave
``models/``, ``submissions/`` and the data folder byte- and mtime-identical. An accepted case must give the
correct result (a damaged run is skipped and named, never voted).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_csv_competition
from test_hostile_data import snapshot

from kaggle_pipeline import cli
from kaggle_pipeline.store import record_digest


def _main(arguments) -> int:
    """cli.main, with pytest's own signal handlers given back afterwards."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    try:
        return cli.main([str(argument) for argument in arguments])
    except SystemExit as stop:  # argparse's refusals exit from inside main
        return stop.code
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
        sys.unraisablehook = hook


@pytest.fixture(autouse=True)
def no_hang():
    """A read that blocks (a FIFO) fails the test instead of hanging the suite."""
    def expire(signal_number, frame):
        raise TimeoutError("no answer within 120 s: something blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def made_store(tmp_path_factory) -> Path:
    """data/pixels, models/pixels (1 trial, 2 kept runs) and submissions/pixels, made for real."""
    root = tmp_path_factory.mktemp("store")
    data = write_csv_competition(root / "data" / "pixels", count=120, test_count=30, side=8)
    common = ["--data", data, "--models-dir", root / "models"]
    assert _main(["search", *common, "--space", "tiny", "--evals", 1, "--search-epochs", 1]) == 0
    assert _main(["ensemble", *common, "--n", 2, "--epochs", 1, "--threshold", 0, "--max-runs", 3]) == 0
    assert _main(["submit", *common, "--submissions-dir", root / "submissions"]) == 0
    return root


@pytest.fixture
def store(made_store, tmp_path) -> Path:
    """A fresh copy of the made store for one case."""
    root = tmp_path / "case"
    shutil.copytree(made_store, root, symlinks=True)
    return root


def arguments(root: Path, stage: str = "submit", *more) -> list:
    listed = ["--submissions-dir", root / "submissions"] if stage in ("submit", "status", "report") else []
    if stage == "report":
        listed += ["--reports-dir", root / "reports"]
    return [stage, "--data", root / "data" / "pixels", "--models-dir", root / "models", *listed, *more]


def assert_refused(root: Path, argv: list, named, problem: str, capsys, make=None) -> None:
    """``argv`` exits 2 with one line naming ``named`` and ``problem``; nothing under ``root`` changes."""
    before = snapshot(root)
    status = _main(argv)
    error = capsys.readouterr().err
    assert status == 2, error
    assert "Traceback" not in error and error.count("\n") == 1, error
    assert error.startswith(f"error: {named}"), error
    assert problem in error, error
    assert snapshot(root) == before


def store_of(root: Path) -> Path:
    return root / "models" / "pixels"


def edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def run_json(root: Path, number: int = 1) -> Path:
    return store_of(root) / "runs" / f"run-{number:04d}" / "run.json"


def submitted_runs(root: Path) -> list[int]:
    return json.loads((root / "submissions" / "pixels" / "latest.json").read_text())["runs"]


# Store files damaged or edited by hand ------------------------------------------------------------------
REFUSED_FILES = {
    # name: (file relative to the store, its new content, problem)
    "ensemble-threshold-a-word": ("ensemble.json", '{"threshold": "high", "n": 2}', "'threshold' is \"high\""),
    "ensemble-threshold-above-one": ("ensemble.json", '{"threshold": 7, "n": 2}', "expected a validation accuracy between 0 and 1"),
    "ensemble-threshold-NaN": ("ensemble.json", '{"threshold": NaN, "n": 2}', "not valid JSON"),
    "ensemble-a-list": ("ensemble.json", "[0.5]", "expected a JSON object, found list"),
    "ensemble-empty-file": ("ensemble.json", "", "not valid JSON"),
    "ensemble-not-utf8": ("ensemble.json", b'{"threshold": "\xff"}', "not valid JSON"),
    "store-json-a-list": ("store.json", "[1, 2]", "expected a JSON object, found list"),
    "store-json-fingerprint-a-number": ("store.json", '{"fingerprint": 123}', "'fingerprint' is 123"),
    "store-json-deeply-nested": ("store.json", "[" * 100000 + "]" * 100000, "not valid JSON"),
    "split-cut-in-half": ("split.npz", None, "split.npz"),
    "split-a-text-file": ("split.npz", "train,validation\n", "cannot load array"),
}


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("case", sorted(REFUSED_FILES))
def test_a_damaged_store_file_is_one_line_naming_it(store, capsys, case):
    name, content, problem = REFUSED_FILES[case]
    path = store_of(store) / name
    if content is None:
        _cut_in_half(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert_refused(store, arguments(store), path, problem, capsys)


def _split_with(**arrays):
    def change(path: Path) -> None:
        with np.load(path) as saved:
            values = {key: saved[key] for key in saved.files}
        values.update(arrays)
        path.unlink()
        np.savez(path, **values)

    return change


@pytest.mark.parametrize("case, change", [
    ("indices-repeated", _split_with(validation=np.array([0, 0, 1]))),
    ("index-out-of-range", _split_with(validation=np.array([10_000]))),
    ("indices-as-floats", _split_with(train=np.arange(100, dtype=float))),
    ("no-seed", lambda path: np.savez(path, train=np.arange(100), validation=np.arange(100, 120), fraction=0.1)),
])
def test_a_split_edited_by_hand_is_refused(store, capsys, case, change):
    path = store_of(store) / "split.npz"
    change(path)
    assert_refused(store, arguments(store), path, "damaged or edited by hand", capsys)


def test_a_trials_file_edited_by_hand_is_refused_by_search_status_and_report(store, capsys):
    path = store_of(store) / "search" / "trials.json"
    edit_json(path, lambda saved: {**saved, "trials": saved["trials"] + ["a trial"]})
    search = arguments(store, "search", "--space", "tiny", "--evals", 2, "--search-epochs", 1)
    for argv in (search, arguments(store, "status"), arguments(store, "report")):
        assert_refused(store, argv, path, "trial 2: expected a JSON object, found str", capsys)


def test_a_best_params_file_with_a_string_accuracy_is_refused_by_the_ensemble(store, capsys):
    path = store_of(store) / "best_params.json"
    edit_json(path, lambda best: {**best, "validation_accuracy": "0.9"})
    argv = arguments(store, "ensemble", "--n", 3, "--epochs", 1)
    assert_refused(store, argv, path, "'validation_accuracy' is \"0.9\"", capsys)


def test_a_submission_summary_edited_by_hand_is_refused_by_status(store, capsys):
    path = store / "submissions" / "pixels" / "latest.json"
    edit_json(path, lambda summary: {**summary, "runs_voted": "two"})
    assert_refused(store, arguments(store, "status"), path, "'runs_voted' is \"two\"", capsys)


# Runs: damaged ones are skipped (and named), copies and strays are not runs -------------------------------
RUN_DAMAGE = {
    "empty-object": lambda path: path.write_text("{}"),
    "a-list": lambda path: path.write_text("[1]"),
    "not-json": lambda path: path.write_text("{run: 1"),
    "accuracy-raised-by-hand": lambda path: edit_json(path, lambda r: {**r, "validation_accuracy": 0.999}),
    "accuracy-a-string": lambda path: edit_json(path, lambda r: {**r, "validation_accuracy": "0.9"}),
    "status-unknown": lambda path: edit_json(path, lambda r: {**r, "status": "great"}),
    "other-data-with-a-valid-checksum": lambda path: edit_json(
        path, lambda r: {**r, "fingerprint": "0" * 16, "record_sha256": record_digest({**r, "fingerprint": "0" * 16})}),
    "number-of-another-run": lambda path: edit_json(
        path, lambda r: {**r, "run": 2, "record_sha256": record_digest({**r, "run": 2})}),
    "a-folder": lambda path: (path.unlink(), path.mkdir()),
    "a-fifo": lambda path: (path.unlink(), os.mkfifo(path)),
    "a-link-to-a-good-record": lambda path: (shutil.move(path, path.with_name("elsewhere.json")),
                                             path.symlink_to("elsewhere.json")),
    "predictions-cut": lambda path: _cut_in_half(path.with_name("predictions.npz")),
}


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_a_damaged_run_is_never_voted(store, capsys, case):
    RUN_DAMAGE[case](run_json(store, 1))
    before = without_lock(snapshot(store_of(store)))
    assert _main(arguments(store)) == 0
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert f"{store_of(store) / 'runs' / 'run-0001'}" in error and "run skipped" in error, error
    assert submitted_runs(store) == [2]
    assert without_lock(snapshot(store_of(store))) == before  # submit only reads: make ensemble sets the run aside


def without_lock(state: dict) -> dict:
    """A stage that runs takes the store's lock, which names it in .lock: everything else is compared."""
    return {path: entry for path, entry in state.items()
            if not path.endswith(("/.lock", "/pixels"))}


def test_the_ensemble_sets_a_damaged_run_aside_and_trains_its_number_again(store, capsys):
    edit_json(run_json(store, 2), lambda record: {**record, "validation_accuracy": 1.0})
    assert _main(arguments(store, "ensemble", "--n", 2, "--epochs", 1, "--threshold", 0, "--max-runs", 3)) == 0
    assert "run set aside as .corrupt-run-0002-" in capsys.readouterr().err
    assert json.loads(run_json(store, 2).read_text())["validation_accuracy"] != 1.0
    assert len(list((store_of(store) / "runs").glob(".corrupt-run-0002-*"))) == 1


@pytest.mark.parametrize("stray", ["run-0001.bak", "run-old", "run-1", "Run-0003", "run-0003 copy"])
def test_copies_and_stray_folders_are_not_runs(store, capsys, stray):
    shutil.copytree(store_of(store) / "runs" / "run-0001", store_of(store) / "runs" / stray)
    assert _main(arguments(store)) == 0
    assert submitted_runs(store) == [1, 2]
    assert _main(arguments(store, "status")) == 0
    assert "2/2 kept" in capsys.readouterr().out
    assert (store_of(store) / "runs" / stray).is_dir()  # not ours to remove


def test_a_user_folder_named_like_a_temporary_run_is_not_removed(store):
    keep = store_of(store) / "runs" / ".run-notes"
    keep.mkdir()
    assert _main(arguments(store, "ensemble", "--n", 2, "--epochs", 1, "--threshold", 0)) == 0
    assert keep.is_dir()


# Links and special files inside the store ---------------------------------------------------------------
def test_a_lock_file_that_is_a_link_never_touches_its_target(store, capsys):
    victim = store / "precious.txt"
    victim.write_text("the user's file\n")
    (store_of(store) / ".lock").unlink(missing_ok=True)
    (store_of(store) / ".lock").symlink_to(victim)
    assert_refused(store, arguments(store), store_of(store) / ".lock", "symbolic link", capsys)
    assert victim.read_text() == "the user's file\n"


@pytest.mark.parametrize("make_it", [
    pytest.param(lambda path: path.mkdir(), id="a-folder"),
    pytest.param(lambda path: os.mkfifo(path), id="a-fifo"),
    pytest.param(lambda path: path.symlink_to("/dev/null"), id="a-link-to-a-device"),
    pytest.param(lambda path: path.symlink_to(path), id="a-link-loop"),
])
def test_a_lock_that_is_not_a_regular_file_is_refused(store, capsys, make_it):
    lock = store_of(store) / ".lock"
    lock.unlink(missing_ok=True)
    make_it(lock)
    assert_refused(store, arguments(store), lock, "", capsys)


@pytest.mark.parametrize("name", ["runs", "search", "cache", "store.json", "split.npz", "ensemble.json"])
def test_a_store_part_that_is_a_link_is_refused(store, capsys, name):
    part = store_of(store) / name
    elsewhere = store / f"moved-{name}"
    shutil.move(part, elsewhere)
    part.symlink_to(elsewhere)
    assert_refused(store, arguments(store), part, "is a symbolic link", capsys)


@pytest.mark.parametrize("name", ["runs", "search"])
def test_a_store_folder_that_is_a_file_is_refused(store, capsys, name):
    part = store_of(store) / name
    shutil.rmtree(part)
    part.write_text("not a folder\n")
    assert_refused(store, arguments(store), part, "is not a folder", capsys)


def test_a_store_that_is_a_file_is_refused(tmp_path, capsys):
    data = write_csv_competition(tmp_path / "data" / "pixels", count=24, test_count=6, side=4)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "pixels").write_text("a file where the store belongs\n")
    assert_refused(tmp_path, ["submit", "--data", data, "--models-dir", tmp_path / "models"],
                   tmp_path / "models" / "pixels", "not a folder", capsys)


# Options: every one checked before anything is written ---------------------------------------------------
BAD_OPTIONS = {
    "epochs-zero": (["ensemble", "--epochs", "0"], "argument --epochs: must be from 1"),
    "epochs-negative": (["all", "--epochs", "-3"], "argument --epochs: must be from 1"),
    "epochs-a-word": (["ensemble", "--epochs", "five"], "argument --epochs: 'five' is not a whole number"),
    "search-epochs-zero": (["search", "--search-epochs", "0"], "argument --search-epochs: must be from 1"),
    "evals-zero": (["search", "--evals", "0"], "argument --evals: must be from 1"),
    "subset-negative": (["search", "--subset", "-1"], "argument --subset: must be at least 0"),
    "threshold-nan": (["ensemble", "--threshold", "nan"], "argument --threshold: 'nan' is not a finite number"),
    # Above 1 only for logloss (lower is better); this store is judged by accuracy.
    "threshold-above-one": (["submit", "--threshold", "1.5"], "--threshold 1.5 (THRESHOLD=): a validation accuracy, between 0 and 1"),
    "threshold-infinite": (["submit", "--threshold", "inf"], "not a finite number"),
    # Below 0 only for a kappa (qwk, from -1).
    "threshold-negative": (["ensemble", "--threshold", "-0.5"], "--threshold -0.5 (THRESHOLD=): a validation accuracy, between 0 and 1"),
    "threshold-below-minus-one": (["submit", "--threshold", "-2"], "argument --threshold: must be at least -1"),
    "n-zero": (["ensemble", "--n", "0"], "argument --n: must be from 1"),
    "max-runs-zero": (["ensemble", "--max-runs", "0"], "argument --max-runs: must be from 1"),
    "hours-zero": (["ensemble", "--hours", "0"], "argument --hours: must be above 0"),
    "hours-nan": (["all", "--hours", "NaN"], "not a finite number"),
    "abort-margin-huge": (["ensemble", "--abort-margin", "1e308"], "argument --abort-margin: must be at least -1"),
    "val-fraction-zero": (["submit", "--val-fraction", "0"], "argument --val-fraction: must be above 0"),
    "val-fraction-one": (["search", "--val-fraction", "1"], "must be above 0 and below 1"),
    "split-seed-negative": (["submit", "--split-seed", "-1"], "argument --split-seed: must be from 0"),
    "split-seed-beyond-32-bits": (["submit", "--split-seed", str(2**40)], "argument --split-seed: must be from 0"),
    "seed-negative": (["ensemble", "--seed", "-5"], "argument --seed: must be from 0"),
    "search-seed-huge": (["search", "--search-seed", "99999999999"], "argument --search-seed"),
    "stack-weight-negative": (["submit", "--stack-weight", "-1"], "argument --stack-weight: must be at least 0"),
    "size-too-small": (["stack", "--size", "8"], "argument --size: must be from 32"),
    "trees-zero": (["stack", "--trees", "0"], "argument --trees: must be from 1"),
    "cpus-per-run-zero": (["ensemble", "--cpus-per-run", "0"], "argument --cpus-per-run: must be from 1"),
    "unknown-space": (["search", "--space", "resnet"], "argument --space: unknown search space 'resnet'"),
    "unknown-vote": (["submit", "--vote", "best"], "argument --vote: invalid choice"),
    "unknown-layout": (["submit", "--layout", "parquet"], "argument --layout: invalid choice"),
    "unknown-option": (["submit", "--epoch", "3"], "unrecognized arguments"),
    "missing-value": (["ensemble", "--n"], "argument --n: expected one argument"),
    "no-stage": ([], "the following arguments are required"),
    "name-300-bytes": (["submit", "--name", "x" * 300], "--name 'xxxxxxxxxxxxxxxxxxxx...' (NAME=): 300 bytes"),
    "name-a-path": (["submit", "--name", "../elsewhere"], "--name '../elsewhere' (NAME=): not a usable folder name"),
    "name-hidden": (["submit", "--name", ".hidden"], "not a usable folder name"),
    "name-with-a-newline": (["submit", "--name", "two\nlines"], "holds control characters"),
    "weights-missing-file": (["stack", "--weights", "/nonexistent/vgg.h5"], "/nonexistent/vgg.h5: VGG19 weights file not found"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_a_bad_option_is_one_line_and_writes_nothing(store, capsys, case):
    argv, problem = BAD_OPTIONS[case]
    if argv:
        argv = [argv[0], "--data", store / "data" / "pixels", "--models-dir", store / "models", *argv[1:]]
    before = snapshot(store)
    assert _main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and "Traceback" not in error, error
    assert problem in error, error
    assert snapshot(store) == before


def test_a_validation_fraction_the_data_cannot_support_writes_nothing(tmp_path, capsys):
    data = write_csv_competition(tmp_path / "data" / "pixels", count=24, test_count=6, side=4)
    models = tmp_path / "models"
    assert_refused(tmp_path, ["search", "--data", data, "--models-dir", models, "--val-fraction", "0.97"],
                   "--val-fraction 0.97", "fewer than the 3 classes", capsys)
    assert not models.exists()


def test_options_are_refused_by_the_real_command_line_too(store):
    before = snapshot(store)
    for argv, problem in (BAD_OPTIONS["epochs-zero"], BAD_OPTIONS["threshold-nan"], BAD_OPTIONS["name-300-bytes"]):
        result = run_cli(argv[0], "--data", store / "data" / "pixels", "--models-dir", store / "models", *argv[1:],
                         cwd=store, timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and problem in result.stderr, result.stderr
    assert snapshot(store) == before


# Writes after the checks; temporaries of killed writes; read-only stages ----------------------------------
def test_other_data_under_the_same_name_writes_no_cache(store, capsys):
    data = store / "data" / "pixels"
    rows = (data / "train.csv").read_text().splitlines()
    rows[1] = rows[2].split(",", 1)[0] + "," + rows[1].split(",", 1)[1]  # one label changed
    (data / "train.csv").write_text("\n".join(rows) + "\n")
    assert_refused(store, arguments(store, "ensemble", "--n", 2), store_of(store),
                   "this run store was made from other data", capsys)


def test_a_models_folder_that_cannot_be_written_is_one_line(tmp_path, capsys):
    data = write_csv_competition(tmp_path / "data" / "pixels", count=24, test_count=6, side=4)
    # /sys refuses new folders even to root (a chmod would not stop root, who runs CI).
    argv = ["search", "--data", data, "--models-dir", "/sys/kaggle-pipeline-models", "--space", "tiny"]
    assert_refused(tmp_path, argv, "/sys/kaggle-pipeline-models", "cannot write", capsys)


def test_temporaries_of_killed_writes_are_removed_and_nothing_else(store, capsys):
    folder = store / "submissions" / "pixels"
    ours = [folder / ".latest.csv.a1b2c3d4.tmp", store_of(store) / ".ensemble.json.zz_9y8x7.tmp",
            store_of(store) / "search" / ".trials.json.abcdefgh.tmp"]
    theirs = [folder / ".latest.csv.notes.tmp", folder / "latest.csv.a1b2c3d4.tmp", store_of(store) / ".my.tmp"]
    for path in ours + theirs:
        path.write_text("half a file")
    assert _main(arguments(store)) == 0
    assert [path.exists() for path in ours] == [False] * len(ours)
    assert [path.exists() for path in theirs] == [True] * len(theirs)


def test_status_and_report_write_nothing_even_to_a_fresh_store(tmp_path, capsys):
    data = write_csv_competition(tmp_path / "data" / "pixels", count=24, test_count=6, side=4)
    common = ["--data", data, "--models-dir", tmp_path / "models", "--submissions-dir", tmp_path / "submissions"]
    before = snapshot(tmp_path)
    assert _main(["status", *common]) == 2
    assert _main(["report", *common, "--reports-dir", tmp_path / "reports"]) == 2
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "models").exists()


def test_report_on_a_made_store_writes_only_the_report(store):
    before = snapshot(store / "models"), snapshot(store / "submissions")
    assert _main(arguments(store, "report")) == 0
    assert (snapshot(store / "models"), snapshot(store / "submissions")) == before
    assert (store / "reports" / "pixels" / "index.html").is_file()


def test_a_data_folder_that_is_a_link_loop_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert_refused(tmp_path, ["submit", "--data", loop, "--models-dir", tmp_path / "models"], loop, "", capsys)


# A search whose trials fail ------------------------------------------------------------------------------
def test_failing_starting_points_are_recorded_and_the_search_stops_in_one_line(tmp_path):
    # 2x2 images: the reference net's two poolings leave nothing, so every trial fails at build time. The
    # command line refuses such images before the store is written (tests/test_names_and_outputs.py); a library
    # caller's search records each failure and stops with one error.
    from kaggle_pipeline.errors import PipelineError
    from kaggle_pipeline.search import run_search
    from kaggle_pipeline.workspace import open_workspace

    data = write_csv_competition(tmp_path / "data" / "pixels", count=24, test_count=6, side=2)
    models = tmp_path / "models"
    workspace = open_workspace(data, models, lock="search")
    search = {"evals": 3, "epochs": 1, "seed": 0, "space_name": "vgg-quick", "subset": None}
    with workspace.lock:
        with pytest.raises(PipelineError, match="^" + str(models / "pixels" / "search" / "trials.json") + ": every trial failed"):
            run_search(workspace, **search)
        trials = json.loads((models / "pixels" / "search" / "trials.json").read_text())["trials"]
        assert [trial["result"]["status"] for trial in trials] == ["fail"] * 3
        assert all(trial["result"]["error"] for trial in trials)
        # Resumed, the recorded failures count: nothing is tried again.
        with pytest.raises(PipelineError, match="every trial failed"):
            run_search(workspace, **search)
    assert len(json.loads((models / "pixels" / "search" / "trials.json").read_text())["trials"]) == 3


def test_an_error_with_no_message_is_named_by_its_type():
    from kaggle_pipeline.files import first_line

    assert first_line(ValueError()) == "ValueError"
    assert first_line(RuntimeError("  \n")) == "RuntimeError"
    assert first_line(OSError("disk\nfull")) == "disk"


# Verbosity ----------------------------------------------------------------------------------------------
def test_quiet_leaves_only_warnings_and_the_default_shows_progress(store, capsys):
    assert _main(arguments(store)) == 0
    assert "submit: " in capsys.readouterr().err
    assert _main(["-q", *arguments(store)]) == 0
    assert capsys.readouterr().err == ""
    (run_json(store, 1)).write_text("{}")  # a warning still gets through -q
    assert _main([*arguments(store), "--quiet"]) == 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "run skipped" in error


def test_a_models_folder_that_is_a_file_is_one_line(store, capsys):
    models = store / "data" / "pixels" / "train.csv"
    assert_refused(store, ["submit", "--data", store / "data" / "pixels", "--models-dir", models],
                   f"--models-dir '{models}'", "not a folder", capsys)


@pytest.mark.parametrize("arguments, missing, command", [
    (["ensemble", "--n", 1], "best_params.json", "'make search'"),
    (["submit"], "ensemble.json", "'make ensemble'"),
    (["submit", "--threshold", "0.5"], "runs", "'make ensemble'"),
])
def test_a_stage_before_the_one_it_needs_writes_nothing(arguments, missing, command, tmp_path, capsys):
    """ensemble before search, submit before ensemble: one line naming the missing file; before, a new store
    (store.json, split, cache, .lock) was written first."""
    folder = write_csv_competition(tmp_path / "digits", count=24, test_count=6, side=4)
    before = snapshot(tmp_path)
    status = _main([*arguments, "--data", folder, "--models-dir", tmp_path / "models",
                    *(["--submissions-dir", tmp_path / "submissions"] if arguments[0] == "submit" else [])])
    error = capsys.readouterr().err
    assert status == 2
    assert error == f"error: {tmp_path / 'models' / 'digits' / missing}: not found; run {command}" + \
        (" (python -m kaggle_pipeline search)" if missing == "best_params.json" else "") + " first\n"
    assert snapshot(tmp_path) == before
