"""Issue 15's levers, each measured the same way: many seeds of one recipe on the budget bench's small setting,
scored alone and voted on the answer key, so that recipes compare by voted accuracy per epoch of compute.

    .venv/bin/python bench/levers.py --smoke                      # checks the script: 3 configs, 2 seeds, tiny
    .venv/bin/python bench/levers.py --configs base18 aug36 --seeds 4 --out docs/levers.json
    KERAS_BACKEND=jax python3 bench/levers.py --workers 8 ...     # the same code on a GPU (Keras on JAX)

Data: the first --images (12,000) Fashion-MNIST training images, split 90/10 with the pipeline's own stratified
split (make_split, seed 0), as bench/budget.py --small does; the answer key is the whole 10,000-image test set.
Every run builds its net with kaggle_pipeline.network.build_model (the pipeline's own net, schedule and
augmentation) and trains with plain ``model.fit`` on the arrays, so the script runs on any Keras backend. A run
has no early stopping: the cosine schedule ends it. Its members are the final weights, or with snapshots the
weights at the end of each cosine cycle.

What is printed per config: mean single-member accuracy on the answer key, the soft vote of all its members,
epochs per member, and the vote at equal epochs (members voted while their epochs fit in the budget of the
cheapest config's full vote). The epochs' wall time differs by config on a CPU (a third conv block doubles it,
augmentation adds a little), so `--time-epochs` measures seconds per epoch of each config here, in float32 and in
the precision the pipeline picks.

The configs (CONFIGS below) are names; `--configs` chooses which, `--seeds` how many runs each.
`--budget-members WORK` trains nothing: it reads a finished bench/budget.py folder and prints our members, the
votes of each side and of half ours and half the reference's runs (diverse members) at equal member counts.
`--mixed-configs BASE OTHER` trains nothing: the runs of two configs in --work, mixed (members of another optimizer).
`--swapped-members BASE OTHER` trains nothing either: two pipeline stores of one competition (e.g. the full
preset's runs and runs of another architecture), each OTHER member voted in place of each BASE member.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

from kaggle_pipeline.data.fashion_mnist import DEBIAN_FASHION_MNIST, fashion_mnist_arrays
from kaggle_pipeline.data.split import make_split
from kaggle_pipeline.network import (
    batch_norm_momentum,
    build_model,
    complete_params,
    learning_rate_schedule,
    set_whitening,
)
from kaggle_pipeline.spaces import DEFAULT_PARAMS, REFERENCE_PARAMS

AUGMENT = {"translate": 0.1, "flip": True}
# What every config below adds its params to: the default recipe as it was before the whitening layer joined it
# (2026-12-07), so that each config still trains what was measured with it; whiten36 and widewhiten20 add it.
PLAIN_PARAMS = {**DEFAULT_PARAMS, "whiten": False}
# name -> params overrides, epochs, and how members come out of a run:
#   cycles: cosine cycles per run (snapshots: one member at the end of each)
#   ema: Keras' optimizer EMA of the weights (use_ema)
#   folds: train on all labelled images but fold (seed mod folds): k-fold bagging
#   refit: train on all labelled images, validation split included (AutoGluon's refit_full): the member that
#          would replace a validated run of the same seed in the vote; its validation score is on seen images
#   fge: fast geometric ensembling (Garipov et al. 2018) after the run: from its final weights, for each variant
#        (name -> cycles, epochs per cycle, peak and lowest rate as fractions of the run's rate), short cosine
#        cycles of a low rate, one member at the end of each; the run's own final member comes first
#   mix: (kind, alpha, probability): each training batch, with that probability, blended with a shuffled copy of
#        itself, its one-hot labels in the same proportion drawn from Beta(alpha, alpha): "mixup" (Zhang et al.
#        2018) blends whole images, "cutmix" (Yun et al. 2019) pastes one rectangle of the partner image
CONFIGS = {
    "base9": {"params": {}, "epochs": 9},
    "base18": {"params": {}, "epochs": 18},
    "base36": {"params": {}, "epochs": 36},
    "ema18": {"params": {}, "epochs": 18, "ema": True},
    "aug18": {"params": AUGMENT, "epochs": 18},
    "aug36": {"params": AUGMENT, "epochs": 36},
    "aug72": {"params": AUGMENT, "epochs": 72},
    "augls36": {"params": {**AUGMENT, "label_smoothing": 0.1}, "epochs": 36},
    "augema36": {"params": AUGMENT, "epochs": 36, "ema": True},
    "snap36x3": {"params": {}, "epochs": 36, "cycles": 3},
    "augsnap72x4": {"params": AUGMENT, "epochs": 72, "cycles": 4},
    "wide18": {"params": {"conv3_filters": 128}, "epochs": 18},
    "wideaug36": {"params": {"conv3_filters": 128, **AUGMENT}, "epochs": 36},
    "refit36": {"params": {}, "epochs": 36, "refit": True},
    "folds18": {"params": {}, "epochs": 18, "folds": 10},
    "augfolds36": {"params": AUGMENT, "epochs": 36, "folds": 10},
    "reference16": {"params": REFERENCE_PARAMS, "epochs": 16, "reference": True},
    "sgd36": {"params": {"optimizer": "sgd", "learning_rate": 0.05}, "epochs": 36},
    "fge36": {"params": {}, "epochs": 36, "fge": {"low": (4, 2, 0.1, 0.01), "high": (4, 2, 0.3, 0.01)}},
    "fge36b": {"params": {}, "epochs": 36, "fge": {"high": (4, 2, 0.3, 0.01), "mid": (3, 3, 0.6, 0.01),
                                                   "restart": (3, 3, 1.0, 0.01)}},
    "mixup36": {"params": {}, "epochs": 36, "mix": ("mixup", 0.2, 1.0)},
    "cutmix36": {"params": {}, "epochs": 36, "mix": ("cutmix", 1.0, 0.5)},
    "whiten36": {"params": {"whiten": True}, "epochs": 36},
    # The full preset's searched net (wide, shifts of 5%, no flips) on all 54,000 training images (--images
    # 60000), over a longer run: plain, and with the whitening first layer.
    "wide20": {"params": {"conv3_filters": 128, "translate": 0.05}, "epochs": 20},
    "widewhiten20": {"params": {"conv3_filters": 128, "translate": 0.05, "whiten": True}, "epochs": 20},
}


def load_data(images: int, source: Path) -> dict[str, np.ndarray]:
    arrays = fashion_mnist_arrays(source)
    x, y = arrays["x_train"][:images, :, :, None], arrays["y_train"][:images].astype(np.int64)
    train, validation = make_split(y, 0.1, 0)
    return {"x": x, "y": y, "train": train, "validation": validation,
            "x_test": arrays["x_test"][:, :, :, None], "y_test": arrays["y_test"].astype(np.int64)}


def cyclic_schedule(rate: float, steps_per_epoch: int, epochs: int, cycles: int):
    """Snapshot ensembles' schedule (Huang et al. 2017): ``cycles`` cosine decays, each restarting at ``rate``;
    the first warms up as the pipeline's cosine schedule does."""
    import keras

    cycle_steps = max(2, steps_per_epoch * (epochs // cycles))
    warmup = max(1, min(cycle_steps // 10, 2 * steps_per_epoch))

    class Cyclic(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            ops = keras.ops
            step = ops.cast(step, "float32")
            position = ops.mod(step, cycle_steps) / cycle_steps
            cosine = 0.01 * rate + 0.99 * rate * 0.5 * (1 + ops.cos(math.pi * position))
            warming = rate / 20 + (rate - rate / 20) * step / warmup
            return ops.where(step < warmup, warming, cosine)

        def get_config(self):
            return {}

    return Cyclic()


def fge_schedule(peak: float, low: float, cycle_steps: int):
    """Fast geometric ensembling's cycles as cosine decays: each restarts at ``peak`` and ends at ``low``."""
    import keras

    class Cycles(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            position = keras.ops.mod(keras.ops.cast(step, "float32"), cycle_steps) / cycle_steps
            return low + (peak - low) * 0.5 * (1 + keras.ops.cos(math.pi * position))

        def get_config(self):
            return {}

    return Cycles()


def geometric_members(model, variants: dict, fit, predict, rate: float, steps: int, loss) -> dict:
    """Each FGE variant's members, every variant starting again from the run's final weights."""
    import keras

    class CycleEnd(keras.callbacks.Callback):
        def __init__(self, cycle_epochs: int):
            super().__init__()
            self.cycle_epochs, self.snapshots = cycle_epochs, []

        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % self.cycle_epochs == 0:
                self.snapshots.append(predict())

    final_weights, members = model.get_weights(), {}
    for name, (cycles, cycle_epochs, peak, low) in variants.items():
        model.set_weights(final_weights)
        optimizer = keras.optimizers.Adam(fge_schedule(peak * rate, low * rate, steps * cycle_epochs))
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        cycle_end = CycleEnd(cycle_epochs)
        started = time.perf_counter()
        fit(cycles * cycle_epochs, [cycle_end])
        members[name] = {"snapshots": cycle_end.snapshots, "seconds": round(time.perf_counter() - started, 1)}
    model.set_weights(final_weights)
    return members


def mixed_batches(images: np.ndarray, labels: np.ndarray, batch: int, mix: tuple, seed: int):
    """A Keras dataset of shuffled training batches, each blended with itself (``mix``: kind, alpha, probability;
    CONFIGS). Images stay uint8, as the net takes them: a blend is rounded to whole pixel values."""
    import keras

    kind, alpha, probability = mix

    class Mixed(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.random = np.random.default_rng(seed)
            self.order = self.random.permutation(len(images))

        def __len__(self):
            return math.ceil(len(images) / batch)

        def on_epoch_end(self):
            self.order = self.random.permutation(len(images))

        def __getitem__(self, index):
            rows = self.order[index * batch:(index + 1) * batch]
            y = labels[rows]
            if self.random.random() >= probability:
                return images[rows], y
            x = images[rows].astype(np.float32)
            partner, share = self.random.permutation(len(rows)), self.random.beta(alpha, alpha)
            if kind == "mixup":
                x = share * x + (1 - share) * x[partner]
            else:
                # CutMix: a box of (1 - share) of the area at a random centre, clipped at the edges; the labels
                # take the area actually pasted.
                height, width = x.shape[1:3]
                box_h, box_w = int(height * math.sqrt(1 - share)), int(width * math.sqrt(1 - share))
                centre_y, centre_x = self.random.integers(height), self.random.integers(width)
                top, bottom = max(centre_y - box_h // 2, 0), min(centre_y + box_h // 2, height)
                left, right = max(centre_x - box_w // 2, 0), min(centre_x + box_w // 2, width)
                x[:, top:bottom, left:right] = x[partner, top:bottom, left:right]
                share = 1 - (bottom - top) * (right - left) / (height * width)
            return np.rint(x).astype(np.uint8), share * y + (1 - share) * y[partner]

    return Mixed()


def train_one(config_name: str, seed: int, data: dict, precision: str) -> dict:
    import keras

    config = CONFIGS[config_name]
    params = complete_params({**(REFERENCE_PARAMS if config.get("reference") else PLAIN_PARAMS), **config["params"]})
    epochs, cycles = config["epochs"], config.get("cycles", 1)
    if config.get("folds"):
        folds = config["folds"]
        labelled = np.arange(len(data["y"]))
        fold_of = np.random.default_rng(0).permutation(len(labelled)) % folds
        train, validation = labelled[fold_of != seed % folds], labelled[fold_of == seed % folds]
    else:
        train, validation = data["train"], data["validation"]
    if config.get("refit"):
        train = np.concatenate([train, validation])
    x_train, y_train = data["x"][train], data["y"][train]
    x_validation, y_validation = data["x"][validation], data["y"][validation]
    keras.utils.set_random_seed(seed)
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
    batch = int(params["batch_size"])
    steps = math.ceil(len(x_train) / batch)
    model = build_model(params, x_train.shape[1:], 10, bn_momentum=batch_norm_momentum(steps),
                        steps_per_epoch=steps, epochs=epochs)
    set_whitening(model, x_train)
    if cycles > 1 or config.get("ema"):
        rate = (cyclic_schedule(float(params["learning_rate"]), steps, epochs, cycles) if cycles > 1
                else learning_rate_schedule(params, steps, epochs))
        optimizer = keras.optimizers.Adam(rate, use_ema=bool(config.get("ema")), ema_momentum=0.99)
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=float(params["label_smoothing"]))
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    flip = bool(params["flip"])
    members_test, members_validation = [], []

    def predict(images):
        proba = np.asarray(model.predict(images, batch_size=1000, verbose=0), dtype=np.float32)
        if flip:
            proba = (proba + np.asarray(model.predict(images[:, :, ::-1], batch_size=1000, verbose=0))) / 2
        return proba

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if cycles > 1 and (epoch + 1) % (epochs // cycles) == 0:
                members_test.append(predict(data["x_test"]))
                members_validation.append(predict(x_validation))

    callbacks = [Snapshot()]
    if params["schedule"] == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5, min_lr=1e-5))
    started = time.perf_counter()
    one_hot = keras.utils.to_categorical(y_train, 10)
    fit_data = ({"x": mixed_batches(x_train, one_hot, batch, config["mix"], seed)} if config.get("mix")
                else {"x": x_train, "y": one_hot, "batch_size": batch, "shuffle": True})
    model.fit(**fit_data, epochs=epochs,
              validation_data=(x_validation, keras.utils.to_categorical(y_validation, 10)), callbacks=callbacks,
              verbose=0)
    seconds = time.perf_counter() - started
    if cycles == 1:
        members_test.append(predict(data["x_test"]))
        members_validation.append(predict(x_validation))
    fge_seconds = {}
    if config.get("fge"):
        def fit_more(more_epochs, more_callbacks):
            model.fit(x_train, keras.utils.to_categorical(y_train, 10), batch_size=batch, epochs=more_epochs,
                      shuffle=True, callbacks=more_callbacks, verbose=0)

        loss = keras.losses.CategoricalCrossentropy(label_smoothing=float(params["label_smoothing"]))
        variants = geometric_members(model, config["fge"], fit_more,
                                     lambda: (predict(data["x_test"]), predict(x_validation)),
                                     float(params["learning_rate"]), steps, loss)
        for name, variant in variants.items():
            fge_seconds[name] = variant["seconds"]
            members_test.extend(test for test, _ in variant["snapshots"])
            members_validation.extend(validation for _, validation in variant["snapshots"])
    test = np.stack(members_test)
    return {
        "config": config_name, "seed": seed, "epochs": epochs, "members": len(test), "seconds": round(seconds, 1),
        "fge_seconds": fge_seconds,
        "validation_accuracy": [float(np.mean(p.argmax(1) == y_validation)) for p in members_validation],
        "test_accuracy": [float(np.mean(p.argmax(1) == data["y_test"])) for p in test],
        "test_proba": test,
    }


def worker(jobs, data_args, precision, out_dir, queue_index, configs=None):
    # A spawned worker imports this module afresh: the parent's (possibly --smoke-edited) configs come along.
    CONFIGS.update(configs or {})
    data = load_data(*data_args)
    for config_name, seed in jobs:
        path = Path(out_dir) / f"{config_name}-{seed}.npz"
        if path.exists():
            continue
        result = train_one(config_name, seed, data, precision)
        proba = result.pop("test_proba")
        np.savez_compressed(str(path) + ".tmp.npz", proba=proba)
        os.replace(str(path) + ".tmp.npz", path)
        path.with_suffix(".json").write_text(json.dumps(result))
        print(f"[worker {queue_index}] {config_name} seed {seed}: test {result['test_accuracy']} "
              f"{result['seconds']}s", flush=True)


def summarise(out_dir: Path, configs: list[str], y_test: np.ndarray) -> dict:
    summary = {}
    for name in configs:
        runs = sorted(out_dir.glob(f"{name}-*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        if not runs:
            continue
        records = [json.loads(p.read_text()) for p in runs]
        probas = [np.load(p.with_suffix(".npz"))["proba"] for p in runs]
        members = np.concatenate(probas)  # members x samples x classes
        curve = []
        for count in range(1, len(probas) + 1):
            voted = np.concatenate(probas[:count]).mean(axis=0).argmax(1)
            curve.append(round(float(np.mean(voted == y_test)), 4))
        last = [float(np.mean(p[-1].argmax(1) == y_test)) for p in probas]
        summary[name] = {
            "runs": len(records), "epochs_per_run": records[0]["epochs"], "members_per_run": records[0]["members"],
            "member_accuracy_mean": round(float(np.mean([a for r in records for a in r["test_accuracy"]])), 4),
            "last_member_accuracy_mean": round(float(np.mean(last)), 4),
            "last_member_accuracy_std": round(float(np.std(last)), 4),
            "vote_all_members": round(float(np.mean(members.mean(0).argmax(1) == y_test)), 4),
            "vote_curve_by_runs": curve,
            "seconds_per_run": round(float(np.mean([r["seconds"] for r in records])), 1),
        }
        if CONFIGS[name].get("fge"):
            summary[name]["fge"] = geometric_summary(CONFIGS[name]["fge"], records, probas, y_test)
    return summary


def geometric_summary(variants: dict, records: list[dict], probas: list[np.ndarray], y_test: np.ndarray) -> dict:
    """Per FGE variant: its snapshots alone, each run's vote of its final member and snapshots, and the vote by
    runs; beside them the same for the runs' final members alone (what the variant's time would buy otherwise)."""
    def curve(member_sets):
        return [soft_vote_accuracy(np.concatenate(member_sets[:count]), y_test)
                for count in range(1, len(member_sets) + 1)]

    finals = [p[:1] for p in probas]
    result = {"runs": {"run_accuracy": [soft_vote_accuracy(final, y_test) for final in finals],
                       "vote_curve_by_runs": curve(finals),
                       "seconds_mean": round(float(np.mean([r["seconds"] for r in records])), 1)}}
    start = 1
    for variant, (cycles, *_) in variants.items():
        runs = [np.concatenate([p[:1], p[start:start + cycles]]) for p in probas]
        result[variant] = {
            "snapshot_accuracy_mean": round(float(np.mean([np.mean(m.argmax(1) == y_test) for r in runs for m in r[1:]])), 4),
            "run_vote_mean": round(float(np.mean([soft_vote_accuracy(r, y_test) for r in runs])), 4),
            "run_votes": [soft_vote_accuracy(r, y_test) for r in runs],
            "disagreement_with_run": round(disagreement((r[0], m) for r in runs for m in r[1:]), 4),
            "snapshots_only_vote_mean": round(float(np.mean([soft_vote_accuracy(r[1:], y_test) for r in runs])), 4),
            "vote_curve_by_runs": curve(runs),
            "seconds_mean": round(float(np.mean([r["fge_seconds"][variant] for r in records])), 1),
        }
        start += cycles
    return result


def disagreement(pairs) -> float:
    """The mean share of the images on which the two members of each pair (class probabilities) pick different classes."""
    return float(np.mean([(a.argmax(axis=1) != b.argmax(axis=1)).mean() for a, b in pairs]))


def soft_vote_accuracy(members, truth: np.ndarray) -> float:
    """Accuracy on ``truth`` of the mean of ``members``' class probabilities (members first), to 4 places."""
    return round(float(np.mean(np.mean(members, axis=0).argmax(1) == truth)), 4)


def vote_at_epochs(out_dir: Path, name: str, budget_epochs: int, y_test: np.ndarray) -> float | None:
    runs = sorted(out_dir.glob(f"{name}-*.npz"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    epochs = CONFIGS[name]["epochs"]
    count = budget_epochs // epochs
    if count < 1 or count > len(runs):
        return None
    return soft_vote_accuracy(np.concatenate([np.load(p)["proba"] for p in runs[:count]]), y_test)


def epoch_clock_class():
    import keras

    class Clock(keras.callbacks.Callback):
        """Wall time of each epoch."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    return Clock


def time_epochs(configs: list[str], data: dict) -> dict:
    """Seconds per epoch of each config on this machine (float32 and the pipeline's precision), 2 epochs each,
    the second one timed: what an epoch costs here, for the equal-time comparison."""
    import keras

    from kaggle_pipeline.train import choose_precision

    EpochClock = epoch_clock_class()
    timings = {}
    for name in configs:
        for precision in sorted({"float32", choose_precision("auto")}):
            config = CONFIGS[name]
            params = complete_params({**(REFERENCE_PARAMS if config.get("reference") else PLAIN_PARAMS), **config["params"]})
            keras.backend.clear_session()
            keras.mixed_precision.set_global_policy(precision)
            x, y = data["x"][data["train"]], keras.utils.to_categorical(data["y"][data["train"]], 10)
            model = build_model(params, x.shape[1:], 10, steps_per_epoch=85, epochs=2)
            clock = EpochClock()
            model.fit(x, y, batch_size=128, epochs=2, verbose=0, callbacks=[clock])
            seconds = clock.seconds
            timings.setdefault(name, {})[precision] = round(seconds[-1], 2)
            print(f"{name} {precision}: {seconds[-1]:.2f} s per epoch of {len(x):,} images", flush=True)
    keras.mixed_precision.set_global_policy("float32")
    return timings


def answer_key(solution: Path) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(solution).iloc[:, 1].to_numpy()


def kept_runs_of(store_folder: Path) -> list[tuple[dict, np.ndarray]]:
    """A pipeline store's kept runs: each run's record and its test predictions, in run order."""
    from kaggle_pipeline.store import RunStore, kept_runs

    store = RunStore(store_folder)
    settings = store.ensemble_settings()
    if settings is None:
        raise SystemExit(f"{store.ensemble_path}: not found; run 'make ensemble' first")
    members = [(record, store.load_predictions(record)["test"])
               for record in kept_runs(store.run_records(repair=False), settings.threshold, store.metric)]
    if not members:
        raise SystemExit(f"{store.runs_dir}: no kept run")
    return members


def store_members(store_folder: Path, solution: Path) -> list[np.ndarray]:
    """A pipeline store's kept runs' test predictions; prints each on the answer key and the soft vote of the first k."""
    truth = answer_key(solution)
    members = [predictions for _, predictions in kept_runs_of(store_folder)]
    singles = [soft_vote_accuracy([member], truth) for member in members]
    votes = [soft_vote_accuracy(members[:k], truth) for k in range(1, len(members) + 1)]
    print(f"{store_folder.name}, each kept member: {singles}  mean {np.mean(singles):.4f}  best {max(singles):.4f}")
    print(f"{store_folder.name}, soft vote of the first k: {votes}")
    return members


def pooled_members(store_folders: list[Path], solution: Path) -> None:
    """The kept members of several stores of one competition (runs of one seed and recipe that repeat across
    stores counted once), voted together: how much the vote adds over its best member when members are many."""
    truth = answer_key(solution)
    members, names, seconds = [], [], 0.0
    for folder in store_folders:
        for record, member in kept_runs_of(folder):
            if not any(np.array_equal(member, seen) for seen in members):
                members.append(member)
                names.append(f"{folder.parent.name}/{record['run']}")
                seconds += record.get("seconds", 0.0)
    singles = [soft_vote_accuracy([member], truth) for member in members]
    voted = soft_vote_accuracy(members, truth)
    labels = np.array([member.argmax(axis=1) for member in members])
    apart = disagreement(itertools.combinations(members, 2)) if len(members) > 1 else 0.0
    print("each member: " + "  ".join(f"{name} {score:.4f}" for name, score in zip(names, singles, strict=True)))
    print(f"{len(members)} distinct members ({seconds / 3600:.1f} hours of training by their run.json): soft vote {voted:.4f}, best member {max(singles):.4f} "
          f"({100 * (voted - max(singles)):+.2f} points), mean member {np.mean(singles):.4f} "
          f"({100 * (voted - np.mean(singles)):+.2f}); some member right on {np.mean((labels == truth).any(axis=0)):.4f}; "
          f"two members disagree on {apart:.2%} of the images")


def swapped_members(base_folder: Path, other_folder: Path, solution: Path) -> None:
    """Does a member of another kind (``other_folder``: e.g. another architecture, same data and answer key) vote
    better than one more of the base store's? Prints the base vote, the base vote with each base member replaced
    by each other member, the pairs within the base and across, and how often two members disagree within the
    base and across: members that err differently disagree more and vote higher at an equal count."""
    truth = answer_key(solution)
    base = [member for _, member in kept_runs_of(base_folder)]
    other = [member for _, member in kept_runs_of(other_folder)]

    print(f"base ({base_folder.parent.name}): {[soft_vote_accuracy([m], truth) for m in base]}  "
          f"other ({other_folder.parent.name}): {[soft_vote_accuracy([m], truth) for m in other]}")
    print(f"vote of the base's {len(base)}: {soft_vote_accuracy(base, truth):.4f};  all {len(base) + len(other)}: "
          f"{soft_vote_accuracy(base + other, truth):.4f}")
    for j, member in enumerate(other):
        swapped = [soft_vote_accuracy(base[:i] + [member] + base[i + 1:], truth) for i in range(len(base))]
        print(f"other member {j + 1} in place of each base member: {swapped}")
    within, across = list(itertools.combinations(base, 2)), list(itertools.product(base, other))
    print(f"pairs within the base: {[soft_vote_accuracy(list(pair), truth) for pair in within]}  "
          f"disagree on {disagreement(within):.2%}" if within else "one base member: no pairs within")
    print(f"pairs across: {[soft_vote_accuracy(list(pair), truth) for pair in across]}  disagree on {disagreement(across):.2%}")


def mixed_configs(work: Path, base: str, other: str, y_test: np.ndarray) -> None:
    """Members of two configs of one --work folder (each run's first member), mixed: disagreement within and
    across, the vote of ``base`` alone and half/half at equal member counts, and ``base``'s first four runs with
    1, 2, ... of ``other``'s added."""
    def members(name):
        runs = sorted(work.glob(f"{name}-*.npz"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
        return [np.load(path)["proba"][0] for path in runs]

    ours, theirs = members(base), members(other)
    print(f"{base}:", [soft_vote_accuracy([m], y_test) for m in ours], f" {other}:", [soft_vote_accuracy([m], y_test) for m in theirs])
    print(f"disagreement within {base} {disagreement(itertools.combinations(ours, 2)):.4f}, across "
          f"{disagreement((a, b) for a in ours for b in theirs):.4f}")
    for count in range(2, 2 * min(len(ours), len(theirs)) + 1, 2):
        alone = soft_vote_accuracy(ours[:count], y_test) if count <= len(ours) else None
        print(f"{count} members: {base} alone {alone}, half/half {soft_vote_accuracy(ours[:count // 2] + theirs[:count // 2], y_test)}")
    print(f"{base} 1-4 + {other} 0..{len(theirs)}:", [soft_vote_accuracy(ours[:4] + theirs[:k], y_test) for k in range(len(theirs) + 1)])


def budget_members(work: Path) -> None:
    """From a finished bench/budget.py --work folder: each of our members on the answer key, the soft vote of the
    first k of ours, of the reference's, and of half ours and half the reference's (diverse members) at equal k."""
    import glob

    folder = next(work.glob("fashion-mnist-*"))
    truth = answer_key(folder / "solution.csv")
    ours = store_members(next((work / "round-1" / "ours" / "models").iterdir()), folder / "solution.csv")
    reference = [np.load(path) for path in sorted(glob.glob(str(work / "round-1/reference/run-*-test.npy")))]

    def voted(members):
        return soft_vote_accuracy(members, truth)

    print(f"reference, soft vote of the first k: {[voted(reference[:k]) for k in range(1, len(reference) + 1)]}")
    for k in range(2, min(len(ours), len(reference)) + 1, 2):
        print(f"{k} members: ours {voted(ours[:k]):.4f}  half ours, half reference {voted(ours[:k // 2] + reference[:k // 2]):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--source", type=Path, default=DEBIAN_FASHION_MNIST)
    parser.add_argument("--workers", type=int, default=1, help="processes training at once (a GPU holds several)")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--work", type=Path, default=Path("models/bench-levers"), help="one file per finished run")
    parser.add_argument("--out", type=Path, help="the summary (JSON)")
    parser.add_argument("--time-epochs", action="store_true", help="only time one epoch of each config here")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--budget-members", type=Path, metavar="WORK",
                        help="only print members, votes and half/half mixes of a finished bench/budget.py --work folder")
    parser.add_argument("--store-members", type=Path, nargs=2, metavar=("STORE", "SOLUTION"),
                        help="only print a pipeline store's kept members and soft votes on an answer key (solution.csv)")
    parser.add_argument("--pooled-members", type=Path, nargs="+", metavar="STORE",
                        help="only print the soft vote of the kept members of several stores together (with --solution)")
    parser.add_argument("--mixed-configs", nargs=2, metavar=("BASE", "OTHER"),
                        help="only print how the runs of two configs in --work vote mixed (each run's first member)")
    parser.add_argument("--swapped-members", type=Path, nargs=2, metavar=("BASE", "OTHER"),
                        help="only print how the kept members of store OTHER vote in place of store BASE's (with --solution)")
    parser.add_argument("--solution", type=Path, default=Path("data/fashion-mnist/solution.csv"),
                        help="the answer key for --pooled-members and --swapped-members")
    args = parser.parse_args()
    if args.swapped_members:
        swapped_members(*args.swapped_members, args.solution)
        return
    if args.pooled_members:
        pooled_members(args.pooled_members, args.solution)
        return
    if args.store_members:
        store_members(*args.store_members)
        return
    if args.budget_members:
        budget_members(args.budget_members)
        return
    if args.mixed_configs:
        mixed_configs(args.work, *args.mixed_configs, fashion_mnist_arrays(args.source)["y_test"].astype(np.int64))
        return
    if args.smoke:
        for name in ("base9", "augsnap72x4"):
            CONFIGS[name] = {**CONFIGS[name], "epochs": 2 if name == "base9" else 4}
        CONFIGS["fge36"] = {**CONFIGS["fge36"], "epochs": 2, "fge": {"low": (2, 1, 0.1, 0.01), "high": (2, 1, 0.3, 0.01)}}
        args.configs, args.seeds, args.images = ["base9", "augsnap72x4", "fge36"], 2, 1000
    data = load_data(args.images, args.source)
    if args.time_epochs:
        timings = time_epochs(args.configs, data)
        if args.out:
            args.out.write_text(json.dumps(timings, indent=1) + "\n")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = [(name, seed) for seed in range(1, args.seeds + 1) for name in args.configs]
    started = time.perf_counter()
    if args.workers == 1:
        worker(jobs, (args.images, args.source), args.precision, args.work, 0)
    else:
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=worker, args=(jobs[k::args.workers], (args.images, args.source),
                                                           args.precision, args.work, k, CONFIGS))
                     for k in range(args.workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    summary = summarise(args.work, args.configs, data["y_test"])
    cheapest = min(summary.values(), key=lambda s: s["epochs_per_run"] * s["runs"]) if summary else None
    budget = cheapest["epochs_per_run"] * cheapest["runs"] if cheapest else 0
    print(f"\n{'config':<14}{'runs':>5}{'ep/run':>7}{'member':>8}{'last±sd':>14}{'vote all':>9}"
          f"{'vote@' + str(budget) + 'ep':>11}   vote by runs")
    for name, entry in summary.items():
        entry["vote_at_equal_epochs"] = vote_at_epochs(args.work, name, budget, data["y_test"])
        at = entry["vote_at_equal_epochs"]
        print(f"{name:<14}{entry['runs']:>5}{entry['epochs_per_run']:>7}{entry['member_accuracy_mean']:>8.4f}"
              f"{entry['last_member_accuracy_mean']:>8.4f}±{entry['last_member_accuracy_std']:.4f}"
              f"{entry['vote_all_members']:>9.4f}{'' if at is None else f'{at:.4f}':>11}   {entry['vote_curve_by_runs']}")
        for variant, figures in entry.get("fge", {}).items():
            print(f"  fge {variant}: {figures}")
    print(f"({time.perf_counter() - started:.0f} s; backend {os.environ.get('KERAS_BACKEND', 'tensorflow')})")
    if args.out:
        args.out.write_text(json.dumps({"settings": {"images": args.images, "seeds": args.seeds,
                                                     "precision": args.precision, "budget_epochs": budget,
                                                     "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
                                                     "configs": {n: CONFIGS[n] for n in args.configs}},
                                        "summary": summary}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
