"""Which recipe reaches the threshold soonest: the reference's ReduceLROnPlateau against cosine with warm-up,
label smoothing and augmentation, on the same Fashion-MNIST images, same seed, same epoch budget.

    .venv/bin/python bench/schedules.py [--images 20000] [--epochs 8] [--threshold 0.90]

Trains the reference architecture once per recipe (in the precision the pipeline picks) and prints, per
recipe: the first epoch and the wall time at which validation accuracy reached the threshold, and the
final validation accuracy. Needs the default competition (make data).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.spaces import REFERENCE_PARAMS, WIDE_PARAMS
from kaggle_pipeline.train import train_run
from kaggle_pipeline.workspace import open_workspace

# The recipes compared; the augmentation is the write-ups' kind (shifts, small rotations and zooms).
AUGMENTATION = {"translate": 0.08, "rotate": 0.02, "zoom": 0.08}
RECIPES = {
    "reference (plateau)": REFERENCE_PARAMS,
    "cosine": {**REFERENCE_PARAMS, "schedule": "cosine"},
    "cosine + smoothing": {**REFERENCE_PARAMS, "schedule": "cosine", "label_smoothing": 0.1},
    "cosine + smoothing + augmentation": {**REFERENCE_PARAMS, "schedule": "cosine", "label_smoothing": 0.1, **AUGMENTATION},
    "plateau + smoothing + augmentation": {**REFERENCE_PARAMS, "label_smoothing": 0.1, **AUGMENTATION},
    # Candidates for long runs (the full preset's 95% target): augmentation with flips, with and without a
    # third conv block.
    "long: cosine + smoothing + augmentation + flip": {
        **REFERENCE_PARAMS, "schedule": "cosine", "label_smoothing": 0.1, **AUGMENTATION, "flip": True},
    # The full preset's net (model.WIDE_PARAMS): --images 0 --epochs 15 --recipes "full preset (wide)".
    "full preset (wide)": WIDE_PARAMS,
    "long: third block + augmentation + flip": {
        **REFERENCE_PARAMS, "schedule": "cosine", "label_smoothing": 0.1, **AUGMENTATION, "flip": True,
        "conv3_filters": 128},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fashion-mnist"))
    parser.add_argument("--images", type=int, default=20000, help="training images (0 = the whole training part)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated names from: " + ", ".join(RECIPES))
    args = parser.parse_args()
    workspace = open_workspace(args.data, Path("models"))
    count = args.images or len(workspace.y_train)
    x_train, y_train = workspace.x_train[:count], workspace.y_train[:count]
    rows = []
    for name in args.recipes.split(","):
        started = time.perf_counter()
        trained = train_run(RECIPES[name], x_train, y_train, workspace.x_validation, workspace.y_validation,
                            workspace.competition.num_classes, seed=args.seed, epochs=args.epochs, label=name)
        curve = trained.history["val_accuracy"]
        elapsed = np.cumsum(trained.history["epoch_seconds"])
        reached = next((epoch for epoch, accuracy in enumerate(curve) if accuracy >= args.threshold), None)
        rows.append((name, reached, elapsed, curve, trained.validation_accuracy, time.perf_counter() - started))
    print(f"\n{len(x_train):,} training images, {args.epochs} epochs, threshold {args.threshold}, seed {args.seed}")
    print(f"{'recipe':36} {'epoch reached':>13} {'seconds to reach':>16} {'final val':>9} {'best epoch':>10} {'run s':>6}")
    for name, reached, elapsed, curve, final, seconds in rows:
        epoch = "-" if reached is None else str(reached + 1)
        to_reach = "-" if reached is None else f"{elapsed[reached]:.0f}"
        print(f"{name:36} {epoch:>13} {to_reach:>16} {final:9.4f} {int(np.argmax(curve)) + 1:>10} {seconds:6.0f}")
        print(f"{'':36} val_acc by epoch: {' '.join(f'{value:.3f}' for value in curve)}")


if __name__ == "__main__":
    main()
