"""The search on Ray Tune: ``make search EXECUTOR=ray`` (optional; ``make setup-ray`` installs Ray).

The same declared space (kaggle_pipeline.spaces) through Ray Tune's ``HyperOptSearch``, seeded with the
search seed and limited to as many trials at once as the cluster holds (``ConcurrencyLimiter``). Each trial
reports every epoch; a trial more than the early-abort margin below the best three finished trials at the
same epoch is stopped (``SearchAbortStopper``, kaggle_pipeline.abort's rule applied to trials).

Every finished trial is written as it arrives to the same ``search/trials.json`` (hyperopt trial documents),
``search/trials.csv`` and ``best_params.json`` as the local search writes, so either search can resume the
other's trials and ``make ensemble`` / ``make status`` / ``make report`` do not know which one ran. A resumed
Tune search gives TPE every finished trial as history (the space's starting points go first only in a fresh
search). With several trials at once the proposals depend on the order results arrive, so a Tune search is
seeded but, unlike the local one, not exactly repeatable.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import zlib

import numpy as np

from kaggle_pipeline.abort import MARGIN, MIN_KEPT, abort_floor, below_floor
from kaggle_pipeline.errors import ParameterError, PipelineError, check_stop
from kaggle_pipeline.executors import failure_message
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.progress import StepTimer, format_seconds
from kaggle_pipeline.ray_executor import connect
from kaggle_pipeline.search import (
    STATUS_FAIL,
    STATUS_OK,
    best_score,
    finished_count,
    insert_finished_trial,
    open_trials,
    plain_value,
    record_trials,
    score_text,
    search_subset,
)
from kaggle_pipeline.spaces import hyperopt_point
from kaggle_pipeline.workspace import Workspace

logger = logging.getLogger(__name__)

try:
    from ray.tune import Callback, Stopper
except ImportError:
    raise ParameterError("executor", "ray", "Ray is not installed; run 'make setup-ray' "
                        "(pip install 'kaggle-pipeline[ray]')") from None

# What Tune minimises: 1 - validation accuracy each epoch (Keras' val_accuracy, the early-abort curve), and at
# the end the store's metric as a loss (metrics.Metric.loss; 1 - accuracy for accuracy), as the local search
# gives hyperopt.
METRIC = "loss"


def run_tune_search(
    workspace: Workspace, evals: int, epochs: int, seed: int, space_name: str, subset: int | None,
    precision: str = "auto", ray_address: str | None = None, cpus_per_run: int | None = None, min_steps: int = 0,
    fixed_epochs: bool = False,
) -> dict:
    """Run Tune trials until ``evals`` exist in the store; return the best params record. ``min_steps`` and
    ``fixed_epochs``: as run_search."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    store = workspace.store
    space, starting_points, trials_path, settings, trials = open_trials(workspace, evals, epochs, seed, space_name, subset,
                                                                        min_steps, fixed_epochs)
    epochs = settings["epochs"]
    done = finished_count(trials)
    if done >= evals:
        logger.info(f"search: {done} trial(s) on disk, none to run")
        return _best(store, trials_path)
    x_train, y_train = search_subset(workspace, subset, seed)
    connected_here, ray = connect(ray_address)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        per_trial = {"cpu": cpus_per_run or 1, "gpu": 1 if gpus else 0}
        concurrency = max(1, gpus if gpus else cpus // per_trial["cpu"])
        searcher = HyperOptSearch(
            space=space, metric=METRIC, mode="min", random_state_seed=seed + done,
            points_to_evaluate=None if done else [_space_values(space, point) for point in starting_points],
        )
        if done:  # TPE learns from every finished trial on disk, whichever search ran it
            searcher.set_state({"hyperopt_trials": copy.deepcopy(trials), "rstate": np.random.RandomState(seed + done).get_state()})
        recorder = _TrialRecorder(workspace, trials, trials_path, settings, space, evals, done)
        trainable = tune.with_resources(
            tune.with_parameters(_tune_trial, x_train=x_train, y_train=y_train, x_validation=workspace.x_validation,
                                 y_validation=workspace.y_validation, num_classes=workspace.competition.num_classes,
                                 epochs=epochs, precision=precision, threads=None if gpus else per_trial["cpu"],
                                 seed_base=seed + done, metric_name=workspace.metric),
            per_trial,
        )
        storage = tempfile.mkdtemp(prefix="kaggle-pipeline-tune-")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables would interleave with our lines
        logger.info(f"search: {done} trial(s) on disk, running {evals - done} more on Ray Tune, up to {concurrency} at once "
            f"({len(x_train):,} training images, {epochs} epoch(s) each, space '{space_name}')")
        try:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrency),
                                            num_samples=evals - done),
                run_config=tune.RunConfig(storage_path=storage, name="search", verbose=0, callbacks=[recorder],
                                          stop=SearchAbortStopper(epochs)),
            )
            tuner.fit()
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        check_stop()
    finally:
        if connected_here:
            ray.shutdown()
    return _best(store, trials_path)


def _best(store, trials_path) -> dict:
    best = store.best_params()
    if best is None:
        raise PipelineError(f"{trials_path}: every trial failed; no parameters to retrain")
    return best.to_dict()


def _space_values(space: dict, params: dict) -> dict:
    """A starting point restricted to the space's searched labels (Tune rejects keys the space lacks)."""
    return {label: params[label] for label in hyperopt_point(space, params)}


