"""A visual report of one store: PNG figures and one self-contained HTML page that embeds them.

Reads the store (trials, runs, predictions, the newest submission's vote) and the competition's images;
writes ``reports/<competition>/``: ``index.html`` plus one PNG per figure. Figures:

    search.png          validation accuracy by trial, with the best so far
    hyperparameters.png each searched hyperparameter against validation accuracy
    learning_curves.png training and validation loss and accuracy per epoch, kept and rejected runs
    run_accuracy.png    the runs' validation accuracy against the threshold
    ensemble_size.png   majority-voted accuracy against the number of runs voted (validation, answer key)
    confusion.png       the ensemble's confusion matrix on the validation split
    misclassified.png   validation images the ensemble gets wrong, with its votes
    timing.png          seconds and images/second per epoch, per run
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

import numpy as np

from kaggle_pipeline.data import answer_key_labels
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.estimator import VotingEnsemble
from kaggle_pipeline.metrics import get_metric
from kaggle_pipeline.store import Run, SubmissionStore, atomic_write_bytes, atomic_write_text, kept_runs
from kaggle_pipeline.submit import stored_predictions
from kaggle_pipeline.vote import voted_accuracy_curve
from kaggle_pipeline.workspace import Workspace, check_outside_data

logger = logging.getLogger(__name__)

MISCLASSIFIED_SHOWN = 16
# Every figure a report may draw: a rerun deletes those it no longer draws, and nothing else in the folder.
FIGURES = ("search.png", "hyperparameters.png", "learning_curves.png", "run_accuracy.png", "ensemble_size.png",
           "confusion.png", "misclassified.png", "timing.png")


def make_report(workspace: Workspace, reports_dir: Path, submissions_dir: Path) -> Path:
    """Write the figures and ``index.html``; returns the page's path."""
    import matplotlib

    matplotlib.use("Agg")
    store, competition = workspace.store, workspace.competition
    trials = _trials(store)
    settings = store.ensemble_settings()
    if not trials and settings is None:
        raise PipelineError(f"{store.root}: no search trials and no runs yet; run 'make search' or 'make all' first")
    # Only read (no lock): a damaged run is skipped, not moved aside, while an ensemble may be writing.
    records = store.run_records(repair=False)
    threshold = None if settings is None else settings.threshold
    metric = workspace.metric
    kept = kept_runs(records, threshold, metric) if threshold is not None else []
    folder = Path(reports_dir) / competition.name
    check_outside_data("reports_dir", reports_dir, folder, competition.source)
    latest = SubmissionStore(submissions_dir, competition.name).latest()
    vote = latest["vote"] if latest else "majority"
    # The stacker votes in the report as it did in the newest submission.
    stack_weight = (latest.get("stacker") or {}).get("weight", 0.0) if latest else 1.0

    sections = []  # (title, (figure file, PNG bytes) or None, html text)
    if trials:
        sections.append(("Search", _save(folder, "search.png", _search_figure(trials)), ""))
        sections.append(("Hyperparameters", _save(folder, "hyperparameters.png", _hyperparameter_figure(trials)), ""))
    if threshold is None:
        sections.append(("Runs", None, "<p>No ensemble yet: run 'make ensemble'.</p>"))
    else:
        sections.append(("Learning curves", _save(folder, "learning_curves.png", _learning_curves(records, threshold, metric)), ""))
        sections.append((f"Run {metric}", _save(folder, "run_accuracy.png", _run_accuracy(records, threshold, metric)),
                         f"<p>{len(kept)} of {len(records)} attempts kept at threshold {metric} "
                         f"{get_metric(metric).comparison} {threshold:.4f}.</p>" + _run_table(records, threshold, metric)))
    if kept:
        members = stored_predictions(workspace, threshold, stack_weight=stack_weight)
        truth = answer_key_labels(competition)
        sections.append(("Ensemble size", _save(folder, "ensemble_size.png", _ensemble_size(members, workspace, truth)), ""))
        ensemble = VotingEnsemble(strategy=vote, weights=members.weights,
                                  metric=latest.get("metric", metric) if latest else metric).fit(
            members.validation, members.y)
        predicted = ensemble.predict(members.validation)
        sections.append(("Confusion matrix (validation)",
                         _save(folder, "confusion.png", _confusion(members.y, predicted, competition.classes)),
                         _per_class_table(members.y, predicted, competition.classes, vote)))
        sections.append(("Misclassified validation images",
                         _save(folder, "misclassified.png", _misclassified(workspace, members, predicted)), ""))
    if records:
        sections.append(("Epoch timing", _save(folder, "timing.png", _timing(records)), ""))
    figures = {figure[0] for _, figure, _ in sections if figure}
    for stale in set(FIGURES) - figures:  # drawn by an earlier report
        (folder / stale).unlink(missing_ok=True)
    page = _page(competition.name, sections, latest)
    path = folder / "index.html"
    atomic_write_text(path, page)
    logger.info(f"report: wrote {path} and {len(figures)} figures")
    return path


