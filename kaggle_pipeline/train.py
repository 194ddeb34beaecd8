"""Train one network with one seed: the unit of work of both the search and the ensemble.

Images stay uint8 in memory and are scaled (and, in training, augmented) inside the graph; batches come
from ``tf.data`` (seeded shuffle of indices, one gather per batch, prefetch). A cosine run trains its whole
schedule and ends with its last weights; a plateau run (the reference's recipe) stops early and ends with the
weights of its best validation epoch. Every run records per-epoch wall time and images/s. An ensemble run
can be given an early-abort floor (kaggle_pipeline.abort).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow_quietly():
    """TensorFlow's C++ side prints start-up banners to fd 2 before any log setting applies; hide only those."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401 - imported for its start-up, with fd 2 silenced
    finally:
        os.dup2(saved, 2)
        os.close(saved)


import_tensorflow_quietly()
# The imports below must come after that quiet first import of TensorFlow (hence E402).
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from kaggle_pipeline.abort import abort_epoch  # noqa: E402
from kaggle_pipeline.errors import ParameterError  # noqa: E402
from kaggle_pipeline.network import batch_norm_momentum, build_model, complete_params, set_whitening  # noqa: E402
from kaggle_pipeline.progress import format_seconds  # noqa: E402

logger = logging.getLogger(__name__)