def _tune_trial(config, x_train, y_train, x_validation, y_validation, num_classes, epochs, precision, threads, seed_base,
                metric_name="accuracy"):
    """One trial, in a Tune worker: train, reporting each epoch, then the final validation accuracy."""
    import keras
    from ray import tune

    from kaggle_pipeline.executors import limit_threads

    if threads:
        limit_threads(threads)
    from kaggle_pipeline.train import train_run

    params = {key: plain_value(value) for key, value in config.items()}
    # Tune names trials at random and runs them in any order: the seed comes from the trial's id, and is recorded.
    seed = seed_base + zlib.crc32(tune.get_context().get_trial_id().encode()) % 1_000_000

    class ReportEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            accuracy = float((logs or {}).get("val_accuracy", float("nan")))
            if epoch + 1 < epochs:  # the last epoch is reported once, below, with the final figures
                tune.report({METRIC: 1.0 - accuracy, "epoch": epoch + 1, "val_accuracy": accuracy})

    trained = train_run(params, x_train, y_train, x_validation, y_validation, num_classes, seed=seed, epochs=epochs,
                        label="trial", precision=precision, extra_callbacks=[ReportEpoch()])
    accuracy = trained.validation_accuracy
    metric = get_metric(metric_name)
    score = accuracy if metric.name == "accuracy" else metric.score_or_worst(y_validation, trained.validation_proba)
    tune.report({METRIC: metric.loss(score), "epoch": epochs, "val_accuracy": accuracy, "final": True,
                 **({} if metric.name == "accuracy" else {"validation_score": score, "metric": metric.name}),
                 "validation_accuracy": accuracy, "seed": seed, "seconds": round(trained.seconds, 2),
                 "images_per_second": round(trained.images_per_second, 1), "precision": trained.precision,
                 "val_accuracy_by_epoch": trained.history.get("val_accuracy", [])})


class SearchAbortStopper(Stopper):
    """Stops a trial at epoch e (not before FIRST_EPOCH, never at its last) when its validation accuracy is more
    than MARGIN below the lowest of the best MIN_KEPT finished trials at epoch e."""

    def __init__(self, epochs: int, margin: float = MARGIN):
        self.epochs, self.margin = epochs, margin
        self.finished: list[tuple[float, list[float]]] = []  # (final accuracy, curve)

    def __call__(self, trial_id: str, result: dict) -> bool:
        if result.get("final"):
            self.finished.append((result["validation_accuracy"], result["val_accuracy_by_epoch"]))
            return False
        best = [curve for _, curve in sorted(self.finished, key=lambda item: -item[0])[:MIN_KEPT]]
        # abort_floor is -inf at every epoch until MIN_KEPT trials have finished
        return below_floor(int(result.get("epoch", 0)), result["val_accuracy"], abort_floor(best, self.margin), self.epochs)

    def stop_all(self) -> bool:
        return False


class _TrialRecorder(Callback):
    """Writes each trial to the store the moment Tune reports it finished (driver side)."""

    def __init__(self, workspace, trials, trials_path, settings, space, evals, done):
        self.workspace, self.trials, self.trials_path, self.settings = workspace, trials, trials_path, settings
        self.space, self.evals = space, evals
        self.timer = StepTimer(evals - done)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        params = {key: plain_value(value) for key, value in trial.config.items()}
        if last.get("final"):
            result = {"status": STATUS_OK, "loss": last[METRIC], "params": params,
                      **{key: last[key] for key in ("validation_accuracy", "seed", "seconds", "images_per_second",
                                                     "precision", "val_accuracy_by_epoch", "validation_score", "metric")
                         if key in last},
                      "epochs": self.settings["epochs"]}
        elif "val_accuracy" not in last:  # ended before its first epoch reported: nothing to rank it by
            result = {"status": STATUS_FAIL, "error": "stopped before its first epoch reported", "params": params}
        else:  # stopped by SearchAbortStopper after an epoch
            accuracy = float(last["val_accuracy"])
            metric = get_metric(self.workspace.metric)
            # Stopped before its validation probabilities existed: another metric's score is unknown, the worst.
            score = {} if metric.name == "accuracy" else {"validation_score": metric.worst, "metric": metric.name}
            result = {"status": STATUS_OK, "loss": metric.loss(accuracy if not score else None),
                      "validation_accuracy": accuracy, "params": params, "stopped_at_epoch": last.get("epoch"), **score}
        self._record(result)

    def on_trial_error(self, iteration, trials, trial, **info):
        params = {key: plain_value(value) for key, value in trial.config.items()}
        error = trial.get_error()
        message = failure_message(getattr(error, "cause", None) or error) if error else "trial failed"
        self._record({"status": STATUS_FAIL, "error": message, "params": params})

    def _record(self, result: dict) -> None:
        self.timer.finish()
        self.timer.start()
        number = finished_count(self.trials)
        insert_finished_trial(self.trials, self.space, result["params"], result, number)
        best = record_trials(self.workspace, self.trials, self.settings)
        if result["status"] == STATUS_OK:
            outcome = score_text(result, self.workspace.metric)
            if result.get("stopped_at_epoch"):
                outcome += f" (stopped at epoch {result['stopped_at_epoch']}: behind the best trials)"
        else:
            outcome = f"failed: {result['error']}"
        logger.info(f"search: trial {number + 1}/{self.evals} {outcome}  best {best_score(best, self.workspace.metric):.4f}  "
            f"({format_seconds(self.timer.durations[-1])}, ETA {self.timer.eta()})  [Ray Tune]")
