"""Where retrain runs train: in this process (``local``, the default) or as Ray tasks (``ray``).

An executor takes ``RunJob``s and hands back each one's outcome when it finishes, in any order. It never
writes to the run store: the ensemble loop does that, in this process, the moment an outcome arrives, so
resume, checksums and ``make status`` are the same whichever executor trained the run.

    local   one run at a time, here (kaggle_pipeline.executors.LocalExecutor)
    ray     Ray tasks on a local Ray instance or the cluster at RAY_ADDRESS (kaggle_pipeline.ray_executor)

``kaggle_pipeline.ensemble.make_executor`` picks one by name (ray_executor imports this module, never the
other way round).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import first_line
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.store import Run, library_versions

EXECUTORS = ("local", "ray")

# Fault injection for the tests: KAGGLE_PIPELINE_BREAK_RUN="2:error,3:crash" makes run 2 raise inside its
# training and run 3's process exit (a crashed Ray worker); runs not named train normally.
BREAK_RUN = "KAGGLE_PIPELINE_BREAK_RUN"


@dataclass
class RunJob:
    """Everything one retrain run needs besides the data."""

    number: int
    seed: int
    params: dict
    epochs: int
    threshold: float
    precision: str
    abort_floor: list[float] | None
    tta: bool
    tensorboard_dir: str | None = None
    threads: int | None = None  # CPU threads for TensorFlow (a Ray task's share of its node)
    metric: str = "accuracy"  # the store's metric: the run is kept when its validation score passes threshold
    fold: int | None = None  # ensemble --folds: the fold held out (RunData.for_fold); None: the fixed split


@dataclass
class RunData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray | None
    num_classes: int
    # ensemble --folds: each labelled image's fold; x_train/y_train then hold every labelled image and a job
    # trains on the data of its fold (for_fold). None: the fixed split, x_validation/y_validation as given.
    folds: np.ndarray | None = None

    @classmethod
    def of(cls, workspace, folds: np.ndarray | None = None) -> "RunData":
        if folds is not None:
            competition = workspace.competition
            return cls(competition.x_train, competition.y_train, competition.x_train[:0], competition.y_train[:0],
                       competition.x_test, competition.num_classes, folds)
        return cls(workspace.x_train, workspace.y_train, workspace.x_validation, workspace.y_validation,
                   workspace.competition.x_test, workspace.competition.num_classes)

    def for_fold(self, fold: int | None) -> "RunData":
        """The data of a run holding out ``fold``: it trains on every other fold's images and validates (and makes
        its out-of-fold predictions) on that fold's, in index order. ``None`` or no folds: this data as it is."""
        if fold is None or self.folds is None:
            return self
        held_out = self.folds == fold
        return RunData(self.x_train[~held_out], self.y_train[~held_out], self.x_train[held_out], self.y_train[held_out],
                       self.x_test, self.num_classes)


def train_job(job: RunJob, data: RunData) -> dict:
    """Train one run and return its outcome: plain data (history, probabilities, the model's bytes if kept),
    or ``status: failed`` with the error. Runs wherever the executor puts it."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data = data.for_fold(job.fold)
    outcome = {"started": started, "host": socket.gethostname(), "versions": library_versions()}
    try:
        _break_if_asked(job.number)
        if job.threads:
            limit_threads(job.threads)
        from kaggle_pipeline.train import train_run

        trained = train_run(
            job.params, data.x_train, data.y_train, data.x_validation, data.y_validation, data.num_classes,
            seed=job.seed, epochs=job.epochs, x_test=data.x_test, label=f"run {job.number}", precision=job.precision,
            abort_floor=job.abort_floor, tta=job.tta,
            tensorboard_dir=Path(job.tensorboard_dir) if job.tensorboard_dir else None,
        )
    except PipelineError:
        raise
    except Exception as error:  # a crashed run is recorded and the loop goes on
        return {**outcome, "status": "failed", "error": failure_message(error),
                "traceback": traceback.format_exc(limit=5)}
    outcome.update(history=trained.history, seconds=round(trained.seconds, 2), precision=trained.precision,
                   images_per_second=round(trained.images_per_second, 1),
                   validation_accuracy=trained.validation_accuracy)
    metric = get_metric(job.metric)
    score = trained.validation_accuracy
    if metric.name != "accuracy":  # from the validation probabilities, as TTA made them
        score = metric.score_or_worst(data.y_validation, trained.validation_proba)
        outcome.update(validation_score=score, metric=metric.name)
    if trained.aborted_at_epoch is not None:
        return {**outcome, "status": "aborted", "stopped_epoch": trained.aborted_at_epoch}
    outcome.update(status="done", stopped_epoch=len(trained.history["loss"]),
                   kept=metric.passes(score, job.threshold),
                   validation_proba=trained.validation_proba.astype(np.float32),
                   test_proba=trained.test_proba.astype(np.float32))
    if outcome["kept"]:
        outcome["model_bytes"] = _model_bytes(trained.model)
    return outcome


def failure_message(error: BaseException) -> str:
    """The error's type and first line, as a failed run records it."""
    text = str(error).strip()
    return f"{type(error).__name__}: {first_line(error)}" if text else type(error).__name__


def _model_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Run.MODEL
        model.save(path)
        return path.read_bytes()


def limit_threads(threads: int) -> None:
    """TensorFlow's CPU threads (a Ray task's share of its node); too late once TensorFlow has started."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        pass  # TensorFlow already started in this process: it keeps the threads it has


def _break_if_asked(number: int) -> None:
    for entry in filter(None, os.environ.get(BREAK_RUN, "").split(",")):
        run, _, how = entry.partition(":")
        if int(run) == number:
            if how == "crash":
                os._exit(1)
            raise RuntimeError(f"run {number} broken on purpose ({BREAK_RUN})")


class LocalExecutor:
    """One run at a time, in this process."""

    name = "local"
    capacity = 1

    def __init__(self, data: RunData):
        self.data = data
        self.waiting: list[RunJob] = []

    def submit(self, job: RunJob) -> None:
        self.waiting.append(job)

    def next_finished(self) -> tuple[RunJob, dict]:
        job = self.waiting.pop(0)
        return job, train_job(job, self.data)

    def cancel(self) -> None:
        self.waiting.clear()

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "local executor, one run at a time"