# Reading the store ------------------------------------------------------------------------------
def _trials(store) -> list[dict]:
    saved = store.read_trials()
    if saved is None:
        return []
    results = [trial.result for trial in saved.records]
    return [result for result in results if result.get("status") == "ok"]


# Figures -------------------------------------------------------------------------------------
def _figure(columns=1, rows=1, width=6.0, height=3.6):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    return figure, axes


def _save(folder: Path, name: str, figure) -> tuple[str, bytes]:
    """Write the figure as ``folder/name``; returns the name and the PNG's bytes (for the page)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    for axis in figure.axes:  # trials, epochs and run counts are whole numbers
        if axis.get_xlabel() in ("trial", "epoch", "runs voted (majority)"):
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    atomic_write_bytes(folder / name, buffer.getvalue())
    return name, buffer.getvalue()


def _search_figure(trials: list[dict]):
    figure, axes = _figure()
    accuracy = [trial["validation_accuracy"] for trial in trials]
    numbers = np.arange(1, len(accuracy) + 1)
    axes[0, 0].plot(numbers, accuracy, "o", label="trial")
    axes[0, 0].step(numbers, np.maximum.accumulate(accuracy), where="post", label="best so far")
    axes[0, 0].set(xlabel="trial", ylabel="validation accuracy", title="Search")
    axes[0, 0].legend()
    return figure


def _hyperparameter_figure(trials: list[dict]):
    names = sorted({name for trial in trials for name, value in trial["params"].items()
                    if len({str(other["params"].get(name)) for other in trials}) > 1})
    names = names or ["learning_rate"]
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure, axes = _figure(columns, rows, width=3.2, height=2.6)
    accuracy = [trial["validation_accuracy"] for trial in trials]
    for axis, name in zip(axes.flat, names, strict=False):
        values = [trial["params"].get(name) for trial in trials]
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
            axis.plot(values, accuracy, "o")
        else:
            labels = sorted({str(value) for value in values})
            axis.plot([labels.index(str(value)) for value in values], accuracy, "o")
            axis.set_xticks(range(len(labels)), labels)
        axis.set(title=name, ylabel="val acc")
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    return figure


def _learning_curves(records: list[dict], threshold: float, metric: str = "accuracy"):
    figure, axes = _figure(2, 1)
    for record in records:
        history = record.get("history")
        if not history:
            continue
        kept = Run(record).is_kept(threshold, metric)
        style = {"color": "tab:blue", "alpha": 0.6} if kept else {"color": "tab:red", "alpha": 0.5, "linestyle": "--"}
        epochs = np.arange(1, len(history["loss"]) + 1)
        axes[0, 0].plot(epochs, history["loss"], **style)
        axes[0, 0].plot(epochs, history["val_loss"], **{**style, "linewidth": 2})
        axes[0, 1].plot(epochs, history["accuracy"], **style)
        axes[0, 1].plot(epochs, history["val_accuracy"], **{**style, "linewidth": 2})
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="Loss (thick: validation)")
    axes[0, 1].set(xlabel="epoch", ylabel="accuracy", title="Accuracy (blue: kept, red dashed: not kept)")
    axes[0, 1].axhline(threshold, color="black", linewidth=0.8)
    return figure


def _run_accuracy(records: list[dict], threshold: float, metric: str = "accuracy"):
    figure, axes = _figure()
    scores = [Run(record).score(metric) for record in records]
    scores = [score for score in scores if score is not None]
    axes[0, 0].hist(scores, bins=max(5, min(30, len(scores))), color="tab:blue")
    axes[0, 0].axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4f}")
    axes[0, 0].set(xlabel=f"validation {metric}", ylabel="runs", title="Runs against the threshold")
    axes[0, 0].legend()
    return figure


def _ensemble_size(members, workspace: Workspace, truth):
    figure, axes = _figure()
    runs = members.runs  # the stacker, if any, is last and left out: this is the runs' (or rounds') curve
    counts = np.arange(1, runs + 1)
    # members.validation is (rows, members, classes); the curve takes runs first.
    axes[0, 0].plot(counts, voted_accuracy_curve(members.validation[:, :runs].transpose(1, 0, 2), members.y),
                    "o-", label="validation")
    if truth is not None:
        axes[0, 0].plot(counts, voted_accuracy_curve(members.test[:, :runs].transpose(1, 0, 2), truth), "s-", label="answer key")
    axes[0, 0].set(xlabel="runs voted (majority)", ylabel="accuracy", title="Ensemble size")
    axes[0, 0].legend()
    return figure


def _confusion(truth: np.ndarray, predicted: np.ndarray, classes: list[str]):
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(truth, predicted, labels=range(len(classes)))
    side = max(4.0, 0.45 * len(classes) + 2)
    figure, axes = _figure(width=side, height=side)
    axes[0, 0].imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes[0, 0].text(column, row, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > matrix.max() / 2 else "black")
    axes[0, 0].set_xticks(range(len(classes)), classes, rotation=90)
    axes[0, 0].set_yticks(range(len(classes)), classes)
    axes[0, 0].set(xlabel="predicted", ylabel="true")
    return figure


def _run_table(records: list[dict], threshold: float, metric: str = "accuracy") -> str:
    rows = []
    other = metric != "accuracy"
    for record in records:
        accuracy = record.get("validation_accuracy")
        score = Run(record).score(metric)
        outcome = record["status"] if record["status"] != "done" else \
            ("kept" if Run(record).is_kept(threshold, metric) else "rejected")
        score_cell = f"<td>{'' if score is None else f'{score:.4f}'}</td>" if other else ""
        rows.append(f"<tr><td>{record['run']}</td><td>{record['seed']}</td><td>{html.escape(outcome)}</td>{score_cell}"
                    f"<td>{'' if accuracy is None else f'{accuracy:.4f}'}</td><td>{record.get('stopped_epoch', '')}</td>"
                    f"<td>{record.get('seconds', '')}</td><td>{record.get('images_per_second', '')}</td></tr>")
    return (f"<table><tr><th>run</th><th>seed</th><th>outcome</th>{f'<th>validation {metric}</th>' if other else ''}"
            "<th>validation accuracy</th><th>epochs</th>"
            f"<th>seconds</th><th>images/s</th></tr>{''.join(rows)}</table>")


def _per_class_table(truth, predicted, classes, vote: str) -> str:
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=range(len(classes)), zero_division=0)
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{p:.3f}</td><td>{r:.3f}</td><td>{f:.3f}</td><td>{s}</td></tr>"
                   for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True))
    return (f"<p>The {html.escape(vote)} vote of the kept runs on the validation split.</p><table><tr><th>class</th>"
            f"<th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>{rows}</table>")


def _misclassified(workspace: Workspace, members, predicted: np.ndarray):
    wrong = np.flatnonzero(predicted != members.y)[:MISCLASSIFIED_SHOWN]
    columns = 4
    rows = max(1, -(-len(wrong) // columns))
    figure, axes = _figure(columns, rows, width=2.2, height=2.4)
    classes = workspace.competition.classes
    images = workspace.competition.x_train[members.rows]
    for axis, row in zip(axes.flat, wrong, strict=False):
        image = images[row]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        votes = np.bincount(members.validation[row].argmax(axis=1), minlength=len(classes))
        top = ", ".join(f"{classes[index]}:{votes[index]}" for index in np.argsort(-votes)[:2] if votes[index])
        axis.set_title(f"true {classes[members.y[row]]}, got {classes[predicted[row]]}\nvotes {top}", fontsize=7)
    for axis in axes.flat:
        axis.axis("off")
    return figure


def _timing(records: list[dict]):
    figure, axes = _figure(2, 1)
    for record in records:
        history = record.get("history", {})
        if history.get("epoch_seconds"):
            epochs = np.arange(1, len(history["epoch_seconds"]) + 1)
            axes[0, 0].plot(epochs, history["epoch_seconds"], alpha=0.6)
            axes[0, 1].plot(epochs, history["epoch_images_per_second"], alpha=0.6)
    axes[0, 0].set(xlabel="epoch", ylabel="seconds", title="Wall time per epoch (one line per run)")
    axes[0, 1].set(xlabel="epoch", ylabel="images / second", title="Training throughput")
    return figure


# The page ------------------------------------------------------------------------------------
def _page(name: str, sections, latest) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(name)} report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
             "text-align:right}</style></head><body>", f"<h1>{html.escape(name)}</h1>"]
    if latest:
        local = latest.get("local_score")
        metric = latest.get("metric", "accuracy")
        score = latest["ensemble_validation_accuracy"] if metric == "accuracy" else latest.get("ensemble_validation_score")
        parts.append(f"<p>Newest submission: {html.escape(latest['submission'])}, {html.escape(latest['vote'])} vote "
                     f"of {latest['runs_voted']} runs, validation {html.escape(metric)} "
                     f"{'n/a' if score is None else f'{score:.4f}'}"
                     + (f", local score {local:.4f}" if local is not None else "") + ".</p>")
    for title, figure, text in sections:
        parts.append(f"<h2>{html.escape(title)}</h2>{text}")
        if figure:
            encoded = base64.b64encode(figure[1]).decode("ascii")
            parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{encoded}'>")
    parts.append("</body></html>")
    return "\n".join(parts)

