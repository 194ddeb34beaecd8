"""What is on disk for a competition, in a few lines: search, runs, stacker, newest submission.

Reads the store's JSON files only: no data parsing, no TensorFlow, no lock, so it answers in a blink while
another stage is writing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.search import best_score
from kaggle_pipeline.store import Run, RunStore, SubmissionStore, kept_runs


def status_lines(store: RunStore, submissions_dir: Path) -> list[str]:
    store.check_layout()
    manifest = store.read_manifest()
    if manifest is None:
        raise PipelineError(f"{store.root}: no run store here yet; run 'make search' first")
    shape = "x".join(str(side) for side in manifest.get("image_shape", []))
    lines = [f"{store.root}  ({len(manifest.get('classes', []))} classes, {shape} images, "
             f"fingerprint {manifest.get('fingerprint')}, metric {store.metric})"]
    if manifest.get("left_out"):
        lines.append(f"data      {len(manifest['left_out']):,} unreadable training image(s) left out "
                     f"(--skip-unreadable; listed in {store.manifest_path.name}), the first: {manifest['left_out'][0]}")
    lines.append(_search_line(store))
    lines.extend(_ensemble_lines(store))
    stack = store.stack_record()
    if stack is not None:
        accuracy = stack.get("validation_accuracy")
        lines.append(f"stack     VGG19 {stack['weights']} features at {stack.get('size', '?')}x{stack.get('size', '?')} + "
                     f"{stack.get('trees', '?')} trees: val_acc " + ("?" if accuracy is None else f"{accuracy:.4f}"))
    lines.append(_submission_line(SubmissionStore(submissions_dir, store.root.name)))
    return lines


def _search_line(store: RunStore) -> str:
    saved = store.read_trials()
    if saved is None:
        return "search    no trials yet"
    settings, trials = saved.settings, saved.records
    failed = sum(1 for trial in trials if not trial.ok)
    best = store.best_params()
    metric = store.metric
    name = "val_acc" if metric == "accuracy" else f"val_{metric}"
    best_text = f"best {name} {best_score(best, metric):.4f} (trial {best.get('trial', '?')})" if best else "no best yet"
    subset = settings.get("subset") if isinstance(settings.get("subset"), int) else None
    return (f"search    {len(trials)} trial(s){f', {failed} failed' if failed else ''}, {best_text}; "
            f"space {settings.get('space')}, {settings.get('epochs')} epoch(s) on "
            f"{f'up to {subset:,}' if subset else 'all'} training images")


def _ensemble_lines(store: RunStore) -> list[str]:
    records = store.run_records(repair=False)  # status only reads: a damaged run is skipped, not moved
    stored = store.ensemble_settings()
    if stored is None and not records:
        return ["ensemble  no runs yet"]
    settings = {} if stored is None else stored.to_dict()
    threshold = None if stored is None else stored.threshold
    metric = get_metric(store.metric)
    counts = {status: 0 for status in ("kept", "rejected", "aborted", "failed")}
    kept_accuracies = []
    kept = [] if threshold is None else kept_runs(records, threshold, metric.name)
    for record in records:
        if any(record is run for run in kept):
            counts["kept"] += 1
            kept_accuracies.append(Run(record).score(metric.name))
        elif record["status"] == "done":
            counts["rejected"] += 1
        else:
            counts[record["status"]] = counts.get(record["status"], 0) + 1
    rule = "" if metric.name == "accuracy" else f"{metric.name} {metric.comparison} "
    threshold_text = f"threshold {rule}{threshold:.4f}" if threshold is not None else "no threshold yet"
    lines = [f"ensemble  {counts['kept']}/{settings.get('n', '?')} kept, {threshold_text}; {len(records)} attempt(s): "
             + ", ".join(f"{count} {status}" for status, count in counts.items())
             + _stop_text(settings.get("stop_reason"))]
    if kept_accuracies:
        accuracies = np.array(kept_accuracies)
        name = "val_acc" if metric.name == "accuracy" else f"val_{metric.name}"
        lines.append(f"          kept runs' {name} {accuracies.mean():.4f} ± {accuracies.std():.4f} "
                     f"(min {accuracies.min():.4f}, max {accuracies.max():.4f})")
    if settings.get("folds"):  # k-fold members: kept runs per held-out fold, complete rounds (kaggle_pipeline.submit)
        per_fold = [sum(1 for record in kept if record.get("fold") == fold) for fold in range(settings["folds"])]
        lines.append(f"          {settings['folds']} folds, kept runs per held-out fold "
                     f"{' '.join(map(str, per_fold))}: {min(per_fold)} complete round(s)")
    # A run under way has a temporary folder (a killed ensemble's are removed when the next one starts).
    training = store.unfinished_run_numbers()
    if training:
        lines.append("          training now: " + ", ".join(f"run {number}" for number in training))
    return lines


def _stop_text(reason: str | None) -> str:
    if reason is None:
        return ""
    return "; ensemble running (or killed)" if reason == "running" else f"; the last ensemble call stopped at {reason}"


def _submission_line(submissions: SubmissionStore) -> str:
    summary = submissions.latest()
    if summary is None:
        return "submit    no submission yet"
    local = summary.get("local_score")
    metric = summary.get("metric", "accuracy")
    score = summary["ensemble_validation_accuracy"] if metric == "accuracy" else summary.get("ensemble_validation_score")
    score_text = "n/a" if score is None else f"{score:.4f}"
    return (f"submit    {summary['submission']}: {summary.get('vote', 'majority')} vote of {summary['runs_voted']} run(s)"
            f"{' + stacker' if summary.get('stacker') else ''}, validation "
            f"{'' if metric == 'accuracy' else metric + ' '}{score_text}"
            + (f", local score {local:.4f}" if local is not None else ""))
