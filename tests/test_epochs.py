"""The minimum-optimizer-steps rule (kaggle_pipeline.epochs): tiny data trains enough, Fashion-MNIST is unchanged."""

import json
import logging

import pytest

from kaggle_pipeline import cli
from kaggle_pipeline.epochs import MAX_RAISED_EPOCHS, MIN_RUN_STEPS, MIN_TRIAL_STEPS, effective_epochs, epochs_to_train
from kaggle_pipeline.spaces import TINY_PARAMS, get_space
from kaggle_pipeline.store import RunStore, atomic_write_json
from kaggle_pipeline.workspace import open_workspace

FASHION_TRAIN = 54_000  # 60,000 training images less the 10% validation split
DIGITS_TRAIN = 1_293  # bench/digits.py: 1,437 training images less the 10% validation split


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_the_fashion_mnist_presets_epochs_meet_the_minimums_as_they_are(preset):
    settings = cli.PRESETS[preset]
    batch = get_space(settings["space"])[1][0]["batch_size"]
    assert batch == 128
    assert effective_epochs(settings["search_epochs"], settings["subset"], batch, MIN_TRIAL_STEPS) == settings["search_epochs"]
    assert effective_epochs(settings["epochs"], FASHION_TRAIN, batch, MIN_RUN_STEPS) == settings["epochs"]
    assert epochs_to_train(settings["epochs"], FASHION_TRAIN, batch, MIN_RUN_STEPS, False, "run") == (settings["epochs"], None)


def test_tiny_data_gets_more_epochs():
    quick = cli.PRESETS["quick"]
    # 1,293 images make 11 batches of 128: 2 epochs were 22 steps, 5 were 55.
    assert effective_epochs(quick["search_epochs"], DIGITS_TRAIN, 128, MIN_TRIAL_STEPS) == 14  # ceil(150 / 11)
    # 3,000 steps would be 273 epochs of 11 steps: the minimum raises a run to MAX_RAISED_EPOCHS at most.
    assert effective_epochs(quick["epochs"], DIGITS_TRAIN, 128, MIN_RUN_STEPS) == MAX_RAISED_EPOCHS == 48
    assert effective_epochs(5, DIGITS_TRAIN, 128, 0) == 5  # no minimum: as asked
    assert effective_epochs(5, 0, 128, 10) == 10  # an empty set still counts one step an epoch

    epochs, note = epochs_to_train(8, DIGITS_TRAIN, 128, MIN_RUN_STEPS, False, "run")
    assert epochs == 48 and "48 epochs per run instead of the preset's 8" in note and "11 step(s)" in note
    assert "at least 3000 optimizer steps (or 48 epochs)" in note
    epochs, note = epochs_to_train(3, DIGITS_TRAIN, 128, MIN_RUN_STEPS, True, "run")
    assert epochs == 3 and "3 epoch(s) per run as asked" in note and "33 optimizer steps, fewer than the 3000" in note
    # 10,800 Fashion-MNIST images (bench/budget.py --small): 85 steps an epoch, so 36 epochs, under the cap.
    epochs, note = epochs_to_train(8, 10_800, 128, MIN_RUN_STEPS, False, "run")
    assert epochs == 36 and "(or 48 epochs)" not in note


def test_search_and_ensemble_record_the_epochs_they_trained(tmp_path, csv_competition, caplog):
    from kaggle_pipeline.ensemble import run_ensemble
    from kaggle_pipeline.search import run_search

    workspace = open_workspace(csv_competition, tmp_path / "models")  # 216 training images: 7 batches of 32
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline"):
        best = run_search(workspace, evals=1, epochs=1, seed=1, space_name="tiny", subset=None, min_steps=20)
    trials = json.loads((workspace.store.search_dir / "trials.json").read_text())
    assert trials["settings"]["epochs"] == best["epochs"] == 3  # ceil(20 / 7)
    assert trials["trials"][0]["result"]["epochs"] == 3
    assert len(trials["trials"][0]["result"]["val_accuracy_by_epoch"]) == 3
    assert "search: 3 epochs per trial instead of the preset's 1" in caplog.text

    atomic_write_json(workspace.store.best_params_path, {"params": TINY_PARAMS, "validation_accuracy": 0.5})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kaggle_pipeline"):
        run_ensemble(workspace, n=1, threshold=0.0, max_runs=1, epochs=1, seed=5, min_steps=20, fixed_epochs=True)
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING and record.name.startswith("kaggle_pipeline")]
    assert warnings == [
        "ensemble: 1 epoch(s) per run as asked: 216 training images make 7 step(s) of 32 per epoch, so a run takes 7 "
        "optimizer steps, fewer than the 20 the presets train at least (3 epochs); expect an undertrained run"
    ]
    run = json.loads(next(workspace.store.runs_dir.glob("run-*/run.json")).read_text())
    assert run["epochs"] == 1 and len(run["history"]["loss"]) == 1
    assert json.loads(workspace.store.ensemble_path.read_text())["epochs"] == 1


def test_the_command_line_applies_the_minimum_to_preset_epochs_only(tmp_path, csv_competition, monkeypatch):
    import kaggle_pipeline.ensemble
    import kaggle_pipeline.search

    calls = []
    monkeypatch.setattr(kaggle_pipeline.search, "run_search", lambda *args, **kwargs: calls.append(("search", kwargs)))
    monkeypatch.setattr(kaggle_pipeline.ensemble, "run_ensemble", lambda *args, **kwargs: calls.append(("ensemble", kwargs)))
    common = ["--data", str(csv_competition), "--models-dir", str(tmp_path / "models")]
    for arguments in (["search"], ["search", "--search-epochs", "4"], ["search", "--epochs", "4"]):
        assert cli.main([*arguments, *common]) == 0
    # The ensemble stage needs a search's best_params.json on disk before it starts (the search is stubbed here).
    atomic_write_json(RunStore(tmp_path / "models" / csv_competition.name).best_params_path,
                      {"params": TINY_PARAMS, "validation_accuracy": 0.5})
    for arguments in (["ensemble"], ["ensemble", "--epochs", "4"]):
        assert cli.main([*arguments, *common]) == 0
    steps = [(stage, kwargs["epochs"], kwargs["min_steps"], kwargs["fixed_epochs"]) for stage, kwargs in calls]
    assert steps == [
        ("search", 2, MIN_TRIAL_STEPS, False), ("search", 4, MIN_TRIAL_STEPS, True), ("search", 4, MIN_TRIAL_STEPS, True),
        ("ensemble", 8, MIN_RUN_STEPS, False), ("ensemble", 4, MIN_RUN_STEPS, True),
    ]
