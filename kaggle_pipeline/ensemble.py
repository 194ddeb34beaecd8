"""Retrain the chosen architecture with new seeds until N runs pass the threshold of the store's metric.

Every attempt is recorded the moment it finishes, under ``runs/run-NNNN/``: ``run.json`` (seed, params,
per-epoch history, validation accuracy, kept or not, timing, versions), ``history.csv`` (the same per-epoch
history as a table) and ``predictions.npz`` (validation and test class probabilities); a kept run also saves
``model.keras``. With ``--tensorboard`` the epochs also go to ``tensorboard/run-NNNN/``. The folder is
written under a temporary name and renamed, so a kill leaves either the whole run or nothing.

Rerunning resumes: runs on disk count, kept runs are never retrained, new runs get new seeds.
A run is kept when its validation score by the store's metric (kaggle_pipeline.metrics; accuracy unless the
store was made with another) reaches the threshold in force: at least it, or at most it for logloss, where
lower is better. Raising or lowering THRESHOLD later re-sorts the runs already on disk (every finished run
keeps its predictions).

A run that falls clearly behind the kept runs' validation accuracy curve (Keras' per-epoch ``val_accuracy``,
whatever the store's metric) is stopped early (kaggle_pipeline.abort)
and recorded as ``aborted`` with the epoch it stopped at; ``--no-early-abort`` turns the rule off and
``--abort-margin`` sets its margin.
Aborted runs are never kept, whatever the threshold later becomes.

``--hours`` caps this invocation's wall time: a new run starts only if the mean duration of the runs so far
says it will finish inside the budget, so a time-boxed ensemble ends with whole runs and the reason recorded.
Under the whole job's budget (``all``, no EPOCHS given) the budget also sets how long runs train and may end
with one shorter last run (kaggle_pipeline.budget).

``--folds K`` (FOLDS=K; default off: every run validates on the fixed split, as stores always have) makes
k-fold members: every labelled image (the fixed split's training and validation images together) is put in
one of K folds, stratified and seeded, saved once as ``folds.npz`` (kaggle_pipeline.store.Folds); a store's
folds never change later. Each run holds out one fold: it trains on the other K-1 and predicts its held-out
fold (its ``predictions.npz`` ``validation`` rows: that fold's images in index order; its ``run.json`` names
the ``fold``) and the test set. The next run holds out the fold with the fewest kept (or training) runs, the
lowest first, so K kept runs in a row hold out each fold once (a "round": every image is taught by K-1 of them
and predicted out of fold by the one that did not see it), and a resumed ensemble continues the same cycle.
The threshold compares each run on its own held-out fold (the one keep rule, ``Run.is_kept``); its default is
still the search's (fixed split) best trial's. N is rounded up to a multiple of K; kaggle_pipeline.submit
votes complete rounds.

``--recipes K`` (RECIPES=K; the full preset's default is 2) trains the runs from the K best search trials in turn
(best_params.json's first, then the next best distinct ones of ``search/trials.json``): the next run takes the
recipe with the fewest attempts, the better one on a tie, so a resumed ensemble keeps the mix. Members of
different recipes err differently, and the vote (kaggle_pipeline.vote: ``select``, ``weighted``, ``auto``)
judges them by how they vote together on validation, not by one trial's score. A recipe other than the first
whose first MAX_FAILED_RECIPE_ATTEMPTS attempts were all not kept is not tried again in that call. Each run's
``run.json`` holds its params; the early-abort rule compares a run only with kept runs of its own recipe.

``--executor`` picks where runs train (kaggle_pipeline.executors: here, or as Ray tasks on many GPUs or
machines); the run store is written here either way, run by run as each finishes, in any order.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.abort import MARGIN, MIN_KEPT, abort_floor
from kaggle_pipeline.budget import LAST_RUN_SHARE, epochs_that_fit, fill_epochs, planned_runs, refill_epochs
from kaggle_pipeline.epochs import epochs_to_train
from kaggle_pipeline.errors import ParameterError, PipelineError, check_stop
from kaggle_pipeline.executors import EXECUTORS, LocalExecutor, RunData, RunJob
from kaggle_pipeline.files import first_line
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.progress import format_seconds
from kaggle_pipeline.store import EnsembleSettings, Folds, Run, kept_runs, library_versions
from kaggle_pipeline.workspace import Workspace

logger = logging.getLogger(__name__)

# The default threshold sits this far below the best search trial's validation accuracy (other metrics:
# Metric.default_threshold).
THRESHOLD_MARGIN = 0.01


def default_threshold(workspace: Workspace) -> float:
    best = read_best_params(workspace)
    metric = get_metric(workspace.metric)
    if metric.name == "accuracy":
        return round(float(best["validation_accuracy"]) - THRESHOLD_MARGIN, 6)
    if best.get("metric") != metric.name:
        raise PipelineError(f"{workspace.store.best_params_path}: the search was judged by "
                            f"{best.get('metric', 'accuracy')}, the store by {metric.name}; search again")
    return metric.default_threshold(float(best["validation_score"]))


# A recipe other than the best that has had this many attempts and none kept is not tried again.
MAX_FAILED_RECIPE_ATTEMPTS = 2


def search_recipes(store, best_params: dict, count: int) -> list[dict]:
    """The params of up to ``count`` recipes: ``best_params`` first, then the best other successful search
    trials (lowest loss first, the earlier on a tie) whose params differ from every one chosen."""
    recipes = [best_params]
    trials = store.read_trials() if count > 1 else None
    ranked = sorted((trial for trial in (trials.records if trials else []) if trial.ok and "params" in trial.result),
                    key=lambda trial: (trial.result.get("loss", float("inf")), trial.number))
    for trial in ranked:
        if len(recipes) >= count:
            break
        if trial.result["params"] not in recipes:
            recipes.append(trial.result["params"])
    return recipes


def next_recipe(records: list[dict], training: list[dict], recipes: list[dict], kept: list[dict]) -> dict:
    """The params the next run trains with: the recipe with the fewest attempts on disk and under way, the
    better one on a tie; a recipe other than the first is left out once its first MAX_FAILED_RECIPE_ATTEMPTS
    attempts were all not kept."""
    candidates = []
    for index, params in enumerate(recipes):
        tried = sum(record.get("params") == params for record in records)
        if index and tried >= MAX_FAILED_RECIPE_ATTEMPTS and not any(run.get("params") == params for run in kept):
            continue
        candidates.append((tried + training.count(params), index))
    return recipes[min(candidates)[1]]


def read_best_params(workspace: Workspace) -> dict:
    return read_best_params_of(workspace.store)


def read_best_params_of(store) -> dict:
    """best_params.json, validated."""
    best = store.best_params()
    if best is None:
        raise PipelineError(f"{store.best_params_path}: not found; run 'make search' (python -m kaggle_pipeline search) first")
    return best.to_dict()


MAX_FOLDS = 20
FOLD_SEED = 0


def make_folds(labels: np.ndarray, k: int, seed: int = FOLD_SEED) -> Folds:
    """Every labelled image in one of ``k`` folds: each class shuffled (seeded) and dealt round the folds, each
    class starting where the last ended, so the folds' sizes differ by at most one and each class is spread evenly."""
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        assignment[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return Folds(assignment, k, seed)


def store_folds(workspace: Workspace, folds: int | None) -> tuple[Folds | None, bool]:
    """The store's folds, or new ones for ``folds`` (K), and whether they are new (to be written). Reads only:
    a K outside 2..MAX_FOLDS, another K than the store's, or folds asked of a store whose runs validated on the
    fixed split is a ParameterError."""
    if folds is not None and not 2 <= folds <= MAX_FOLDS:
        raise ParameterError("folds", folds, f"k-fold members need 2 to {MAX_FOLDS} folds")
    store, labels = workspace.store, workspace.competition.y_train
    saved = store.read_folds(len(labels))
    if saved is not None:
        if folds is not None and folds != saved.k:
            raise ParameterError("folds", folds, f"{store.folds_path} holds {saved.k} folds; a store's folds cannot "
                                 f"change (use FOLDS={saved.k}, or another --name)")
        return saved, False
    if folds is None:
        return None, False
    if store.run_folders():
        raise ParameterError("folds", folds, f"{store.runs_dir} holds runs validated on the fixed split; k-fold runs "
                             "cannot be mixed in (use another --name, or leave FOLDS out)")
    if len(labels) < folds:
        raise ParameterError("folds", folds, f"only {len(labels)} labelled images")
    return make_folds(labels, folds), True


def next_fold(kept: list[dict], training: list[int | None], k: int) -> int:
    """The fold the next run holds out: the one with the fewest kept or training runs, the lowest first."""
    counts = np.zeros(k, dtype=np.int64)
    for fold in [record.get("fold") for record in kept] + list(training):
        if fold is not None and 0 <= fold < k:
            counts[fold] += 1
    return int(counts.argmin())


def make_executor(name: str, data: RunData, ray_address: str | None = None, cpus_per_run: int | None = None):
    """The executor called ``name`` (kaggle_pipeline.executors.EXECUTORS). Chosen here, by the stage that uses
    it: ray_executor builds on executors, so executors cannot name it without an import cycle."""
    if name == "local":
        return LocalExecutor(data)
    if name == "ray":
        from kaggle_pipeline.ray_executor import RayExecutor

        return RayExecutor(data, address=ray_address, cpus_per_run=cpus_per_run)
    raise ParameterError("executor", name, f"unknown; choose one of {', '.join(EXECUTORS)}")


def early_abort_floor(kept: list[dict], params: dict, epochs: int, margin: float,
                      fold: int | None = None) -> list[float] | None:
    """The abort floor from kept runs trained like the next one (same params, epochs and held-out fold), or
    None while fewer than MIN_KEPT exist. Folds differ in difficulty (a 5-fold bench on 12,000 images: 0.903
    to 0.921 per fold), so a run is only compared with runs validated on the same images."""
    curves = [record["history"]["val_accuracy"] for record in kept
              if record.get("params") == params and record.get("epochs") == epochs and record.get("fold") == fold
              and "val_accuracy" in record.get("history", {})]
    return abort_floor(curves, margin) if len(curves) >= MIN_KEPT else None


def run_ensemble(
    workspace: Workspace, n: int, threshold: float | None, max_runs: int | None, epochs: int, seed: int,
    precision: str = "auto", abort_margin: float | None = MARGIN, hours: float | None = None, tta: bool = True,
    tensorboard: bool = False, executor: str = "local", ray_address: str | None = None, cpus_per_run: int | None = None,
    min_steps: int = 0, fixed_epochs: bool = False, folds: int | None = None,
    images_per_second: float | None = None, budget: dict | None = None, fill_budget: bool = False, recipes: int = 1,
) -> list[dict]:
    """Train until ``n`` runs are kept, ``max_runs`` attempts exist or the next run would overrun ``hours``;
    return the kept runs.

    ``abort_margin`` is the early-abort rule's margin (None: no early abort; negative: a run must beat the
    worst kept run's curve by that much). ``tta``: runs trained with flips also predict on mirror images.
    ``executor`` (kaggle_pipeline.executors): where runs train; with several at once, no more are started than
    can still be needed (kept + training <= n, attempts <= max_runs).
    ``min_steps``: each run trains at least this many optimizer steps, ``epochs`` raised if needed
    (kaggle_pipeline.epochs; the command line's presets pass MIN_RUN_STEPS); with ``fixed_epochs`` the epochs
    stay as given and a warning says when they fall short. The epochs trained are in ensemble.json and in
    every run.json. ``folds``: K for k-fold members (see the module's docstring); None: the store's folds if it
    has them, else the fixed split. ``images_per_second``: the training speed the search measured, which sizes
    the first run against ``hours`` before any run has finished. ``budget``: the whole job's split of its hours
    (kaggle_pipeline.budget), recorded in ensemble.json. ``fill_budget``: ``hours`` size the runs, each as
    long as a few of them fill the budget at ``images_per_second`` (kaggle_pipeline.budget.fill_epochs; not with
    ``fixed_epochs``). ``recipes``: runs are trained from this many of the best search trials in turn (see the
    module's docstring).
    """
    if n < 1:
        raise ParameterError("n", n, "need at least one kept run")
    if epochs < 1:
        raise ParameterError("epochs", epochs, "need at least one epoch per run")
    if max_runs is not None and max_runs < 1:
        raise ParameterError("max_runs", max_runs, "need at least one attempt")
    if recipes < 1:
        raise ParameterError("recipes", recipes, "need at least one recipe (search trial) to train runs from")
    metric = workspace.metric
    get_metric(metric).check_threshold(threshold)
    if hours is not None and not hours > 0:
        raise ParameterError("hours", hours, "the time budget must be positive")
    store = workspace.store
    fold_set, new_folds = store_folds(workspace, folds)
    if fold_set is not None and n % fold_set.k:
        rounded = -(-n // fold_set.k) * fold_set.k
        logger.info(f"ensemble: N={n} rounded up to {rounded}, whole rounds of {fold_set.k} folds")
        n = rounded
    best = read_best_params(workspace)
    recipe_params = search_recipes(store, best["params"], recipes)
    if len(recipe_params) < recipes:
        logger.info(f"ensemble: RECIPES={recipes}, but the search has {len(recipe_params)} distinct successful "
                    f"trial(s); runs are trained from {len(recipe_params)}")
    # A k-fold run trains on every fold but one, not on the fixed split's training part: its epochs (and the
    # first run's time estimate) count those images.
    run_images = len(workspace.y_train) if fold_set is None else \
        min(len(fold_set.training(fold)) for fold in range(fold_set.k))
    threshold_rule = "given" if threshold is not None else "best search trial" + \
        (f" - {THRESHOLD_MARGIN}" if metric == "accuracy" else f", {get_metric(metric).margin} worse (logloss: or 10%)")
    threshold = default_threshold(workspace) if threshold is None else float(threshold)
    max_runs = max(2 * n, n + 5) if max_runs is None else max_runs
    if new_folds:
        store.write_folds(fold_set)
    for leftover in store.remove_unfinished_runs():
        logger.info(f"ensemble: removed {leftover}, a run that was interrupted before it finished")
    records = store.run_records()
    epochs, note = epochs_to_train(epochs, run_images, int(best["params"]["batch_size"]), min_steps,
                                   fixed_epochs, "run")
    if note:
        (logger.warning if fixed_epochs else logger.info)(f"ensemble: {note}")
    # The shortest run worth training: the preset's epochs, raised on small data to the minimum of steps.
    shortest = epochs
    fill = fill_budget and hours is not None and not fixed_epochs
    # Runs sized from the search's speed are re-sized from the runs' own once one has finished; a resumed
    # ensemble keeps the length of the runs on disk instead.
    epochs_on_disk = _epochs_on_disk(records, shortest)
    refill = fill and epochs_on_disk is None
    fill_runs = planned_runs(None if fold_set is None else fold_set.k)
    if fill:
        epochs, note = fill_epochs(epochs, hours, run_images, images_per_second, epochs_on_disk, fill_runs)
        if note:
            logger.info(f"ensemble: {note}")
    settings = {
        "n": n, "threshold": threshold, "max_runs": max_runs, "epochs": epochs, "seed": seed,
        "params": best["params"], "threshold_rule": threshold_rule, "abort_margin": abort_margin, "hours": hours, "tta": tta,
        "executor": executor, "metric": metric,
    }
    if len(recipe_params) > 1:
        settings["recipes"] = recipe_params
    if fold_set is not None:
        settings["folds"] = fold_set.k
    if budget is not None:
        settings["budget"] = budget
    kept = kept_runs(records, threshold, metric)
    if fold_set is not None and hours is not None:
        _warn_if_no_round_fits(fold_set.k - len(kept) % fold_set.k, shortest, hours,
                               _seconds_per_epoch(records, run_images, images_per_second))
    runner = make_executor(executor, RunData.of(workspace, None if fold_set is None else fold_set.assignment), ray_address=ray_address, cpus_per_run=cpus_per_run)
    store.write_ensemble_settings(EnsembleSettings.from_dict({**settings, "stop_reason": "running"}))
    logger.info(f"ensemble: {len(kept)}/{n} kept on disk after {len(records)} attempt(s); threshold {metric} "
        f"{get_metric(metric).comparison} {threshold:.4f}, "
        f"{epochs} epoch(s) per run, at most {max_runs} attempts; {runner.describe()}")
    durations: list[float] = []
    timed: list[tuple[float, int]] = []  # (wall seconds, epochs trained) of this call's runs that trained
    deadline = None if hours is None else time.monotonic() + hours * 3600
    # Run number -> (job, its temporary folder, when it started). The folder shows the run is under way and
    # receives its files when it finishes; any exit before then removes it.
    training: dict[int, tuple[RunJob, Path, float]] = {}
    next_number = store.next_run_number()
    limit = None  # why no further run is started, once that happens
    try:
        while True:
            check_stop()
            while limit is None and len(kept) + len(training) < n and len(training) < runner.capacity:
                # Runs of this call may differ in length (a re-sized budget): time them by the epoch.
                estimate = (epochs * _per_epoch(timed) if timed else 0.0) \
                    or _previous_run_seconds(records, epochs) \
                    or (epochs * run_images / images_per_second if images_per_second else 0.0)
                run_epochs = epochs
                if len(records) + len(training) >= max_runs:
                    limit = f"MAX_RUNS={max_runs} attempts"
                # A budget-sized run keeps the margin a shortened last run keeps: a re-sized run raised to the
                # preset's epochs once finished 8 s past its estimate and the ensemble's share of the hours.
                elif deadline is not None and estimate and \
                        time.monotonic() + (estimate / LAST_RUN_SHARE if fill else estimate) > deadline:
                    limit = f"HOURS={hours:g} time budget"
                    # A budget-sized ensemble spends the time a whole run no longer fits on one shorter run, if one
                    # of at least the preset's length fits (the search's speed may have promised too much), or while
                    # it has no member, of any length down to one epoch: a machine slower than the presets assume (a
                    # CPU without bfloat16 trained the full preset's wide net 4-6 times slower than the development
                    # one) may hold no run of the preset's length in its hours, and a short member beats a job that
                    # ends with none. Not k-fold runs: they vote only in whole rounds.
                    if fill and not training:
                        per_epoch = _per_epoch(timed) if timed else \
                            _seconds_per_epoch(records, run_images, images_per_second)
                        floor = 1 if not kept and fold_set is None else shortest
                        run_epochs = epochs_that_fit(deadline - time.monotonic(), per_epoch, floor, epochs) or epochs
                    if run_epochs < shortest:  # shortened below the preset's length: a first member
                        logger.warning(f"ensemble: HOURS={hours:g}: no run of {shortest} epochs fits the time left "
                            f"on this machine ({per_epoch:.1f} s an epoch: about {format_seconds(shortest * per_epoch)} "
                            f"a run); one of {run_epochs} epochs will, so that there is a member to submit, though "
                            "it trains less than the presets do. More HOURS buy runs of the full length "
                            "(kaggle_pipeline.budget)")
                    elif run_epochs < epochs:
                        logger.info(f"ensemble: HOURS={hours:g}: another run of {epochs} epochs (about "
                            f"{format_seconds(estimate)}) would not finish in time; a last one of {run_epochs} will")
                    else:
                        logger.info(f"ensemble: HOURS={hours:g}: another run (about {format_seconds(estimate)}) would not finish "
                            "in time; no more runs are started")
                if limit is None or run_epochs < epochs:
                    fold = None if fold_set is None else \
                        next_fold(kept, [job.fold for job, _, _ in training.values()], fold_set.k)
                    params = next_recipe(records, [job.params for job, _, _ in training.values()], recipe_params, kept)
                    floor = None if abort_margin is None else \
                        early_abort_floor(kept, params, run_epochs, abort_margin, fold)
                    job = RunJob(next_number, seed + next_number, params, run_epochs, threshold, precision, floor, tta,
                                 str(store.tensorboard_folder(f"run-{next_number:04d}")) if tensorboard else None,
                                 metric=metric, fold=fold)
                    training[job.number] = (job, store.begin_run(job.number), time.monotonic())
                    runner.submit(job)
                    next_number += 1
            if not training:
                break
            job, outcome = runner.next_finished()
            _, temporary, started = training.pop(job.number)
            durations.append(time.monotonic() - started)
            record = _record_run(workspace, job, outcome, executor, temporary)
            records.append(record)
            if record.get("stopped_epoch"):
                timed.append((durations[-1], record["stopped_epoch"]))
            kept.extend(kept_runs([record], threshold, metric))
            # Rejected attempts cost time too: estimate the time left per kept run.
            keep_rate = len(kept) / len(records) if kept else 1.0
            eta = sum(durations) / len(durations) * (n - len(kept)) / keep_rate / runner.capacity
            if deadline is not None:
                eta = min(eta, max(0.0, deadline - time.monotonic()))
            held_out = "" if job.fold is None else f", fold {job.fold + 1}/{fold_set.k} held out"
            logger.info(f"ensemble: run {record['run']} (seed {record['seed']}{held_out}) {_outcome(record, job.epochs, metric)}  kept {len(kept)}/{n}  "
                f"attempts {len(records)}  ({format_seconds(durations[-1])}, ETA {format_seconds(eta)})")
            if refill and timed and limit is None and len(kept) + len(training) < n:
                left, per_epoch = deadline - time.monotonic(), _per_epoch(timed)
                resized, note = refill_epochs(epochs, left, per_epoch, fill_runs - len(timed) - len(training), shortest)
                # A length no run of which fits any more is neither said nor recorded: the loop above says the
                # budget is spent (one full-preset job recorded 30 epochs that it never trained).
                if note and resized * per_epoch <= LAST_RUN_SHARE * left:
                    epochs = resized
                    logger.info(f"ensemble: {note}")
                    settings["epochs"] = epochs
    except BaseException as error:
        # Wherever a stop or an error lands (mid-training, mid-write), leave no half-written run behind and
        # no task running on a cluster, and say in ensemble.json why this call stopped.
        runner.cancel()
        store.remove_unfinished_runs()
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"error: {first_line(error)}"
        try:
            store.write_ensemble_settings(EnsembleSettings.from_dict({**settings, "stop_reason": reason, "kept": len(kept)}))
        except PipelineError:
            pass  # the error being raised says more than a failed note about it
        raise
    finally:
        runner.close()
    stop_reason = f"{n} runs kept" if len(kept) >= n else limit
    if len(kept) < n and limit.startswith("MAX_RUNS"):
        logger.info(f"ensemble: stopped at MAX_RUNS={max_runs} attempts with only {len(kept)}/{n} runs kept "
            f"(threshold {threshold:.4f}); raise MAX_RUNS or loosen THRESHOLD and rerun to continue")
    elif len(kept) < n:
        logger.info(f"ensemble: stopped by HOURS={hours:g} with {len(kept)}/{n} runs kept. Rerun to continue with a new budget")
    store.write_ensemble_settings(EnsembleSettings.from_dict({**settings, "stop_reason": stop_reason, "kept": len(kept)}))
    return kept


def _warn_if_no_round_fits(runs: int, shortest: int, hours: float, seconds_per_epoch: float | None) -> None:
    """A warning, before any run, when ``hours`` cannot hold the ``runs`` that complete the next round of k-fold
    runs at ``shortest`` epochs and the measured (or the search's) speed: the vote counts only complete rounds,
    so such a budget would train runs that no submission uses yet."""
    if not seconds_per_epoch:
        return
    round_seconds = runs * shortest * seconds_per_epoch
    if round_seconds > hours * 3600:
        logger.warning(f"ensemble: HOURS={hours:g} ({format_seconds(hours * 3600)}) cannot hold the {runs} run(s) "
                       f"of at least {shortest} epochs that complete a round of folds (about "
                       f"{format_seconds(round_seconds)} at {seconds_per_epoch:.1f} s an epoch), and the vote counts "
                       "only complete rounds: give more HOURS or fewer FOLDS, or rerun later to finish the round")


def _epochs_on_disk(records: list[dict], shortest: int) -> int | None:
    """The epochs most finished runs on disk trained, the longer on a tie, counting only runs of at least
    ``shortest`` epochs (None if none): what a resumed, budget-sized ensemble keeps. A shorter run was shortened to
    the time its job had left (a last run, or a first member on a machine too slow for the preset's length), so
    its length is no plan: a job given more hours after one such member trains runs of the full length."""
    done = [record["epochs"] for record in records
            if record["status"] == "done" and record.get("epochs") and record["epochs"] >= shortest]
    return max(set(done), key=lambda count: (done.count(count), count)) if done else None


def _per_epoch(timed: list[tuple[float, int]]) -> float:
    """Wall seconds an epoch took over ``timed`` (wall seconds, epochs trained) runs, their prediction included."""
    return sum(seconds for seconds, _ in timed) / sum(epochs for _, epochs in timed)


def _seconds_per_epoch(records: list[dict], run_images: int, images_per_second: float | None) -> float | None:
    """Seconds an epoch took in the finished runs on disk, else at the search's measured speed (None: unknown)."""
    done = [(record["seconds"], record["epochs"]) for record in records
            if record["status"] == "done" and record.get("seconds") and record.get("epochs")]
    if done:
        return sum(seconds for seconds, _ in done) / sum(epochs for _, epochs in done)
    return run_images / images_per_second if images_per_second else None


def _previous_run_seconds(records: list[dict], epochs: int) -> float:
    """Mean training time of the finished runs on disk with this many epochs (0 if none): the first run of a
    resumed, time-boxed ensemble must fit its budget too."""
    seconds = [record["seconds"] for record in records
               if record["status"] == "done" and record.get("epochs") == epochs and "seconds" in record]
    return sum(seconds) / len(seconds) if seconds else 0.0


def history_table(history: dict[str, list[float]]) -> str:
    """The per-epoch history as CSV: one row per epoch, one column per metric (loss, val_accuracy, learning_rate,
    epoch_seconds, ...), for a spreadsheet or pandas."""
    names = [name for name, values in history.items() if values]
    epochs = max((len(history[name]) for name in names), default=0)
    lines = [",".join(["epoch", *names])]
    for epoch in range(epochs):
        cells = [repr(history[name][epoch]) if epoch < len(history[name]) else "" for name in names]
        lines.append(",".join([str(epoch + 1), *cells]))
    return "\n".join(lines) + "\n"


def _outcome(record: dict, epochs: int, metric: str = "accuracy") -> str:
    if record["status"] == "failed":
        return f"FAILED: {record['error']}"
    score = f"val_acc {record['validation_accuracy']:.4f}"
    if metric != "accuracy":
        score = f"val_{metric} {Run(record).score(metric):.4f}, {score}"
    if record["status"] == "aborted":
        return f"aborted at epoch {record['stopped_epoch']}/{epochs} ({score})"
    return f"{score} {'kept' if record['kept'] else 'rejected'}"


def _record_run(workspace: Workspace, job: RunJob, outcome: dict, executor: str, temporary: Path) -> dict:
    """Write one finished run's files into its temporary folder, rename it into place; return its record."""
    store = workspace.store
    record = {
        "run": job.number, "seed": job.seed, "params": job.params, "epochs": job.epochs, "threshold": job.threshold,
        "tta": "flip" if job.tta and job.params.get("flip") else "none",
        "fingerprint": workspace.competition.fingerprint(), "versions": outcome.get("versions") or library_versions(),
        "executor": executor, "host": outcome.get("host"), "started": outcome.get("started"),
    }
    if job.fold is not None:
        record["fold"] = job.fold
    if outcome["status"] == "failed":
        record.update(status="failed", kept=False, validation_accuracy=None, error=outcome["error"],
                      traceback=outcome.get("traceback"))
    else:
        record.update({key: outcome[key] for key in ("history", "seconds", "precision", "images_per_second",
                                                     "validation_accuracy", "stopped_epoch")})
        record.update({key: outcome[key] for key in ("validation_score", "metric") if key in outcome})
        store.write_run_history(temporary, history_table(outcome["history"]))
        if outcome["status"] == "aborted":
            record.update(status="aborted", kept=False, abort_floor=job.abort_floor)
        else:
            record.update(status="done", kept=outcome["kept"])
            store.write_run_predictions(temporary, outcome["validation_proba"], outcome["test_proba"])
            if record["kept"]:
                store.write_run_model(temporary, outcome["model_bytes"])
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run = store.seal_run(temporary, Run.from_dict(record, f"run {job.number}"))
    store.commit_run(temporary, job.number)
    return run.to_dict()
