"""Fixed costs every process and every run pays, each beside its baseline measured in the same run.

    .venv/bin/python bench/startup.py [--repeats 5]

Two rows:
  command line   a refusal (`search --data <missing folder>`: one line, exit 2) in a fresh interpreter, against
                 the same refusal after importing first what the command line used to import for every stage:
                 scikit-learn (for VotingEnsemble) and hyperopt (for the space registry's help)
  one trial      train_run of the tiny search's size (216 images, one epoch: two optimizer steps, so the time
                 is almost all tracing), against the same run with the optimizer's slots left for Keras to build
                 inside the first trace of the train step (which TensorFlow then traces again)
The two sides of each row alternate within every round (this VM's speed drifts between minutes), and each is
reported by its median over rounds, with the ratio to its baseline. The trial's weights are checked to be the
same bit for bit on both sides.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from kaggle_pipeline import network, train
from kaggle_pipeline.spaces import DEFAULT_PARAMS


def timed_process(arguments: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *arguments], capture_output=True, check=False)
    return time.perf_counter() - started


def build_with_lazy_optimizer(*arguments, **options):
    """The model as before: compiled with an optimizer whose slots Keras builds inside the first trace."""
    model = network.build_model(*arguments, **options)
    unbuilt = type(model.optimizer).from_config(model.optimizer.get_config())
    model.compile(optimizer=unbuilt, loss=model.loss, metrics=["accuracy"])
    return model


def tiny_trial(lazy_optimizer: bool, images: np.ndarray, labels: np.ndarray) -> tuple[float, list[np.ndarray]]:
    builder = train.build_model
    train.build_model = build_with_lazy_optimizer if lazy_optimizer else builder
    try:
        started = time.perf_counter()
        run = train.train_run(DEFAULT_PARAMS, images[:216], labels[:216], images[216:240], labels[216:240], 3,
                              seed=0, epochs=1, x_test=images[240:])
        return time.perf_counter() - started, run.model.get_weights()
    finally:
        train.build_model = builder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    arguments = ["search", "--data", "/nonexistent/competition"]
    refusal = ["-m", "kaggle_pipeline", *arguments]
    old_refusal = ["-c", "import runpy, sys, sklearn.linear_model, hyperopt; "
                   f"sys.argv = ['kaggle_pipeline', *{arguments!r}]; runpy.run_module('kaggle_pipeline', run_name='__main__')"]
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    images = rng.integers(0, 60, (300, 16, 16, 1), dtype=np.uint8)
    for label in range(3):
        images[labels == label, label * 5:(label + 1) * 5] += 150
    tiny_trial(False, images, labels)  # TensorFlow's own one-off start-up, outside every timing

    times = {name: [] for name in ("refusal", "refusal, old imports", "trial", "trial, lazy optimizer")}
    for _ in range(args.repeats):
        times["refusal, old imports"].append(timed_process(old_refusal))
        times["refusal"].append(timed_process(refusal))
        seconds, lazy_weights = tiny_trial(True, images, labels)
        times["trial, lazy optimizer"].append(seconds)
        seconds, weights = tiny_trial(False, images, labels)
        times["trial"].append(seconds)
        if not all(np.array_equal(a, b) for a, b in zip(weights, lazy_weights, strict=True)):
            raise SystemExit("the two trials trained different weights")
    median = {name: statistics.median(values) for name, values in times.items()}
    spread = {name: (min(values), max(values)) for name, values in times.items()}
    print(f"{'row':<24}{'median s':>10}{'min-max s':>16}{'ratio':>8}")
    for name, baseline in (("refusal, old imports", None), ("refusal", "refusal, old imports"),
                           ("trial, lazy optimizer", None), ("trial", "trial, lazy optimizer")):
        ratio = f"{median[name] / median[baseline]:.2f}" if baseline else "1.00"
        low, high = spread[name]
        print(f"{name:<24}{median[name]:>10.2f}{f'{low:.2f}-{high:.2f}':>16}{ratio:>8}")
    print("the trials' weights: the same bit for bit on both sides")


if __name__ == "__main__":
    main()
