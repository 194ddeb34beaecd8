"""The local executor against Ray on this machine: the same N runs, the same seeds, wall time end to end.

    .venv/bin/python bench/executors.py [--n 4] [--epochs 3] [--images 12000] [--out docs/executors.json]

Each configuration retrains the seed-004 reference net (model.DEFAULT_PARAMS) N times on the same subset of
the default competition's training part, each into its own empty store, through ``run_ensemble`` with a
threshold of 0 (every finished run is kept), no early abort:

    local                one run at a time in this process (TensorFlow uses every core)
    ray, 1 CPU per run   a local Ray instance, as many runs at once as cores, one TensorFlow thread each
    ray, 2 CPUs per run  a local Ray instance, runs one at a time like local, plus Ray's overheads

Wall time includes starting Ray and each task's fresh worker (TensorFlow import). Ratios are against local,
measured in the same invocation.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from kaggle_pipeline.ensemble import run_ensemble
from kaggle_pipeline.spaces import DEFAULT_PARAMS
from kaggle_pipeline.store import BestParams, atomic_write_json, library_versions
from kaggle_pipeline.workspace import open_workspace


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

CONFIGURATIONS = {
    "local": {"executor": "local"},
    "ray, 1 CPU per run": {"executor": "ray", "cpus_per_run": 1},
    "ray, 2 CPUs per run": {"executor": "ray", "cpus_per_run": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fashion-mnist"))
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=12000, help="training images per run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, options in CONFIGURATIONS.items():
            workspace = open_workspace(args.data, Path(folder) / name.replace(" ", "_").replace(",", ""))
            workspace = dataclasses.replace(workspace, train_index=workspace.train_index[: args.images])
            workspace.store.write_best_params(BestParams.from_dict({"params": DEFAULT_PARAMS, "validation_accuracy": 0.0}))
            say(f"== {name}")
            started = time.perf_counter()
            kept = run_ensemble(workspace, n=args.n, threshold=0.0, max_runs=args.n, epochs=args.epochs, seed=1000,
                                abort_margin=None, **options)
            seconds = time.perf_counter() - started
            accuracy = [record["validation_accuracy"] for record in kept]
            results[name] = {"seconds": round(seconds, 1), "runs": len(kept),
                             "mean_validation_accuracy": round(sum(accuracy) / len(accuracy), 4)}
    local = results["local"]["seconds"]
    print(f"\n{args.n} runs x {args.epochs} epochs on {args.images:,} images, {os.cpu_count()} cores")
    print(f"{'configuration':22s} {'wall s':>8s} {'vs local':>9s} {'mean val_acc':>13s}")
    for name, result in results.items():
        print(f"{name:22s} {result['seconds']:8.1f} {local / result['seconds']:8.2f}x {result['mean_validation_accuracy']:13.4f}")
    if args.out:
        atomic_write_json(args.out, {"n": args.n, "epochs": args.epochs, "images": args.images, "cores": os.cpu_count(),
                                     "results": results, "versions": library_versions()})


if __name__ == "__main__":
    main()
