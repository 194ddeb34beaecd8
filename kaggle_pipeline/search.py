"""Hyperopt TPE search over a declared space, saved after every trial and resumable.

The space's starting points (kaggle_pipeline.spaces: the reference net with our default recipe, then with the
reference's recipe) are evaluated first; TPE proposes the rest.

hyperopt is driven one trial at a time: each call to ``fmin`` adds one evaluation to the trials restored
from ``search/trials.json``, with a random state derived from (seed, trial number). So a search that was
interrupted and resumed asks for the same points as one that ran straight through, and a finished
trial is never lost or redone.

Trials are stored as JSON, not pickled, so the store never unpickles anything.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from functools import partial

import numpy as np
from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, tpe
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_ERROR
from hyperopt.exceptions import AllTrialsFailed
from hyperopt.fmin import generate_trial

from kaggle_pipeline.data import single_image_rows
from kaggle_pipeline.epochs import epochs_to_train
from kaggle_pipeline.errors import ParameterError, PipelineError, check_stop
from kaggle_pipeline.files import first_line
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.progress import StepTimer, format_seconds
from kaggle_pipeline.spaces import get_space, hyperopt_point
from kaggle_pipeline.store import BestParams, SearchTrials, library_versions
from kaggle_pipeline.workspace import Workspace

logger = logging.getLogger(__name__)

# TPE models the space once this many trials exist; before that it samples at random.
TPE_STARTUP_TRIALS = 5


def run_search(
    workspace: Workspace, evals: int, epochs: int, seed: int, space_name: str, subset: int | None, precision: str = "auto",
    tensorboard: bool = False, min_steps: int = 0, fixed_epochs: bool = False, deadline: float | None = None,
) -> dict:
    """Run trials until ``evals`` exist in the store; return the best params record.

    ``deadline`` (time.monotonic(); kaggle_pipeline.budget): once a trial has succeeded, no trial starts whose
    measured mean duration would end past it.

    ``min_steps``: each trial trains at least this many optimizer steps, ``epochs`` raised if needed
    (kaggle_pipeline.epochs; the command line's presets pass MIN_TRIAL_STEPS); with ``fixed_epochs`` the epochs
    stay as given and a warning says when they fall short.
    """
    store = workspace.store
    space, starting_points, trials_path, settings, trials = open_trials(workspace, evals, epochs, seed, space_name, subset,
                                                                        min_steps, fixed_epochs)
    epochs = settings["epochs"]
    x_train, y_train = search_subset(workspace, subset, seed)
    metric = get_metric(workspace.metric)
    done = finished_count(trials)
    timer = StepTimer(evals - done)
    logger.info(f"search: {done} trial(s) on disk, running {max(0, evals - done)} more "
        f"({len(x_train):,} training images, {epochs} epoch(s) each, space '{space_name}')")

    def objective(params: dict) -> dict:
        trial_number = finished_count(trials)  # trials run one at a time: this one is not finished yet
        trial_seed = seed + trial_number
        params = {key: plain_value(value) for key, value in params.items()}
        try:
            from kaggle_pipeline.train import train_run

            trained = train_run(
                params, x_train, y_train, workspace.x_validation, workspace.y_validation,
                workspace.competition.num_classes, seed=trial_seed, epochs=epochs, label=f"trial {trial_number + 1}", precision=precision,
                tensorboard_dir=store.tensorboard_folder(f"trial-{trial_number + 1:03d}") if tensorboard else None,
            )
        except PipelineError:
            raise
        except Exception as error:  # any error of a trial is its failure, recorded below
            # A point that cannot train (a diverging learning rate, an image too small for the net's pooling) is
            # a failed trial, recorded with its reason, not a failed search.
            return {"status": STATUS_FAIL, "error": first_line(error), "params": params, "seed": trial_seed}
        accuracy = trained.validation_accuracy
        # The store's metric, from the validation probabilities (accuracy: the same number as before).
        score = accuracy if metric.name == "accuracy" else \
            metric.score_or_worst(workspace.y_validation, trained.validation_proba)
        return {
            "status": STATUS_OK,
            "loss": metric.loss(score),
            "validation_accuracy": accuracy,
            **({} if metric.name == "accuracy" else {"validation_score": score, "metric": metric.name}),
            "params": params,
            "seed": trial_seed,
            "seconds": round(trained.seconds, 2),
            "images_per_second": round(trained.images_per_second, 1),
            "precision": trained.precision,
            "val_accuracy_by_epoch": trained.history.get("val_accuracy", []),
            "epochs": epochs,
        }

    while finished_count(trials) < evals:
        check_stop()
        number = finished_count(trials)
        if deadline is not None and any(trial["result"].get("status") == STATUS_OK for trial in trials.trials):
            expected = timer.mean() or float(np.mean([trial["result"].get("seconds", 0.0) for trial in trials.trials]))
            if time.monotonic() + expected > deadline:
                logger.info(f"search: stopped after {number} of {evals} trials: another (about "
                            f"{format_seconds(expected)}) would overrun the search's share of HOURS (kaggle_pipeline.budget)")
                break
        timer.start()
        if number < len(starting_points):
            _evaluate_point(trials, objective, space, starting_points[number], number)
        else:
            # fmin's answer (the best point) raises AllTrialsFailed while every trial so far failed; the trial it
            # ran is recorded in ``trials`` all the same, and the loop decides what happens next.
            with contextlib.suppress(AllTrialsFailed):
                fmin(
                    objective,
                    space,
                    algo=partial(tpe.suggest, n_startup_jobs=TPE_STARTUP_TRIALS),
                    max_evals=number + 1,
                    trials=trials,
                    rstate=np.random.default_rng([seed, number]),
                    show_progressbar=False,
                )
        timer.finish()
        best = record_trials(workspace, trials, settings)
        result = trials.trials[-1]["result"]
        outcome = f"{score_text(result, metric.name)}" if result["status"] == STATUS_OK else f"failed: {result.get('error')}"
        logger.info(f"search: trial {number + 1}/{evals} {outcome}  best {best_score(best, metric.name):.4f}  "
            f"({format_seconds(timer.durations[-1])}, ETA {timer.eta()})")
    best = store.best_params()
    if best is None:
        raise PipelineError(f"{trials_path}: every trial failed; no parameters to retrain")
    return best.to_dict()


def open_trials(workspace: Workspace, evals: int, epochs: int, seed: int, space_name: str, subset: int | None,
                min_steps: int = 0, fixed_epochs: bool = False):
    """The space, its starting points, and the trials on disk (refused if made with other settings).

    The settings hold the epochs every trial trains: ``epochs``, raised to ``min_steps`` optimizer steps unless
    ``fixed_epochs`` (kaggle_pipeline.epochs), counted at the batch size of the space's first starting point
    (the spaces fix the batch size). Where nothing is raised, as on Fashion-MNIST, the settings are what they
    were before the rule, so older searches resume.
    """
    if evals < 1:
        raise ParameterError("evals", evals, "need at least one trial")
    if epochs < 1:
        raise ParameterError("epochs", epochs, "need at least one epoch per trial")
    space, starting_points = get_space(space_name)
    images = subset_size(subset, workspace.y_train)
    epochs, note = epochs_to_train(epochs, images, int(starting_points[0]["batch_size"]), min_steps, fixed_epochs, "trial")
    if note:
        (logger.warning if fixed_epochs else logger.info)(f"search: {note}")
    trials_path = workspace.store.trials_path
    settings = {"space": space_name, "seed": seed, "epochs": epochs, "subset": subset}
    if workspace.metric != "accuracy":  # absent for accuracy: the trials of stores made before metrics still match
        settings["metric"] = workspace.metric
    return space, starting_points, trials_path, settings, load_trials(workspace.store, settings)


def _evaluate_point(trials: Trials, objective, space: dict, params: dict, number: int) -> None:
    """The space's starting points go first, each recorded as a hyperopt trial so TPE learns from it.

    (fmin's points_to_evaluate is ignored when fmin is handed a Trials object, as here.)
    """
    booked = datetime.datetime.now()
    insert_finished_trial(trials, space, params, objective(dict(params)), number, booked)


def insert_finished_trial(trials: Trials, space: dict, params: dict, result: dict, number: int,
                          booked: datetime.datetime | None = None) -> None:
    """Record a trial evaluated outside fmin (a starting point, a Ray Tune trial) as a hyperopt trial document."""
    doc = generate_trial(number, hyperopt_point(space, params))
    doc["book_time"] = booked or datetime.datetime.now()
    doc["result"] = result
    # Done even when the trial failed, as fmin records a STATUS_FAIL result: hyperopt's refresh() drops
    # trials in the error state, which would lose the failure (and its number) from the search.
    doc["state"] = JOB_STATE_DONE
    doc["refresh_time"] = datetime.datetime.now()
    trials.insert_trial_docs([doc])
    trials.refresh()


def finished_count(trials: Trials) -> int:
    """Trials finished (done or failed): the number of the next one. Shared with ray_search."""
    return sum(trial["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR) for trial in trials.trials)


def plain_value(value):
    """A parameter as JSON takes it (numpy scalars from hyperopt or Tune as Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def subset_size(subset: int | None, y_train: np.ndarray) -> int:
    """Training images per trial: ``subset``, or all of them where it is 0, None, or too close to all for a
    stratified split, which must leave at least one image of each class out."""
    if not subset or subset > len(y_train) - len(np.unique(y_train)):
        return len(y_train)
    return subset


def search_subset(workspace: Workspace, subset: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, fixed subset of the training part: trials compare on the same images."""
    x_train, y_train = workspace.x_train, workspace.y_train
    size = subset_size(subset, y_train)
    if size == len(y_train):
        return x_train, y_train
    from sklearn.model_selection import train_test_split

    single = single_image_rows(y_train)  # cannot be stratified: always in the subset
    rest = np.flatnonzero(~single)
    try:
        index = np.flatnonzero(single)
        if size > len(index):
            chosen, _ = train_test_split(rest, train_size=size - len(index), stratify=y_train[rest], random_state=seed)
            index = np.concatenate([index, chosen])
    except ValueError as error:
        raise ParameterError("subset", subset, first_line(error)) from None
    index = np.sort(index)
    return x_train[index], y_train[index]


def best_score(record: dict, metric: str) -> float:
    """A best_params record's (or a trial result's) score by ``metric``: its accuracy, or its recorded score."""
    if metric == "accuracy":
        return record["validation_accuracy"]
    return record.get("validation_score", float("nan")) if record.get("metric") == metric else float("nan")


def score_text(result: dict, metric: str) -> str:
    """``val_acc 0.9123`` (and ``val_logloss 0.2345`` when the store's metric is another)."""
    text = f"val_acc {result['validation_accuracy']:.4f}"
    if metric != "accuracy":
        score = best_score(result, metric)
        text = f"val_{metric} {score:.4f}, " + text
    return text


# Trials on disk ---------------------------------------------------------------------------------
def load_trials(store, settings: dict) -> Trials:
    """The store's trials as hyperopt Trials (empty before the first); refused if made with other settings."""
    trials = Trials()
    saved = store.read_trials()
    if saved is None:
        return trials
    if saved.settings != settings:
        raise PipelineError(
            f"{store.trials_path}: these trials were made with {saved.settings}, not {settings}; "
            "continue with the same settings or remove the search folder"
        )
    docs = [_doc_from_json(trial.to_dict()) for trial in saved.records if trial["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR)]
    for doc in docs:
        doc["state"] = JOB_STATE_DONE  # an older store recorded failed starting points in the error state
    if docs:
        trials.insert_trial_docs(docs)
        trials.refresh()
    return trials


def search_trials(trials: Trials, settings: dict) -> SearchTrials:
    """The finished hyperopt trials as the store's record."""
    docs = [_doc_to_json(doc) for doc in trials.trials if doc["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR)]
    return SearchTrials.of(settings, docs)


def record_trials(workspace: Workspace, trials: Trials, settings: dict) -> dict:
    """After every trial (either search): trials.json and trials.csv, then best_params.json; returns the best."""
    store = workspace.store
    store.write_trials(search_trials(trials, settings))
    best = best_params(trials, settings, workspace)
    if best is None:
        return {"validation_accuracy": float("nan")}
    store.write_best_params(best)
    return best.to_dict()


def _doc_to_json(doc: dict) -> dict:
    doc = dict(doc)
    for key in ("book_time", "refresh_time"):
        if isinstance(doc.get(key), datetime.datetime):
            doc[key] = doc[key].isoformat()
    return doc


def _doc_from_json(doc: dict) -> dict:
    for key in ("book_time", "refresh_time"):
        if isinstance(doc.get(key), str):
            doc[key] = datetime.datetime.fromisoformat(doc[key])
    return doc


def best_params(trials: Trials, settings: dict, workspace: Workspace) -> BestParams | None:
    """The best trial so far as best_params.json's record; None while no trial succeeded."""
    successes = [trial for trial in trials.trials if trial["result"].get("status") == STATUS_OK]
    if not successes:
        return None
    # The lowest loss (the store's metric; 1 - accuracy for accuracy), the earliest trial on a tie.
    best = min(successes, key=lambda trial: (trial["result"].get("loss", 1 - trial["result"]["validation_accuracy"]),
                                             trial["tid"]))
    metric = settings.get("metric", "accuracy")
    score = {} if metric == "accuracy" else {"metric": metric, "validation_score": best["result"]["validation_score"]}
    return BestParams.from_dict({
        "params": best["result"]["params"],
        "validation_accuracy": best["result"]["validation_accuracy"],
        **score,
        "trial": best["tid"] + 1,
        "seed": best["result"]["seed"],
        "trials": len(trials.trials),
        **settings,
        "fingerprint": workspace.competition.fingerprint(),
        "versions": library_versions(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }, "best trial")
