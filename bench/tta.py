"""What test-time augmentation is worth: the kept runs of a store re-predicted with and without it.

    .venv/bin/python bench/tta.py [--data data/fashion-mnist] [--name fashion-mnist-full]

Loads every kept run's saved model and predicts the validation split and the test set three ways:
the images as they are, averaged with their mirror images (what the pipeline does for nets trained with
flips), and averaged over the mirror images plus one-pixel shifts in four directions. Prints, for each way,
the runs' mean accuracy and the accuracy of their majority vote, on validation and on the answer key.
Inference only: 4 min 40 s for the nine wide-net runs of the full preset here (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from kaggle_pipeline.data import answer_key_labels
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.store import kept_runs
from kaggle_pipeline.train import keras, predict_proba
from kaggle_pipeline.vote import accuracy, majority_vote
from kaggle_pipeline.workspace import open_workspace


def shifted(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """The images moved by whole pixels, the uncovered border filled with zeros (as RandomTranslation does)."""
    moved = np.zeros_like(images)
    height, width = images.shape[1:3]
    moved[:, max(rows, 0):height + min(rows, 0), max(columns, 0):width + min(columns, 0)] = \
        images[:, max(-rows, 0):height + min(-rows, 0), max(-columns, 0):width + min(-columns, 0)]
    return moved


VIEWS = {
    "as is": [lambda images: images],
    "+ mirror": [lambda images: images, lambda images: images[:, :, ::-1]],
    "+ mirror + 1px shifts": [lambda images: images, lambda images: images[:, :, ::-1]]
    + [lambda images, step=step: shifted(images, *step) for step in ((1, 0), (-1, 0), (0, 1), (0, -1))],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fashion-mnist"))
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="fashion-mnist-full", help="store under --models-dir (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the numbers here as JSON")
    args = parser.parse_args()
    workspace = open_workspace(args.data, args.models_dir, name=args.name)
    truth = answer_key_labels(workspace.competition)
    settings = workspace.store.ensemble_settings()
    if settings is None:
        raise SystemExit(f"{workspace.store.ensemble_path}: not found; run 'make ensemble' first")
    # need_model: this bench loads each kept run's network, which only runs kept when trained saved; a lowered
    # threshold's extra runs are left out (one line each) rather than failing to load.
    records = kept_runs(workspace.store.run_records(repair=False), settings.threshold, workspace.metric, need_model=True)
    if not records:
        raise SystemExit(str(PipelineError(f"{workspace.store.runs_dir}: no kept run with a saved model")))
    sets = {"validation": (workspace.x_validation, workspace.y_validation), "answer key": (workspace.competition.x_test, truth)}
    probabilities = {view: {name: [] for name in sets} for view in VIEWS}
    for record in records:
        model = keras.models.load_model(workspace.store.model_path(record), safe_mode=True)
        for view, transforms in VIEWS.items():
            for name, (images, _) in sets.items():
                views = [predict_proba(model, np.ascontiguousarray(transform(images))) for transform in transforms]
                probabilities[view][name].append(np.mean(views, axis=0))
        print(f"run {record['run']}: predicted", file=sys.stderr, flush=True)
    results = {}
    print(f"\n{len(records)} kept runs of {args.name} (flips in training: {records[0]['params'].get('flip')})")
    print(f"{'test-time views':24} {'runs val':>9} {'vote val':>9} {'runs key':>9} {'vote key':>9}")
    for view in VIEWS:
        row = {}
        for name, (_, labels) in sets.items():
            stacked = np.stack(probabilities[view][name])
            row[name] = {"runs_mean": float(np.mean([accuracy(run.argmax(axis=1), labels) for run in stacked])),
                         "vote": accuracy(majority_vote(stacked), labels)}
        results[view] = row
        print(f"{view:24} {row['validation']['runs_mean']:9.4f} {row['validation']['vote']:9.4f} "
              f"{row['answer key']['runs_mean']:9.4f} {row['answer key']['vote']:9.4f}")
    if args.out:
        args.out.write_text(json.dumps({"store": args.name, "runs": len(records), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