class _NewModelTracing(logging.Filter):
    """Drops TensorFlow's "N out of the last N calls ... triggered tf.function retracing" warning. It counts traces
    by the code of Keras' step function, across models; every run builds a new model, whose first call must be
    traced, so a process training several runs on small sets (every predict call one partial batch) is warned
    about retracing that is one trace per new model, with advice that does not apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NewModelTracing())


# Numeric precision, picked by name (PRECISION=); "auto" picks the fastest one the hardware runs well.
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_precision(requested: str = "auto", gpus: list | None = None, flags: set[str] | None = None) -> str:
    """float16 on GPUs, bfloat16 on CPUs with native bf16 instructions, float32 otherwise.

    bf16's gain on the development CPU is measured by bench/throughput.py (docs/PERFORMANCE.md).

    Never XLA on the CPU: jit_compile measured 4-7x slower on this kind of machine.
    """
    if requested not in PRECISIONS:
        raise ParameterError("precision", requested, f"choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    gpus = tf.config.list_physical_devices("GPU") if gpus is None else gpus
    if gpus:
        return "mixed_float16"
    flags = cpu_flags() if flags is None else flags
    if {"avx512_bf16", "amx_bf16"} & flags:
        return "mixed_bfloat16"
    return "float32"


@dataclass
class TrainedRun:
    model: object
    history: dict[str, list[float]]
    validation_proba: np.ndarray
    test_proba: np.ndarray | None
    validation_accuracy: float
    seconds: float
    images_per_second: float
    precision: str
    aborted_at_epoch: int | None = None


# Plateau runs: epochs without a better validation accuracy before a run stops; the best epoch's weights are kept.
# Cosine runs have no early stopping: on 1,200 validation images (bench/budget.py --small) it stopped 36-epoch runs
# after 15-27 epochs, while the rate was still high, and restored epoch 9-21: 0.888-0.906 on the answer key,
# where the same runs trained to the end of the schedule scored 0.911 (docs/PERFORMANCE.md, "Levers").
EARLY_STOPPING_PATIENCE = 6


def make_dataset(
    images: np.ndarray, labels: np.ndarray | None, batch_size: int, shuffle_seed: int | None = None,
    num_classes: int | None = None,
):
    """Batches gathered from in-memory uint8 tensors by shuffled index: one gather per batch, not a
    tf.data element per image; the two are measured side by side in bench/throughput.py.
    Labels come out one-hot over ``num_classes`` (the loss smooths them)."""
    image_tensor = tf.constant(images)
    label_tensor = None
    if labels is not None:
        if num_classes is None:
            raise ValueError("make_dataset: num_classes is needed to one-hot the labels")
        label_tensor = tf.one_hot(np.asarray(labels, dtype=np.int32), num_classes)
    indices = tf.data.Dataset.range(len(images))
    if shuffle_seed is not None:
        indices = indices.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(batch_indices):
        batch_images = tf.gather(image_tensor, batch_indices)
        return batch_images if label_tensor is None else (batch_images, tf.gather(label_tensor, batch_indices))

    return indices.batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)


def predict_proba(model, images: np.ndarray, batch_size: int = 512, flip: bool = False) -> np.ndarray:
    """Class probabilities; with ``flip``, the mean over each image and its mirror image (test-time
    augmentation for models trained with horizontal flips, which the data then allows)."""
    if len(images) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    probabilities = np.asarray(model.predict(make_dataset(images, None, batch_size), verbose=0), dtype=np.float32)
    if flip:
        mirrored = np.ascontiguousarray(images[:, :, ::-1])
        probabilities = (probabilities + predict_proba(model, mirrored, batch_size)) / 2
    return probabilities


def train_run(
    params: dict,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_validation: np.ndarray,
    y_validation: np.ndarray,
    num_classes: int,
    seed: int,
    epochs: int,
    x_test: np.ndarray | None = None,
    label: str = "run",
    precision: str = "auto",
    abort_floor: list[float] | None = None,
    tta: bool = True,
    tensorboard_dir: Path | None = None,
    extra_callbacks: list | None = None,
) -> TrainedRun:
    """Train ``params`` from scratch with ``seed`` and return its history and class probabilities.

    With ``abort_floor`` (per-epoch validation accuracies, kaggle_pipeline.abort) the run stops at the
    first epoch that falls below it and reports that epoch as ``aborted_at_epoch``. With ``tta`` a model
    trained on mirrored images predicts on each image and its mirror image (the data allows flips).
    With ``tensorboard_dir`` the epochs are also logged there for TensorBoard. ``extra_callbacks`` are Keras
    callbacks added to training (the Ray Tune search reports each epoch with one).
    """
    precision = choose_precision(precision)
    params = complete_params(params)
    with _restored_dtype_policy():
        keras.utils.set_random_seed(seed)
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy(precision)  # after clear_session, which resets the policy
        batch_size = int(params["batch_size"])
        steps_per_epoch = max(1, -(-len(x_train) // batch_size))
        model = build_model(params, x_train.shape[1:], num_classes, bn_momentum=batch_norm_momentum(steps_per_epoch),
                            steps_per_epoch=steps_per_epoch, epochs=epochs)
        set_whitening(model, x_train)
        progress = EpochProgress(label, epochs, len(x_train))
        abort = EarlyAbort(abort_floor, epochs) if abort_floor else None
        callbacks = [keras.callbacks.TerminateOnNaN(), progress]
        if params["schedule"] == "plateau":
            # The reference's ReduceLROnPlateau (factor 0.2, patience 5); its min_lr=0.001 equalled the start
            # rate and so never fired, ours lets the rate fall to 1e-5.
            callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5, min_lr=1e-5))
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=EARLY_STOPPING_PATIENCE,
                                                           restore_best_weights=True))
        if abort is not None:
            callbacks.append(abort)
        if tensorboard_dir is not None:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), write_graph=False))
        callbacks.extend(extra_callbacks or [])
        started = time.perf_counter()
        fit = model.fit(
            make_dataset(x_train, y_train, batch_size, shuffle_seed=seed, num_classes=num_classes),
            validation_data=make_dataset(x_validation, y_validation, 512, num_classes=num_classes),
            epochs=epochs,
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself, seeded
            verbose=0,
        )
        seconds = time.perf_counter() - started
        aborted_at_epoch = abort.stopped_at if abort is not None else None
        # A model trained on mirrored images predicts on both orientations; the validation accuracy that keeps
        # or rejects the run is measured the way its test predictions are made.
        flip = tta and bool(params["flip"])
        validation_proba = predict_proba(model, x_validation, flip=flip)
        # An aborted run is never voted: skip predicting the test set.
        test_proba = predict_proba(model, x_test, flip=flip) if x_test is not None and aborted_at_epoch is None else None
        history = {key: [float(value) for value in values] for key, values in fit.history.items()}
        history["epoch_seconds"] = [round(value, 3) for value in progress.epoch_seconds]
        history["epoch_images_per_second"] = [round(len(x_train) / value, 1) for value in progress.epoch_seconds]
        trained_epochs = len(history.get("loss", []))
        accuracy = float(np.mean(validation_proba.argmax(axis=1) == y_validation)) if np.isfinite(validation_proba).all() else 0.0
        return TrainedRun(
            model=model,
            history=history,
            validation_proba=validation_proba,
            test_proba=test_proba,
            validation_accuracy=accuracy,
            seconds=seconds,
            images_per_second=trained_epochs * len(x_train) / seconds if seconds > 0 else 0.0,
            precision=precision,
            aborted_at_epoch=aborted_at_epoch,
        )


@contextlib.contextmanager
def _restored_dtype_policy():
    """Training sets the global dtype policy; put the caller's back afterwards."""
    previous = keras.mixed_precision.global_policy()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class EarlyAbort(keras.callbacks.Callback):
    """Stops training at the first epoch whose validation accuracy is below the floor (kaggle_pipeline.abort)."""

    def __init__(self, floor: list[float], epochs: int):
        super().__init__()
        self.floor, self.epochs = floor, epochs
        self.curve: list[float] = []
        self.stopped_at: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        self.curve.append(float((logs or {}).get("val_accuracy", float("nan"))))
        if abort_epoch(self.curve, self.floor, self.epochs) == epoch + 1:
            self.stopped_at = epoch + 1
            self.model.stop_training = True
            logger.info(f"  early abort at epoch {epoch + 1}/{self.epochs}: val_acc {self.curve[-1]:.4f} "
                f"< floor {self.floor[epoch]:.4f} (the lowest kept run at this epoch - margin)")


