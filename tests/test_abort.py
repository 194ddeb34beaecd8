"""The early-abort rule on synthetic validation curves, its replay, and a real run stopped by it."""

import math

import pytest
from conftest import synthetic_images

from kaggle_pipeline.abort import FIRST_EPOCH, MARGIN, abort_epoch, abort_floor, replay
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.train import train_run

KEPT = [
    [0.70, 0.80, 0.85, 0.88, 0.90],
    [0.65, 0.82, 0.86, 0.89, 0.91],
    [0.72, 0.79, 0.87, 0.88, 0.92],
]


def test_floor_is_the_lowest_kept_curve_minus_the_margin():
    floor = abort_floor(KEPT)
    assert floor == pytest.approx([0.65 - MARGIN, 0.79 - MARGIN, 0.85 - MARGIN, 0.88 - MARGIN, 0.90 - MARGIN])


def test_floor_needs_enough_kept_runs_at_each_epoch():
    # The third run stopped early (a plateau run's EarlyStopping): from epoch 3 only two curves remain.
    floor = abort_floor([KEPT[0], KEPT[1], KEPT[2][:2]], min_kept=3)
    assert floor[:2] == pytest.approx([0.65 - MARGIN, 0.79 - MARGIN])
    assert floor[2:] == [-math.inf] * 3
    assert abort_floor(KEPT[:2]) == [-math.inf] * 5


def test_a_run_clearly_behind_every_kept_run_is_stopped_at_that_epoch():
    floor = abort_floor(KEPT)
    assert abort_epoch([0.60, 0.70, 0.80, 0.85, 0.86], floor, epochs=5) == 2  # 0.70 < 0.79 - MARGIN
    assert abort_epoch([0.66, 0.78, 0.84, 0.87, 0.89], floor, epochs=5) is None  # within the margin throughout


def test_never_before_the_first_epoch_nor_at_the_last():
    floor = abort_floor(KEPT)
    assert FIRST_EPOCH == 2
    assert abort_epoch([0.10, 0.90, 0.90, 0.90, 0.90], floor, epochs=5) is None  # a slow first epoch is forgiven
    assert abort_epoch([0.70, 0.80, 0.85, 0.88, 0.50], floor, epochs=5) is None  # the last epoch saves nothing


def test_replay_counts_false_rejects_against_the_other_kept_runs():
    curves = [*KEPT,
              [0.60, 0.70, 0.80, 0.86, 0.88],   # behind at epoch 2 and ends below 0.89: a true reject
              [0.50, 0.74, 0.86, 0.89, 0.905]]  # behind at epoch 2 yet ends above 0.89: a false reject
    finals = [curve[-1] for curve in curves]
    result = replay(curves, finals, threshold=0.89, epochs=5)
    assert result["runs_judged"] == 5
    assert result["runs_passing"] == 4
    assert (result["true_rejects"], result["false_rejects"]) == (1, 1)
    assert result["false_reject_rate"] == pytest.approx(0.25)
    assert result["epochs_saved"] == 3 + 3
    assert result["epochs_total"] == 25


def test_a_real_run_below_the_floor_stops_and_reports_the_epoch():
    images, labels = synthetic_images(160)
    trained = train_run(
        TINY_PARAMS, images[:120], labels[:120], images[120:], labels[120:], num_classes=3,
        seed=3, epochs=5, abort_floor=[1.1] * 5,  # out of reach: stop at the first epoch the rule may act
    )
    assert trained.aborted_at_epoch == FIRST_EPOCH
    assert len(trained.history["val_accuracy"]) == FIRST_EPOCH
    assert len(trained.history["epoch_seconds"]) == len(trained.history["epoch_images_per_second"]) == FIRST_EPOCH
    assert trained.test_proba is None
