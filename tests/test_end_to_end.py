"""search -> ensemble -> submit on tiny competitions in each layout, with real TensorFlow and hyperopt."""

import json
import os

import browser
import pandas as pd
import pytest
from conftest import run_cli, write_image_competition, write_npy_competition

from kaggle_pipeline.cli import main
from kaggle_pipeline.data import read_sample_submission

REPORT_SECTIONS = ["Search", "Hyperparameters", "Learning curves", "Run accuracy", "Ensemble size",
                   "Confusion matrix (validation)", "Misclassified validation images", "Epoch timing"]


def test_each_stage_alone_through_the_command_line(tmp_path, csv_competition, capsys):
    """The three make targets, each a fresh process talking to the others only through files."""
    common = ["--data", csv_competition, "--models-dir", tmp_path / "models"]
    assert main(["report", *map(str, common)]) == 2  # nothing to report yet
    assert capsys.readouterr().err == f"error: {tmp_path / 'models' / 'pixels'}: no search trials and no runs yet; run 'make search' or 'make all' first\n"
    search = run_cli("search", *common, "--space", "tiny", "--evals", "2", "--search-epochs", "1", cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    assert "search: trial 2/2" in search.stderr
    early = run_cli("report", *common, cwd=tmp_path)  # a report after the search alone
    assert early.returncode == 0, early.stderr
    assert {path.name for path in (tmp_path / "reports" / "pixels").glob("*.png")} == {"search.png", "hyperparameters.png"}
    assert "No ensemble yet" in (tmp_path / "reports" / "pixels" / "index.html").read_text()

    ensemble = run_cli("ensemble", *common, "--n", "2", "--epochs", "2", "--threshold", "0.3", "--tensorboard", cwd=tmp_path)
    assert ensemble.returncode == 0, ensemble.stderr
    assert "kept 2/2" in ensemble.stderr and "ETA" in ensemble.stderr
    # Not on a terminal: one line per finished run, no per-epoch lines (those are in history.csv).
    assert [line.split(")")[0] for line in ensemble.stderr.splitlines() if line.startswith("ensemble: run ")] == \
        ["ensemble: run 1 (seed 1001", "ensemble: run 2 (seed 1002"]
    # Plus one warning: 2 epochs of 216 images are fewer optimizer steps than the presets' minimum (epochs.py).
    lines = ensemble.stderr.splitlines()
    assert "2 epoch(s) per run as asked" in lines[0] and "fewer than the 3000" in lines[0]
    assert len(lines) == 4 and "epoch 1/2" not in ensemble.stderr
    # Each run's history as a table, sealed with the run; TensorBoard logs when asked for.
    run_folder = tmp_path / "models" / "pixels" / "runs" / "run-0001"
    record = json.loads((run_folder / "run.json").read_text())
    history = pd.read_csv(run_folder / "history.csv")
    assert history["epoch"].tolist() == [1, 2] and "history.csv" in record["files"]
    assert history["val_accuracy"].tolist() == pytest.approx(record["history"]["val_accuracy"])
    assert history["epoch_seconds"].tolist() == pytest.approx(record["history"]["epoch_seconds"])
    for run in ("run-0001", "run-0002"):
        assert list((tmp_path / "models" / "pixels" / "tensorboard" / run).rglob("events.out.tfevents.*"))

    submit = run_cli("submit", *common, "--submissions-dir", tmp_path / "submissions", cwd=tmp_path)
    assert submit.returncode == 0, submit.stderr
    assert " vote of 2 run(s)" in submit.stderr and "local score (solution.csv)" in submit.stderr

    latest = tmp_path / "submissions" / "pixels" / "latest.csv"
    written = pd.read_csv(latest, dtype=str)
    sample = read_sample_submission(csv_competition / "sample_submission.csv")
    assert list(written.columns) == list(sample.columns)
    assert written["ImageId"].tolist() == sample["ImageId"].tolist()
    assert set(written["Label"]) <= {"0", "1", "2"}
    assert len(list(latest.parent.glob("submission-*.csv"))) == 1

    status = run_cli("status", *common, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'models' / 'pixels'}  (3 classes, 16x16x1 images")
    assert lines[1].startswith("search    2 trial(s), best val_acc") and "space tiny, 1 epoch(s)" in lines[1]
    assert lines[2].startswith("ensemble  2/2 kept, threshold 0.3000; 2 attempt(s): 2 kept, 0 rejected")
    assert "the last ensemble call stopped at 2 runs kept" in lines[2]
    assert lines[-1].startswith("submit    ") and "local score" in lines[-1]

    # The stacker joins the vote once 'make stack' has run (random weights here: no ImageNet file offline).
    stack = run_cli("stack", *common, "--weights", "none", "--size", "32", "--trees", "10", cwd=tmp_path)
    assert stack.returncode == 0, stack.stderr
    assert "RANDOM VGG19 WEIGHTS" in stack.stderr
    voted = run_cli("submit", *common, "--submissions-dir", tmp_path / "submissions", "--vote", "select", cwd=tmp_path)
    assert voted.returncode == 0, voted.stderr
    assert "select vote of 2 run(s) (validation accuracy >= 0.3000) + stacker (VGG19 random (WEIGHTS=none) features" in voted.stderr
    for strategy in ("majority", "soft", "weighted", "select  "):
        assert f"  {strategy}" in voted.stderr

    report = run_cli("report", *common, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    folder = tmp_path / "reports" / "pixels"
    figures = {"search.png", "hyperparameters.png", "learning_curves.png", "run_accuracy.png", "ensemble_size.png",
               "confusion.png", "misclassified.png", "timing.png"}
    assert {path.name for path in folder.glob("*.png")} == figures
    page = (folder / "index.html").read_text()
    assert page.count("src='data:image/png;base64,") == len(figures)  # self-contained
    assert "<th>precision</th>" in page and "select vote of 2 runs" in page
    # CI installs Chromium and requires it; elsewhere a machine without it says so instead of passing quietly.
    if not browser.available() and not os.environ.get("KAGGLE_PIPELINE_REQUIRE_BROWSER"):
        pytest.skip("no headless Chromium (apt-get install chromium chromium-driver): every check passed except "
                    "opening the report page in a browser")
    rendered = browser.render(folder / "index.html")
    assert rendered.title == "pixels report" and rendered.console_errors == []
    assert sorted(alt for alt, _, _, _ in rendered.images) == sorted(REPORT_SECTIONS)
    assert all(complete and width > 100 and height > 100 for _, complete, width, height in rendered.images)
    assert rendered.screenshot.startswith(b"\x89PNG") and rendered.page_height > 2000


def test_stack_without_imagenet_weights_is_one_clear_line(tmp_path, csv_competition, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    code = main(["stack", "--data", str(csv_competition), "--models-dir", str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    expected = tmp_path / "keras" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert err.startswith(f"error: {expected}: ImageNet weights for VGG19 not found") and "WEIGHTS=none" in err
    assert not (tmp_path / "models" / "pixels" / "stack").exists()


@pytest.mark.parametrize("layout", ["images", "npy"])
def test_string_label_layouts_go_all_the_way(tmp_path, layout, capsys):
    if layout == "images":
        folder = write_image_competition(tmp_path / "cifar")
    else:
        folder = write_npy_competition(tmp_path / "arrays", as_npz=True)
    code = main([
        "all", "--data", str(folder), "--models-dir", str(tmp_path / "models"),
        "--submissions-dir", str(tmp_path / "submissions"), "--space", "tiny", "--evals", "1",
        "--search-epochs", "2", "--n", "2", "--epochs", "3", "--threshold", "0.3",
    ])
    assert code == 0, capsys.readouterr().err
    written = pd.read_csv(tmp_path / "submissions" / folder.name / "latest.csv", dtype=str)
    sample = read_sample_submission(next(folder.glob("sample*ubmission.csv")))
    assert list(written.columns) == list(sample.columns)
    assert written.iloc[:, 0].tolist() == sample.iloc[:, 0].tolist()
    assert set(written.iloc[:, 1]) <= {"cat", "dog", "frog"}
    err = capsys.readouterr().err
    assert "ensemble validation accuracy" in err
