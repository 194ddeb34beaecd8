"""The early-abort rule's false-reject rate, measured: train runs to the end, then replay the rule.

    .venv/bin/python bench/early_abort.py [--runs 10] [--images 12000] [--epochs 4] [--threshold Q]

Trains ``--runs`` seeds of the default recipe (model.DEFAULT_PARAMS) on the first ``--images`` training
images of the default competition, every one to its last epoch with no abort, and saves their validation
curves to --out. Then replays the rule (kaggle_pipeline.abort.replay: each run judged against the other
runs that passed) for several margins. The threshold defaults to the 30th percentile of the final
accuracies, so that some runs fail and both kinds of error can show. ``--curves FILE`` replays saved
curves without training; ``--store NAME`` replays the finished runs of ``models/NAME`` (e.g. the full preset's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from kaggle_pipeline.abort import MARGIN, replay

MARGINS = (0.0, 0.01, 0.02, 0.03, 0.05)


def train_curves(data: Path, runs: int, images: int, epochs: int) -> dict:
    from kaggle_pipeline.spaces import DEFAULT_PARAMS
    from kaggle_pipeline.train import train_run
    from kaggle_pipeline.workspace import open_workspace

    workspace = open_workspace(data, Path("models"))
    x_train, y_train = workspace.x_train[:images], workspace.y_train[:images]
    curves, finals = [], []
    for seed in range(1, runs + 1):
        trained = train_run(DEFAULT_PARAMS, x_train, y_train, workspace.x_validation, workspace.y_validation,
                            workspace.competition.num_classes, seed=seed, epochs=epochs, label=f"seed {seed}")
        curves.append(trained.history["val_accuracy"])
        finals.append(trained.validation_accuracy)
    return {"images": images, "epochs": epochs, "params": DEFAULT_PARAMS, "curves": curves, "finals": finals}


def store_curves(name: str) -> dict:
    """The validation curves of a store's runs that trained to the end (none aborted)."""
    from kaggle_pipeline.store import RunStore

    records = [record for record in RunStore(Path("models") / name).run_records(repair=False) if record["status"] == "done"]
    if not records:
        sys.exit(f"models/{name}: no finished runs")
    return {"store": name, "images": records[0].get("images", 0), "epochs": records[0]["epochs"],
            "params": records[0]["params"], "curves": [record["history"]["val_accuracy"] for record in records],
            "finals": [record["validation_accuracy"] for record in records]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fashion-mnist"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threshold", type=float, help="default: the 30th percentile of the final accuracies")
    parser.add_argument("--curves", type=Path, help="replay curves saved by an earlier run instead of training")
    parser.add_argument("--store", help="replay the finished runs of models/STORE instead of training")
    parser.add_argument("--out", type=Path, default=Path("docs/early_abort.json"))
    args = parser.parse_args()
    if args.store:
        saved = store_curves(args.store)
    elif args.curves:
        saved = json.loads(args.curves.read_text())
    else:
        saved = train_curves(args.data, args.runs, args.images, args.epochs)
    threshold = args.threshold if args.threshold is not None else float(np.percentile(saved["finals"], 30))
    images = f"{saved['images']:,}" if saved["images"] else "all training"
    print(f"\n{len(saved['curves'])} runs, {images} images, {saved['epochs']} epochs; threshold {threshold:.4f}")
    print("final validation accuracies: " + " ".join(f"{value:.4f}" for value in saved["finals"]))
    print(f"{'margin':>6} {'judged':>6} {'false rejects':>14} {'rate':>6} {'true rejects':>13} {'epochs saved':>13}")
    saved["replay"] = {}
    for margin in MARGINS:
        result = replay(saved["curves"], saved["finals"], threshold, saved["epochs"], margin)
        saved["replay"][str(margin)] = result
        failing = result["runs_judged"] - result["runs_passing"]
        print(f"{margin:6.2f} {result['runs_judged']:6d} {result['false_rejects']:>8d} of {result['runs_passing']:<3d} "
              f"{result['false_reject_rate']:6.2f} {result['true_rejects']:>7d} of {failing:<3d} "
              f"{result['epochs_saved']:>6d} of {result['epochs_total']:<4d}{'   <- default' if margin == MARGIN else ''}")
        for index, epoch, passed in result["stops"]:
            floor = min(curve[epoch - 1] for j, curve in enumerate(saved["curves"])
                        if j != index and saved["finals"][j] >= threshold) - margin
            print(f"{'':8}run {index + 1} stopped at epoch {epoch}: {saved['curves'][index][epoch - 1]:.4f} < floor "
                  f"{floor:.4f} ({'false' if passed else 'true'} reject)")
    saved["threshold"] = threshold
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