# Off a terminal, the longest a run goes without an epoch line in the log.
LOG_EVERY_SECONDS = 90.0


class EpochProgress(keras.callbacks.Callback):
    """On a terminal: a live batch counter and one line per epoch with validation accuracy, speed and the run's
    ETA. Elsewhere (CI, nohup, a log file) the search and the ensemble print one line per finished trial or run,
    the per-epoch numbers are in each run's history.csv, and an epoch line is logged only once
    ``log_every_seconds`` have passed since the run's start or its last line: short runs stay one line each, and
    a long run (the full preset's take half an hour) still shows its ETA in a log every minute or two.
    ``KAGGLE_PIPELINE_PROGRESS=epochs`` logs every epoch line there too."""

    def __init__(self, label: str, epochs: int, images_per_epoch: int, log_every_seconds: float = LOG_EVERY_SECONDS):
        super().__init__()
        self.label, self.epochs, self.images_per_epoch = label, epochs, images_per_epoch
        self.log_every_seconds = log_every_seconds
        self.epoch_seconds: list[float] = []
        self.live = sys.stderr.isatty()
        self.epoch_lines = self.live or os.environ.get("KAGGLE_PIPELINE_PROGRESS") == "epochs"
        self._last_line = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = self._last_draw = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.live and now - self._last_draw > 0.5:
            self._last_draw = now
            steps = self.params.get("steps") or 0
            print(f"\r  {self.label} epoch {len(self.epoch_seconds) + 1}/{self.epochs} batch {batch + 1}/{steps}",
                  end="", file=sys.stderr, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        now = time.perf_counter()
        self.epoch_seconds.append(now - self._epoch_started)
        # Elsewhere than a terminal most epoch lines are debug detail (-v, VERBOSE=2, shows them all in a log).
        due = now - self._last_line >= self.log_every_seconds
        level = logging.INFO if self.epoch_lines or due else logging.DEBUG
        if not logger.isEnabledFor(level):
            return
        if level == logging.INFO:
            self._last_line = now
        mean = sum(self.epoch_seconds) / len(self.epoch_seconds)
        eta = format_seconds(mean * (self.epochs - epoch - 1))
        speed = self.images_per_epoch / self.epoch_seconds[-1]
        clear = "\r\033[K" if self.live else ""
        logger.log(
            level,
            f"{clear}  {self.label} epoch {epoch + 1}/{self.epochs}  loss {logs.get('loss', float('nan')):.4f}  "
            f"acc {logs.get('accuracy', float('nan')):.4f}  val_acc {logs.get('val_accuracy', float('nan')):.4f}  "
            f"{self.epoch_seconds[-1]:.0f}s ({speed:,.0f} img/s)  run ETA {eta}"
        )
