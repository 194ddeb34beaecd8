"""Training precision: picked from the hardware, overridable, and always float32 probabilities out; the progress
lines a run logs."""

import logging
import time

import keras
import numpy as np
import pytest
from conftest import synthetic_images

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.network import whitening_weights
from kaggle_pipeline.spaces import TINY_PARAMS
from kaggle_pipeline.train import EpochProgress, choose_precision, train_run


def test_precision_follows_the_hardware():
    assert choose_precision("auto", gpus=["GPU:0"], flags={"avx512_bf16"}) == "mixed_float16"
    assert choose_precision("auto", gpus=[], flags={"avx512f", "avx512_bf16"}) == "mixed_bfloat16"
    assert choose_precision("auto", gpus=[], flags={"amx_bf16"}) == "mixed_bfloat16"
    assert choose_precision("auto", gpus=[], flags={"avx2", "avx512f"}) == "float32"


def test_precision_can_be_forced_and_is_checked():
    assert choose_precision("float32", gpus=["GPU:0"]) == "float32"
    with pytest.raises(PipelineError, match="precision='half'"):
        choose_precision("half")


def test_bfloat16_training_gives_float32_probabilities_summing_to_one():
    images, labels = synthetic_images(160)
    trained = train_run(
        TINY_PARAMS, images[:120], labels[:120], images[120:140], labels[120:140], num_classes=3,
        seed=5, epochs=2, x_test=images[140:], precision="mixed_bfloat16",
    )
    assert trained.precision == "mixed_bfloat16"
    assert any(layer.compute_dtype == "bfloat16" for layer in trained.model.layers)
    for probabilities in (trained.validation_proba, trained.test_proba):
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for whoever trains next


def test_a_model_trained_with_flips_predicts_on_both_orientations():
    images, labels = synthetic_images(160)
    trained = train_run(
        {**TINY_PARAMS, "flip": True}, images[:120], labels[:120], images[120:140], labels[120:140], num_classes=3,
        seed=5, epochs=1, x_test=images[140:], precision="float32",
    )
    test_images = images[140:]
    as_is = trained.model.predict(test_images, verbose=0)
    mirrored = trained.model.predict(test_images[:, :, ::-1], verbose=0)
    assert not np.allclose(as_is, mirrored, atol=1e-4)  # the synthetic images are not symmetric
    np.testing.assert_allclose(trained.test_proba, (as_is + mirrored) / 2, atol=1e-5)
    validation = (trained.model.predict(images[120:140], verbose=0) + trained.model.predict(images[120:140, :, ::-1], verbose=0)) / 2
    assert trained.validation_accuracy == np.mean(validation.argmax(axis=1) == labels[120:140])


@pytest.mark.parametrize("params, tta", [(TINY_PARAMS, True), ({**TINY_PARAMS, "flip": True}, False)])
def test_without_flips_or_with_tta_off_the_model_predicts_on_the_images_as_they_are(params, tta):
    images, labels = synthetic_images(160)
    trained = train_run(
        params, images[:120], labels[:120], images[120:140], labels[120:140], num_classes=3,
        seed=5, epochs=1, x_test=images[140:], precision="float32", tta=tta,
    )
    np.testing.assert_allclose(trained.test_proba, trained.model.predict(images[140:], verbose=0), atol=1e-5)


def test_cosine_runs_train_their_whole_schedule_and_plateau_runs_stop_early():
    # Validation images all of class 2, which training never shows: validation accuracy stays 0 from epoch 1 on,
    # so early stopping (patience 6) would end a run within 9 epochs.
    images, labels = synthetic_images(160)
    labels = labels % 2
    validation_labels = np.full(20, 2)
    common = dict(x_train=images[:120], y_train=labels[:120], x_validation=images[120:140], y_validation=validation_labels,
                  num_classes=3, seed=5, epochs=10, precision="float32")
    cosine = train_run({**TINY_PARAMS, "schedule": "cosine"}, **common)
    assert len(cosine.history["loss"]) == 10  # the whole schedule: a cosine run ends with its last weights
    plateau = train_run({**TINY_PARAMS, "schedule": "plateau"}, **common)
    assert len(plateau.history["loss"]) < 10  # the reference's recipe: no better epoch in 6, so it stops


def test_a_whitened_run_sets_its_first_layer_from_its_own_training_images_and_never_trains_it():
    images, labels = synthetic_images(160)
    trained = train_run(
        {**TINY_PARAMS, "whiten": True}, images[:120], labels[:120], images[120:140], labels[120:140], num_classes=3,
        seed=5, epochs=2, x_test=images[140:], precision="float32",
    )
    kernel, bias = whitening_weights(images[:120])
    trained_kernel, trained_bias = trained.model.get_layer("whiten").get_weights()
    np.testing.assert_array_equal(trained_kernel, kernel)
    np.testing.assert_array_equal(trained_bias, bias)
    assert trained.validation_accuracy > 0 and np.isfinite(trained.test_proba).all()


def test_off_a_terminal_a_long_run_logs_an_epoch_line_once_the_interval_has_passed(caplog, monkeypatch):
    # pytest's stderr is no terminal: short epochs stay debug detail, and a line comes once the interval is up.
    monkeypatch.delenv("KAGGLE_PIPELINE_PROGRESS", raising=False)
    progress = EpochProgress("run 7", epochs=4, images_per_epoch=100, log_every_seconds=1.0)
    caplog.set_level(logging.INFO, logger="kaggle_pipeline.train")

    def epoch(number, seconds):
        progress.on_epoch_begin(number)
        time.sleep(seconds)
        progress.on_epoch_end(number, {"loss": 0.5, "accuracy": 0.8, "val_accuracy": 0.75})
        return [record.getMessage() for record in caplog.records]

    assert epoch(0, 0.0) == []  # well inside the interval since the run began
    lines = epoch(1, 1.05)
    assert len(lines) == 1 and "run 7 epoch 2/4" in lines[0] and "val_acc 0.7500" in lines[0] and "run ETA" in lines[0]
    assert len(epoch(2, 0.0)) == 1  # the interval starts again at the last line
    assert "run 7 epoch 4/4" in epoch(3, 1.05)[-1]


def test_progress_epochs_logs_every_epoch_line_off_a_terminal(caplog, monkeypatch):
    monkeypatch.setenv("KAGGLE_PIPELINE_PROGRESS", "epochs")
    progress = EpochProgress("run 1", epochs=3, images_per_epoch=10, log_every_seconds=3600)
    caplog.set_level(logging.INFO, logger="kaggle_pipeline.train")
    for number in range(3):
        progress.on_epoch_begin(number)
        progress.on_epoch_end(number, {})
    assert [record.getMessage().split("  loss")[0] for record in caplog.records] == \
        [f"  run 1 epoch {number}/3" for number in (1, 2, 3)]
