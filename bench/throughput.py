"""Training and inference speed of the reference 28x28 net (or another), side by side in one process.

    .venv/bin/python bench/throughput.py [--images 20000] [--epochs 2] [--repeats 3] [--params reference|default|wide]

Configurations, each timed after a warm-up epoch that is not counted:
  baseline           plain model.fit on float32 numpy arrays, float32        (the reference recipe)
  tf.data per-image  uint8, one tf.data element per image (from_tensor_slices -> shuffle -> batch), float32
  tf.data            the pipeline's make_dataset: shuffled indices, one gather per batch, float32
  tf.data + auto     the same with the precision the pipeline picks here (PRECISION=auto)
The configurations run in interleaved rounds (this machine's speed drifts by a third between minutes);
each is reported by its best round, with the spread over rounds. Prints images/s, achieved GFLOP/s and
the ratio to the baseline. Uses Fashion-MNIST images when
data/fashion-mnist exists (make data), random images otherwise: speed does not depend on content.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.network import build_model
from kaggle_pipeline.spaces import DEFAULT_PARAMS, REFERENCE_PARAMS, WIDE_PARAMS
from kaggle_pipeline.train import choose_precision, keras, make_dataset, predict_proba


def forward_macs(model) -> int:
    """Multiply-accumulates of one forward pass (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_height, kernel_width = layer.kernel_size
            total += height * width * channels_out * kernel_height * kernel_width * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def images(count: int) -> tuple[np.ndarray, np.ndarray]:
    folder = Path("data/fashion-mnist")
    if (folder / "train.csv").exists():
        from kaggle_pipeline.data import load_competition

        competition = load_competition(folder, cache_dir=Path("models/fashion-mnist/cache"))
        return competition.x_train[:count], competition.y_train[:count]
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, count)


def per_image_dataset(x: np.ndarray, y: np.ndarray, batch_size: int):
    """The straightforward tf.data pipeline that make_dataset replaced, kept here for comparison."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# The nets: the reference's; ours by default (the quick preset's: the reference's with the whitening first layer
# and the cosine schedule); the full preset's (a third convolution block, in-graph shifts and flips).
NETS = {"reference": REFERENCE_PARAMS, "default": DEFAULT_PARAMS, "wide": WIDE_PARAMS}


def measure(name: str, x: np.ndarray, y: np.ndarray, epochs: int, precision: str, feed: str,
            params: dict = REFERENCE_PARAMS) -> dict:
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_model(params, x.shape[1:], 10)
    batch = params["batch_size"]
    if feed != "numpy":
        train = (make_dataset(x, y, batch, shuffle_seed=0, num_classes=10) if feed == "batched"
                 else per_image_dataset(x, keras.utils.to_categorical(y, 10), batch))
        fit = lambda count: model.fit(train, epochs=count, verbose=0, shuffle=False)  # noqa: E731
    else:
        # The reference fed float32 arrays scaled in numpy; the model's own Rescaling then sees 0..1 floats
        # times 1/255, which changes nothing about speed.
        x_float, y_one_hot = x.astype(np.float32), keras.utils.to_categorical(y, 10)
        fit = lambda count: model.fit(x_float, y_one_hot, batch_size=batch, epochs=count, verbose=0)  # noqa: E731
    fit(1)  # warm-up: graph tracing and allocation
    started = time.perf_counter()
    fit(epochs)
    train_rate = epochs * len(x) / (time.perf_counter() - started)
    predict_proba(model, x[:2048])
    started = time.perf_counter()
    predict_proba(model, x)
    infer_rate = len(x) / (time.perf_counter() - started)
    macs = forward_macs(model)
    return {
        "name": name, "precision": precision, "train": train_rate, "infer": infer_rate,
        # Training is ~3 forward passes' worth of work (forward, and two products in the backward pass).
        "train_gflops": train_rate * 3 * 2 * macs / 1e9, "infer_gflops": infer_rate * 2 * macs / 1e9, "macs": macs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--params", choices=sorted(NETS), default="reference", help="which net (default: reference)")
    args = parser.parse_args()
    x, y = images(args.images)
    chosen = choose_precision("auto")
    configurations = [
        ("baseline (numpy fit)", "float32", "numpy"),
        ("tf.data per-image", "float32", "per-image"),
        ("tf.data", "float32", "batched"),
        ("tf.data + auto", chosen, "batched"),
    ]
    rounds = [[measure(name, x, y, args.epochs, precision, feed, NETS[args.params]) for name, precision, feed in configurations]
              for _ in range(args.repeats)]
    results = []
    for column in zip(*rounds, strict=True):
        best = dict(max(column, key=lambda result: result["train"]))
        best["spread"] = (min(r["train"] for r in column), max(r["train"] for r in column))
        best["infer"] = max(r["infer"] for r in column)
        best["infer_gflops"] = max(r["infer_gflops"] for r in column)
        results.append(best)
    baseline = results[0]
    print(f"{args.params} net {x.shape[1:]}: {baseline['macs'] / 1e6:.1f} M MACs per forward pass; "
          f"{len(x):,} images x {args.epochs} epochs, best of {args.repeats} interleaved rounds")
    print(f"{'configuration':24} {'precision':15} {'train img/s':>11} {'GFLOP/s':>8} {'ratio':>6} "
          f"{'infer img/s':>11} {'GFLOP/s':>8} {'ratio':>6}")
    for result in results:
        print(f"{result['name']:24} {result['precision']:15} {result['train']:11,.0f} {result['train_gflops']:8.1f} "
              f"{result['train'] / baseline['train']:6.2f} {result['infer']:11,.0f} {result['infer_gflops']:8.1f} "
              f"{result['infer'] / baseline['infer']:6.2f}   train range {result['spread'][0]:,.0f}-{result['spread'][1]:,.0f}")


if __name__ == "__main__":
    main()
